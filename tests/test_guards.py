"""No silent wrong answer: weights changed after program(), weight tying in conversion,
non-finite biases, input dtypes, empty batches, huge finite inputs, seeds, and damaged tile
states in a state_dict."""
from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import aimcsim
from aimcsim.nn.guards import WeightsChangedError
from aimcsim.tiles import AnalogConfig, NotProgrammedError


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 5 * 5, 4))


def programmed(net: nn.Module | None = None, seed: int = 0) -> nn.Module:
    analog = aimcsim.convert_to_analog(net or small_net()).eval()
    aimcsim.program(analog, seed=seed)
    return analog


X = torch.randn(2, 2, 5, 5)


# ---------------------------------------------------------------- weights changed after program
@pytest.mark.parametrize("change", ["optimizer", "zero_", "load_state_dict", "new_parameter"])
def test_weights_changed_after_program_raise_in_eval(change):
    analog = programmed()
    with torch.no_grad():
        analog(X)
    if change == "optimizer":
        analog.train()
        opt = torch.optim.SGD(analog.parameters(), lr=0.1)
        analog(X).sum().backward()  # training mode computes on the float weights: no error
        opt.step()
        analog.eval()
    elif change == "zero_":
        with torch.no_grad():
            analog[3].weight.zero_()
    elif change == "load_state_dict":
        other = small_net()
        for p in other.parameters():
            p.data.add_(1.0)
        analog.load_state_dict(other.state_dict(), strict=False)
    else:
        analog[0].weight = nn.Parameter(analog[0].weight.detach() * 2)
    with pytest.raises(WeightsChangedError, match=r"aimcsim\.program"):
        with torch.no_grad():
            analog(X)
    aimcsim.program(analog, seed=1)  # programming again accepts the new weights
    with torch.no_grad():
        assert torch.isfinite(analog(X)).all()


def test_same_values_new_storage_does_not_raise():
    analog = programmed()
    with torch.no_grad():
        before = analog(X)
    analog.load_state_dict(copy.deepcopy(analog.state_dict()))  # same weights, copied in place
    clone = copy.deepcopy(analog)
    analog.share_memory()  # moves the storage
    with torch.no_grad():
        for model in (analog, clone):
            assert model(X).shape == before.shape


def test_training_mode_and_digital_mode_do_not_check_the_weights():
    analog = programmed()
    with torch.no_grad():
        analog[3].weight.mul_(3)
    analog.train()
    analog(X)
    analog.eval()
    with aimcsim.digital(analog):
        analog(X)


def test_bias_changes_are_fine_but_a_non_finite_bias_is_refused():
    analog = programmed()
    with torch.no_grad():
        analog[3].bias.add_(1.0)
        assert torch.isfinite(analog(X)).all()
        analog[3].bias[0] = float("nan")
        with pytest.raises(ValueError, match=r"3\.bias contains NaN"):
            analog(X)
        with pytest.raises(ValueError, match=r"3\.bias contains NaN"):
            aimcsim.program(analog, seed=0)


# ---------------------------------------------------------------- weight tying in conversion
def test_a_module_used_twice_becomes_one_analog_layer():
    lin = nn.Linear(4, 4)
    net = nn.Sequential(lin, nn.ReLU(), lin)
    analog = aimcsim.convert_to_analog(net).eval()
    assert isinstance(analog[0], aimcsim.AnalogLinear) and analog[0] is analog[2]
    assert len(aimcsim.analog_layers(analog)) == 1
    aimcsim.program(analog, seed=0)
    ideal = aimcsim.convert_to_analog(net, AnalogConfig.ideal()).eval()
    aimcsim.program(ideal, seed=0)
    x = torch.randn(3, 4)
    with torch.no_grad():
        torch.testing.assert_close(ideal(x), net(x), rtol=1e-4, atol=1e-4)


class TiedHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, idx):
        return self.head(self.emb(idx))


def test_a_linear_tied_to_an_embedding_is_refused_naming_both():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"'head'.*tied to emb\.weight"):
            aimcsim.convert_to_analog(TiedHead())
        converted = aimcsim.convert_to_analog(TiedHead(), exclude=["head"])
    assert converted.head.weight is converted.emb.weight


def test_two_linears_sharing_one_weight_are_refused():
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight
    with pytest.raises(ValueError, match=r"'0'.*tied to 1\.weight"):
        aimcsim.convert_to_analog(nn.Sequential(a, b))


# ---------------------------------------------------------------- inputs
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.complex64,
                                   torch.uint8])
def test_unsupported_input_dtypes_raise_type_error(dtype):
    analog = programmed()
    with pytest.raises(TypeError, match=r"'?0'?.*dtype.*float32"):
        analog(torch.zeros(2, 2, 5, 5, dtype=dtype))


def test_float64_input_is_computed_in_float32_and_returned_as_float64():
    analog = programmed()
    with torch.no_grad():
        y = analog(X.double())
    assert y.dtype == torch.float64 and torch.isfinite(y).all()


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_empty_batch_gives_an_empty_output_of_the_right_shape(mode):
    torch.manual_seed(0)
    layers = [(nn.Linear(6, 4), (0, 6), (0, 4)),
              (nn.Conv1d(2, 3, 3, padding=1), (0, 2, 7), (0, 3, 7)),
              (nn.Conv2d(2, 3, 3, stride=2), (0, 2, 7, 7), (0, 3, 3, 3)),
              (nn.Conv2d(2, 4, 3, padding=1, padding_mode="reflect", groups=2), (0, 2, 5, 5),
               (0, 4, 5, 5))]
    for digital, shape_in, shape_out in layers:
        analog = aimcsim.convert_to_analog(digital)
        aimcsim.program(analog, seed=0)
        getattr(analog, mode)()
        assert analog(torch.zeros(shape_in)).shape == shape_out


def test_empty_batch_before_program_still_says_not_programmed():
    analog = aimcsim.convert_to_analog(nn.Linear(3, 2)).eval()
    with pytest.raises(NotProgrammedError):
        analog(torch.zeros(0, 3))


def test_non_finite_input_names_the_layer_and_huge_finite_input_is_not_called_nan():
    analog = programmed()
    bad = X.clone()
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"^0 input contains NaN or inf"):
        analog(bad)
    huge = torch.full((1, 2, 5, 5), 1e37)
    with torch.no_grad():
        try:
            y = analog(huge)
        except ValueError as err:  # the float32 DAC's per-vector sum overflows
            assert "NaN" not in str(err) and "too large" in str(err)
        else:
            assert torch.isfinite(y).all()
        lin = programmed(nn.Sequential(nn.Linear(4, 2)))
        assert torch.isfinite(lin(torch.full((2, 4), 1e37))).all()


@pytest.mark.parametrize("scaling", ["per_patch", "static", "per_image", "per_patch_exact"])
@pytest.mark.parametrize("bias", [False, True])
def test_a_conv_output_beyond_float32_is_an_overflow_error_not_a_clipped_value(bias, scaling):
    """A finite input so large that the tile's GEMM overflows float32: the per-patch ADC
    would clip the inf to its bound and return a finite, wrong output. Its kernel counts the
    value instead (the layer then skips its own read of the output when it has no bias), and
    the layer says the output overflows; the same with a bias, where the layer checks, and
    with every input scaling (only the per-vector ones check in the kernel). A static input
    range saturates instead: the huge input reads as the range's edge."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 4, 3, padding=1, bias=bias)
    nn.init.constant_(conv.weight, 0.5)
    config = AnalogConfig().replace(**{"periphery.input_scaling": scaling})
    analog = aimcsim.convert_to_analog(nn.Sequential(conv), config).eval()
    if scaling == "static":
        aimcsim.calibrate_input_ranges(analog, [torch.ones(2, 8, 5, 5)])
    aimcsim.program(analog, seed=0)
    mvm = analog[0].analog
    checked = mvm.infer(torch.ones(1, 8, 5, 5))[1]
    assert checked is (scaling in ("per_patch", "static"))  # the numba per-vector path
    huge = torch.full((1, 8, 5, 5), 3e37)
    with torch.no_grad():
        if scaling == "static":  # a fixed DAC range saturates: the output is the clipped one
            saturated = analog(torch.full((1, 8, 5, 5), 1.0))
            torch.testing.assert_close(analog(huge), saturated, rtol=0.05, atol=0.05)
        else:
            with pytest.raises(ValueError, match="overflows float32") as err:
                analog(huge)
            assert "NaN" not in str(err.value)
        assert torch.isfinite(analog(torch.full((1, 8, 5, 5), 1e30))).all()


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True, None])
def test_bad_seeds_are_refused(seed):
    analog = aimcsim.convert_to_analog(nn.Linear(3, 2)).eval()
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        aimcsim.program(analog, seed=seed)


def test_seed_sequence_and_numpy_integers_are_seeds():
    analog = aimcsim.convert_to_analog(nn.Linear(3, 2)).eval()
    aimcsim.program(analog, seed=np.int64(3))
    aimcsim.program(analog, seed=np.random.SeedSequence(3))
    aimcsim.set_time(analog, 10.0, seed=np.int32(2))
    with pytest.raises(ValueError, match="seed"):
        aimcsim.set_time(analog, 10.0, seed=-2)


# ---------------------------------------------------------------- damaged tile states
def load_damaged(mutate, match: str):
    analog = programmed()
    state = copy.deepcopy(analog.state_dict())
    mutate(state["3._extra_state"])
    fresh = aimcsim.convert_to_analog(small_net())
    with pytest.raises(ValueError, match=match):
        fresh.load_state_dict(state)
    assert not fresh[3].is_programmed  # a refused state leaves the layer unprogrammed


def test_damaged_tile_states_are_refused_naming_layer_and_key():
    def set_(key, value):
        def mutate(s):
            s[key] = value
        return mutate

    def delete(key):
        def mutate(s):
            del s[key]
        return mutate

    def nan_in(key):
        def mutate(s):
            s[key] = s[key].clone()
            s[key].view(-1)[0] = float("nan")
        return mutate

    load_damaged(delete("config"), r"^3: .*no key 'config'")
    load_damaged(set_("config", "{not json"), r"^3: state key 'config' is not valid JSON")
    load_damaged(set_("config", json.dumps({"mapping": {"rows": -1}})),
                 r"^3: state key 'config' is not a valid config: rows must be")
    load_damaged(set_("hwa", json.dumps({"weight_noise": "x"})), r"^3: state key 'hwa'")
    load_damaged(delete("tile0._w_n"), r"^3: .*no key 'tile0\._w_n'")
    load_damaged(nan_in("tile0._w_n"), r"^3: state key 'tile0\._w_n' contains NaN")
    load_damaged(nan_in("tile0.state.g_prog"), r"^3: state key 'tile0\.state\.g_prog'")
    load_damaged(set_("tile0._w_max", torch.ones(1, 1, 3)), r"'tile0\._w_max' must be a")
    load_damaged(set_("tile0._alpha", torch.ones(4, dtype=torch.float64)), r"tile0\._alpha")
    load_damaged(set_("tile0.meta", "[]"), r"'tile0\.meta' is not a valid tile record")
    load_damaged(set_("tile0.meta", json.dumps({"t": -1})), r"'tile0\.meta'")
    load_damaged(set_("n_tiles", 7), r"'n_tiles' is 7")
    load_damaged(set_("programmed", "yes"), r"'programmed' must be True or False")


def test_intact_state_still_round_trips_bit_identically():
    analog = programmed()
    fresh = aimcsim.convert_to_analog(small_net()).eval()
    fresh.load_state_dict(analog.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh(X), analog(X), rtol=0, atol=0)


def test_conversion_and_layer_arguments_are_checked():
    with pytest.raises(ValueError, match=r"overrides\['fc'\] must be an AnalogConfig"):
        aimcsim.convert_to_analog(nn.Linear(2, 2), overrides={"fc": {"mapping": {}}})
    with pytest.raises(ValueError, match="hwa must be an instance of HardwareAwareConfig"):
        aimcsim.convert_to_analog(nn.Sequential(nn.Linear(2, 2)), hwa={"weight_noise": 0.1})
    with pytest.raises(ValueError, match="config must be an AnalogConfig"):
        aimcsim.convert_to_analog(nn.Linear(2, 2), config="ideal")
    with pytest.raises(ValueError, match="config must be an instance of AnalogConfig or None"):
        aimcsim.AnalogLinear(2, 2, config="ideal")


def test_conv_shapes_are_checked_and_unbatched_inputs_work_as_in_torch():
    torch.manual_seed(0)
    digital = nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect")
    analog = programmed(nn.Sequential(digital))[0]
    x = torch.randn(2, 5, 5)
    with torch.no_grad():
        assert analog(x).shape == digital(x).shape == (3, 5, 5)
        for bad in (torch.randn(1, 3, 5, 5), torch.randn(1, 2, 1, 5), torch.randn(5, 5),
                    torch.randn(1, 2, 0, 5)):
            with pytest.raises(ValueError, match=r"^0: "):
                analog(bad)
