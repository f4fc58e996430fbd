"""Analog layers and convert_to_analog: exactness in the ideal limit, the unfold reference,
the time API, gradients, save/load and bad input."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import aimcsim
from aimcsim.models import build_model
from aimcsim.nn import AnalogConv1d, AnalogConv2d, AnalogLinear, convert_to_analog
from aimcsim.tiles import AnalogConfig, NotProgrammedError, PeripheryConfig
from aimcsim.tiles.periphery import reference_adc, reference_dac


def ideal(**changes) -> AnalogConfig:
    return AnalogConfig.ideal().replace(**changes)


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = torch.rand(m.weight.shape, generator=gen) + 0.5
            m.bias.data = torch.randn(m.bias.shape, generator=gen) * 0.1
            m.running_mean = torch.randn(m.running_mean.shape, generator=gen) * 0.1
            m.running_var = torch.rand(m.running_var.shape, generator=gen) + 0.5
    return model


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(40, 700), nn.ReLU(), nn.Linear(700, 30))
        self.head = nn.Linear(30, 5)

    def forward(self, x):
        return self.head(self.body(x))


@pytest.fixture(scope="module")
def resnet32():
    torch.manual_seed(0)
    return randomize_batchnorm(build_model("resnet32")).eval()


@pytest.mark.parametrize("channels_last", [False, True])
def test_ideal_resnet32_gives_fp32_outputs(resnet32, channels_last):
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = resnet32(x)
        analog = convert_to_analog(resnet32, ideal())
        aimcsim.program(analog, 0)
        aimcsim.set_time(analog, 86400.0)
        if channels_last:
            analog = analog.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        out = analog(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    small = convert_to_analog(resnet32, ideal(**{"mapping.rows": 64, "mapping.cols": 24}))
    aimcsim.program(small, 3)
    with torch.no_grad():
        torch.testing.assert_close(small(x), ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    assert sum(l.n_tiles for _, l in aimcsim.analog_layers(small)) > \
        sum(l.n_tiles for _, l in aimcsim.analog_layers(analog))


def test_ideal_mlp_gives_fp32_outputs_on_both_paths():
    torch.manual_seed(0)
    mlp = MLP().eval()
    x = torch.randn(16, 40)
    ref = mlp(x)
    analog = convert_to_analog(mlp, ideal(**{"mapping.rows": 128, "mapping.cols": 100}))
    aimcsim.program(analog, 1)
    with torch.no_grad():
        kernel_out = analog(x)
    torch_out = analog(x.clone().requires_grad_(True))  # differentiable torch path
    for out in (kernel_out, torch_out):
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def unfold_reference(layer: AnalogConv2d, x: torch.Tensor) -> torch.Tensor:
    """The analog conv with one input scale per image (``input_scaling="per_image"``)
    computed the slow way: unfold patches, per tile DAC -> GEMM -> ADC."""
    periphery = layer.analog_config.periphery
    x = F.pad(x, layer._reversed_padding_repeated_twice, mode=layer.padding_mode) \
        if layer.padding_mode != "zeros" else x
    padding = 0 if layer.padding_mode != "zeros" else layer.padding
    n = x.shape[0]
    out = None
    for block, tiles in zip(layer.analog.tiles.blocks, layer.analog.tiles.grid):
        i0, i1 = block.in_channels
        xs = x[:, i0:i1]
        xq, s = reference_dac(xs.numpy(), periphery)
        cols = F.unfold(torch.from_numpy(xq), layer.kernel_size, layer.dilation, padding,
                        layer.stride)  # (N, r_total, L)
        length = cols.shape[-1]
        ys = []
        for slot, tile in zip(block.slots, tiles):
            w = tile.normalized_weights  # (G, r, c)
            g, r, c = w.shape
            patches = cols.reshape(n, g, r, length)
            y = np.einsum("ngrl,grc->ngcl", patches.numpy(), w).reshape(n, g * c, length)
            yq, _ = reference_adc(y, periphery)
            ys.append(yq * s[:, None, None] * tile.output_scale[None, :, None])
        y = torch.from_numpy(np.concatenate(ys, axis=1))
        full = torch.zeros(n, layer.out_channels, length)
        full[:, block.out_channels[0]:block.out_channels[1]] = y
        out = full if out is None else out + full
    probe = F.conv2d(x[:1, :1], torch.zeros(1, 1, *layer.kernel_size), None, layer.stride,
                     padding, layer.dilation)
    out = out.reshape(n, layer.out_channels, *probe.shape[2:])
    if layer.bias is not None:
        out = out + layer.bias.detach().reshape(1, -1, 1, 1)
    return out


@settings(max_examples=25, deadline=None)
@given(cin_g=st.integers(1, 6), cout_g=st.integers(1, 6), groups=st.sampled_from([1, 2, 3]),
       k=st.sampled_from([1, 2, 3]), stride=st.integers(1, 2), dilation=st.integers(1, 2),
       padding=st.integers(0, 2), mode=st.sampled_from(["zeros", "reflect", "circular"]),
       rows=st.sampled_from([4, 9, 20, 512]), cols=st.sampled_from([2, 5, 512]),
       bias=st.booleans(), seed=st.integers(0, 10_000))
def test_tiled_conv_equals_unfold_reference(cin_g, cout_g, groups, k, stride, dilation, padding,
                                            mode, rows, cols, bias, seed):
    if cin_g * k * k > rows and rows < k * k:
        rows = k * k
    if mode != "zeros" and padding == 0:
        mode = "zeros"
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin_g * groups, cout_g * groups, k, stride, padding, dilation, groups,
                     bias, mode)
    periphery = PeripheryConfig(out_noise=0.0, bound_management="none",
                                input_scaling="per_image")
    cfg = AnalogConfig(periphery=periphery, gemm_precision="float32").replace(
        **{"mapping.rows": rows, "mapping.cols": cols})
    layer = convert_to_analog(nn.Sequential(conv), cfg)[0].eval()
    aimcsim.program(layer, seed)
    x = torch.randn(3, cin_g * groups, 9, 8)
    with torch.no_grad():
        out = layer(x)
    ref = unfold_reference(layer, x)
    step = periphery.out_step * float(max(t.output_scale.max() for t in layer.tiles)) \
        * float(x.abs().max())
    assert out.shape == ref.shape
    # equal up to rare rounding ties of the two converters (one ADC step at most)
    diff = (out - ref).abs()
    assert diff.max().item() <= 2.01 * step * len(layer.analog.tiles.blocks)
    assert (diff > 1e-4 * (1 + ref.abs())).float().mean().item() < 0.02


def test_depthwise_and_conv1d_in_the_ideal_limit():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(),
                          nn.Conv2d(8, 16, 1))
    x = torch.randn(2, 8, 7, 7)
    analog = convert_to_analog(model, ideal(**{"mapping.rows": 27, "mapping.cols": 3})).eval()
    aimcsim.program(analog, 0)
    with torch.no_grad():
        torch.testing.assert_close(analog(x), model(x), rtol=1e-4, atol=1e-4)
    conv1d = nn.Conv1d(6, 4, 5, stride=2, padding=2, padding_mode="replicate", dilation=1)
    x1 = torch.randn(3, 6, 31)
    analog1 = convert_to_analog(conv1d, ideal(**{"mapping.rows": 12})).eval()
    assert isinstance(analog1, AnalogConv1d)
    aimcsim.program(analog1, 0)
    with torch.no_grad():
        torch.testing.assert_close(analog1(x1), conv1d(x1), rtol=1e-4, atol=1e-4)


def test_conversion_swaps_every_layer_and_respects_overrides_and_excludes():
    torch.manual_seed(0)
    model = MLP()
    special = ideal(**{"mapping.rows": 16})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analog = convert_to_analog(model, AnalogConfig(), overrides={"head": special},
                                   exclude=["body.2"])
    assert isinstance(analog.body[0], AnalogLinear)
    assert type(analog.body[2]) is nn.Linear
    assert analog.head.analog_config.mapping.rows == 16
    assert analog.body[0].analog_config.mapping.rows == 512
    assert type(model.body[0]) is nn.Linear  # the original is untouched
    by_type = convert_to_analog(model, AnalogConfig(), overrides={nn.Linear: special})
    assert by_type.body[0].analog_config.mapping.rows == 16
    same = convert_to_analog(model, inplace=True)
    assert same is model and isinstance(model.body[0], AnalogLinear)
    with pytest.warns(UserWarning, match="conv3"):
        mixed = nn.Sequential()
        mixed.add_module("conv3", nn.Conv3d(2, 2, 1))
        mixed.add_module("fc", nn.Linear(2, 2))
        out = convert_to_analog(mixed)
    assert isinstance(out.fc, AnalogLinear) and type(out.conv3) is nn.Conv3d
    text = aimcsim.summary(convert_to_analog(build_model("resnet32")))
    assert "41 tiles" in text and "stem.0" in text


def test_time_api_reads_again_without_reprogramming(resnet32):
    analog = convert_to_analog(resnet32)
    aimcsim.program(analog, 0)
    x = torch.randn(2, 3, 32, 32)
    first_layer = aimcsim.analog_layers(analog)[0][1]
    g_prog = first_layer.tiles[0]._state.g_prog.copy()
    with torch.no_grad():
        aimcsim.set_time(analog, 1.0, seed=1)
        a = analog(x)
        aimcsim.set_time(analog, 1e5, seed=1)
        b = analog(x)
    np.testing.assert_array_equal(first_layer.tiles[0]._state.g_prog, g_prog)
    assert first_layer.time == 1e5
    assert not torch.equal(a, b)
    aimcsim.program(analog, 1)
    assert not np.array_equal(first_layer.tiles[0]._state.g_prog, g_prog)


def test_per_mvm_read_noise_changes_every_forward():
    torch.manual_seed(0)
    layer = convert_to_analog(nn.Linear(50, 20),
                              AnalogConfig(read_noise_sampling="per_mvm")).eval()
    aimcsim.program(layer, 0)
    aimcsim.set_time(layer, 3600.0)
    x = torch.randn(4, 50)
    with torch.no_grad():
        assert not torch.equal(layer(x), layer(x))


def test_training_forward_is_differentiable_with_straight_through_quantizers():
    torch.manual_seed(0)
    model = convert_to_analog(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(),
                                            nn.Linear(8 * 6 * 6, 4)))
    model.train()
    x = torch.randn(5, 3, 8, 8, requires_grad=True)
    loss = model(x).pow(2).mean()
    loss.backward()
    for p in model.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    assert x.grad is not None and x.grad.abs().sum() > 0
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.step()
    from aimcsim.nn.backends.torch_periphery import ste_quantize
    v = torch.linspace(-1, 1, 11, requires_grad=True)
    ste_quantize(v, 0.3).sum().backward()
    torch.testing.assert_close(v.grad, torch.ones(11))


def test_state_dict_round_trip_is_bit_identical(tmp_path, resnet32):
    analog = convert_to_analog(resnet32)
    aimcsim.program(analog, 5)
    aimcsim.set_time(analog, 3600.0)
    path = tmp_path / "analog.pt"
    torch.save(analog.state_dict(), path)
    state = torch.load(path, weights_only=True)
    fresh = convert_to_analog(build_model("resnet32")).eval()
    fresh.load_state_dict(state)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), analog(x), rtol=0, atol=0)
        aimcsim.set_time(analog, 86400.0)
        aimcsim.set_time(fresh, 86400.0)
        torch.testing.assert_close(fresh(x), analog(x), rtol=0, atol=0)
    mismatched = convert_to_analog(build_model("resnet32"),
                                   AnalogConfig().replace(**{"periphery.out_bits": 8}))
    with pytest.raises(ValueError, match="different analog config"):
        mismatched.load_state_dict(state)


def test_bad_input_names_the_layer():
    model = convert_to_analog(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2)))
    model.eval()
    with pytest.raises(NotProgrammedError, match="0"):
        model(torch.randn(1, 3, 3, 3))
    aimcsim.program(model, 0)
    with pytest.raises(ValueError, match="0: expected input"):
        model(torch.randn(1, 5, 3, 3))
    x = torch.randn(1, 3, 3, 3)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model(x)
    with pytest.raises(ValueError, match="t must"):
        aimcsim.set_time(model, -5.0)
    with pytest.raises(ValueError, match="cannot convert layer '0'"):
        convert_to_analog(nn.Sequential(nn.Conv2d(3, 4, 5)), AnalogConfig().replace(
            **{"mapping.rows": 16}))
    with pytest.raises(ValueError, match="no analog layers"):
        aimcsim.program(nn.Linear(2, 2), 0)
    with pytest.raises(ValueError, match="AnalogConfig"):
        convert_to_analog(nn.Linear(2, 2), config={"rows": 4})
