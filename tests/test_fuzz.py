"""Fuzz suite: random configs (valid and invalid field values), layer shapes, dtypes, layouts,
times, seeds, damaged state dicts and damaged points files. Every case either gives a finite
result of the right shape or raises a ValueError / TypeError (NotProgrammedError where
documented) naming the bad argument: never another exception type, a NaN or a hang.

Small layers and modest example counts keep the suite under a minute on 2 CPU threads.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import warnings
from dataclasses import fields

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn

import aimcsim
from aimcsim.devices import GaussianDeviceConfig, HermesPCMConfig, PCMConfig, WanRRAMConfig
from aimcsim.experiments.drift import _load_points
from aimcsim.nn import HardwareAwareConfig
from aimcsim.nn.guards import WeightsChangedError
from aimcsim.tiles import AnalogConfig, DriftCompensationConfig, MappingConfig, PeripheryConfig
from aimcsim.tiles import NotProgrammedError
from aimcsim.training import TrainConfig



def fuzz(examples: int) -> settings:
    """Hypothesis settings of the suite: no per-example deadline, ``examples`` examples."""
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


#: values of every kind a config field might be handed
ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70),
    st.integers(-3, 40), st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e3, 1e3), st.sampled_from(["512", "abs_max", "tile", "column", "per_mvm",
                                           "none", "iterative", "cosine", "", "nan"]),
    st.integers(0, 600).map(np.int64), st.floats(0, 100).map(np.float32),
    st.lists(st.floats(-1, 1), max_size=5), st.just(float("inf")), st.just(b"\x00"))

CONFIGS = (PeripheryConfig, MappingConfig, DriftCompensationConfig, HardwareAwareConfig,
           PCMConfig, HermesPCMConfig, WanRRAMConfig, GaussianDeviceConfig, TrainConfig)


@fuzz(300)
@given(kind=st.sampled_from(CONFIGS), data=st.data())
def test_config_fields_either_construct_or_name_the_field(kind, data):
    names = [f.name for f in fields(kind)]
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    values = {name: data.draw(ANY_VALUE, label=name) for name in chosen}
    try:
        config = kind(**values)
    except ValueError as err:
        message = str(err)
        assert any(name in message for name in names), message
        return
    for f in fields(config):  # accepted values are normalised to JSON-serialisable types
        json.dumps(getattr(config, f.name))


@fuzz(100)
@given(data=st.data())
def test_analog_config_from_damaged_dicts_is_valid_or_value_error(data):
    base = AnalogConfig().to_dict()
    path = data.draw(st.sampled_from(
        [("periphery", f.name) for f in fields(PeripheryConfig)]
        + [("mapping", f.name) for f in fields(MappingConfig)]
        + [("drift_compensation", f.name) for f in fields(DriftCompensationConfig)]
        + [("device", "config", f.name) for f in fields(PCMConfig)]
        + [("device", "model"), ("read_noise_sampling",), ("bogus",), ("mapping",)]))
    target = base
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = data.draw(ANY_VALUE)
    try:
        config = AnalogConfig.from_dict(base)
    except ValueError as err:
        assert path[-1] in str(err) or "known" in str(err) or "dict" in str(err), str(err)
        return
    json.dumps(config.to_dict())


@fuzz(100)
@given(data=st.data())
def test_config_replace_with_any_key_and_value_is_valid_or_value_error(data):
    keys = (["device", "periphery", "mapping", "drift_compensation", "read_noise_sampling",
             "to_dict", "device.g_max", "device.config", "periphery.inp_step",
             "mapping.rows.real", ""]
            + [f"periphery.{f.name}" for f in fields(PeripheryConfig)]
            + [f"mapping.{f.name}" for f in fields(MappingConfig)]
            + [f"drift_compensation.{f.name}" for f in fields(DriftCompensationConfig)]
            + [f"device.config.{f.name}" for f in fields(PCMConfig)])
    key = data.draw(st.sampled_from(keys), label="key")
    value = data.draw(ANY_VALUE, label="value")
    original = AnalogConfig()
    try:
        config = original.replace(**{key: value})
    except ValueError as err:
        last = key.rpartition(".")[2]
        assert key in str(err) or (last and last in str(err)), str(err)
        assert original.to_dict() == AnalogConfig().to_dict()  # left untouched
        return
    json.dumps(config.to_dict())


# ---------------------------------------------------------------- layers
def _config(data) -> AnalogConfig:
    """A valid config with a few fields varied (the forward fuzz is about inputs)."""
    changes = {}
    if data.draw(st.booleans(), label="vary"):
        changes = data.draw(st.fixed_dictionaries({}, optional={
            "periphery.inp_bits": st.sampled_from([None, 2, 7, 24]),
            "periphery.out_bits": st.sampled_from([2, 9, 24]),
            "periphery.out_noise": st.sampled_from([0.0, 0.06, 5.0]),
            "periphery.noise_management": st.sampled_from(["none", "abs_max", "constant"]),
            "periphery.bound_management": st.sampled_from(["none", "iterative"]),
            "periphery.max_bound_iterations": st.integers(0, 32),
            "mapping.rows": st.integers(1, 12),
            "mapping.cols": st.integers(1, 6),
            "mapping.weight_scaling": st.sampled_from(["tile", "column"]),
            "drift_compensation.enabled": st.booleans(),
            "drift_compensation.granularity": st.sampled_from(["tile", "column"]),
            "drift_compensation.calibration_vectors": st.integers(1, 8),
            "read_noise_sampling": st.sampled_from(["per_read", "per_mvm"]),
        }), label="changes")
    return AnalogConfig().replace(**changes)


def _layer(data) -> tuple[nn.Module, tuple[int, ...]]:
    """A small digital layer and its input shape without the batch dimension."""
    kind = data.draw(st.sampled_from(["linear", "conv1d", "conv2d"]), label="kind")
    cin = data.draw(st.integers(1, 6), label="cin")
    cout = data.draw(st.integers(1, 6), label="cout")
    bias = data.draw(st.booleans(), label="bias")
    if kind == "linear":
        return nn.Linear(cin, cout, bias=bias), (cin,)
    groups = data.draw(st.sampled_from([g for g in (1, 2, 3) if cin % g == 0 and cout % g == 0]),
                       label="groups")
    k = data.draw(st.integers(1, 3), label="k")
    size = data.draw(st.integers(k, 6), label="size")
    padding_mode = data.draw(st.sampled_from(["zeros", "reflect", "circular"]), label="pad")
    padding = data.draw(st.integers(0, min(1, size - 1)), label="padding")
    layer_cls = nn.Conv1d if kind == "conv1d" else nn.Conv2d
    layer = layer_cls(cin, cout, k, stride=data.draw(st.integers(1, 2)), padding=padding,
                      groups=groups, bias=bias, padding_mode=padding_mode)
    return layer, (cin, size) if kind == "conv1d" else (cin, size, size)


GOOD_SEEDS = st.one_of(st.integers(0, 2**32), st.integers(0, 9).map(np.uint8))
BAD_SEEDS = st.one_of(st.integers(-5, -1), st.floats(0, 3), st.sampled_from(["1", None, True]))
GOOD_TIMES = st.one_of(st.floats(0, 1e9), st.sampled_from([0.0, 1e-9, 1e30, 1e300]))
BAD_TIMES = st.one_of(st.floats(-1e3, -1e-9),
                      st.sampled_from([float("nan"), float("inf"), "1"]))
GOOD_DTYPES = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16])
BAD_DTYPES = st.sampled_from([torch.int64, torch.int32, torch.bool, torch.complex64,
                              torch.uint8])


def _mostly(data, good, bad, label: str):
    """A draw from ``good`` about four times in five, else from ``bad`` (a middle value picks
    ``bad``: hypothesis favours the ends of a range)."""
    pick_bad = data.draw(st.integers(0, 9), label=f"{label}?") in (4, 7)
    return data.draw(bad if pick_bad else good, label=label)


def _expect_named(err: Exception, *names: str) -> None:
    event(f"{type(err).__name__}: {str(err)[:40]}")
    message = str(err)
    assert any(name in message for name in names), message


@fuzz(150)
@given(data=st.data())
def test_layer_forward_is_finite_of_the_right_shape_or_a_clear_error(data):
    torch.manual_seed(data.draw(st.integers(0, 100), label="torch_seed"))
    digital, shape = _layer(data)
    with torch.no_grad():
        digital.weight.mul_(data.draw(st.sampled_from([1.0, 0.0, 1e-20, 1e3]), label="wscale"))
    try:
        analog = aimcsim.convert_to_analog(digital, _config(data))
    except ValueError as err:  # e.g. a kernel taller than the tile
        _expect_named(err, "tile")
        return
    mode = data.draw(st.sampled_from(["eval", "eval", "train", "train", "unprogrammed"]),
                     label="mode")
    name = analog.layer_name
    if mode != "unprogrammed":
        seed = _mostly(data, GOOD_SEEDS, BAD_SEEDS, "seed")
        try:
            aimcsim.program(analog, seed=seed)
        except ValueError as err:
            _expect_named(err, "seed")
            return
        t = _mostly(data, GOOD_TIMES, BAD_TIMES, "t")
        try:
            aimcsim.set_time(analog, t)
        except ValueError as err:
            _expect_named(err, "t must")
            return
    analog.train(mode == "train")
    batch = data.draw(st.integers(0, 3), label="batch")
    dtype = _mostly(data, GOOD_DTYPES, BAD_DTYPES, "dtype")
    scale = data.draw(st.sampled_from([1.0, 1e-30, 1e6, 1e37]), label="scale")
    x = torch.randn((batch,) + shape) * scale
    if batch and data.draw(st.integers(0, 9), label="poison") in (4, 7):
        x.view(-1)[data.draw(st.integers(0, x.numel() - 1))] = data.draw(
            st.sampled_from([float("nan"), float("inf"), -float("inf")]))
    layout = data.draw(st.sampled_from(["contiguous", "channels_last", "strided"]),
                       label="layout")
    if layout == "channels_last" and len(shape) == 3:
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":  # a non-contiguous view: every other element of a wider tensor
        wide = torch.zeros(x.shape[:-1] + (2 * x.shape[-1],))
        wide[..., ::2] = x
        x = wide[..., ::2]
    x = x.to(dtype) if not dtype.is_complex else torch.complex(x, x).to(dtype)
    expected = digital(torch.zeros((batch,) + shape)).shape
    try:
        with torch.no_grad():
            y = analog(x)
    except NotProgrammedError as err:
        assert mode == "unprogrammed", err
        _expect_named(err, name)
        return
    except TypeError as err:
        assert not dtype.is_floating_point, err
        _expect_named(err, name, "dtype")
        return
    except ValueError as err:
        _expect_named(err, f"{name} input")
        return
    assert mode != "unprogrammed"
    event(f"computed ({mode})")
    assert y.shape == expected and y.dtype == dtype  # computed in float32, returned as given
    assert torch.isfinite(y).all()


@fuzz(120)
@given(data=st.data())
def test_input_shapes_give_the_digital_shape_or_a_value_error(data):
    """Any input shape (dims, channels, spatial sizes down to 0, with every padding mode and
    "same" / "valid"): the digital layer's output shape, or a ValueError naming the layer."""
    kind = data.draw(st.sampled_from(["linear", "conv1d", "conv2d"]), label="kind")
    cin, cout = data.draw(st.integers(1, 4), label="cin"), data.draw(st.integers(1, 4))
    if kind == "linear":
        digital = nn.Linear(cin, cout)
        shape = data.draw(st.lists(st.integers(0, 5), min_size=0, max_size=3)) + [
            data.draw(st.sampled_from([cin, cin, cin + 1, 0]))]
    else:
        nd = 1 if kind == "conv1d" else 2
        padding = data.draw(st.sampled_from([0, 1, 2, "same", "valid"]), label="padding")
        dilation = data.draw(st.integers(1, 2), label="dilation")
        stride = 1 if padding == "same" else data.draw(st.integers(1, 2), label="stride")
        digital = (nn.Conv1d if nd == 1 else nn.Conv2d)(
            cin, cout, data.draw(st.integers(1, 3), label="k"), stride=stride,
            padding=padding, dilation=dilation,
            padding_mode=data.draw(st.sampled_from(["zeros", "reflect", "replicate",
                                                    "circular"]), label="mode"))
        dims = data.draw(st.sampled_from([nd + 2, nd + 2, nd + 1, nd + 3]), label="dims")
        shape = ([data.draw(st.integers(0, 2), label="batch"),
                  data.draw(st.sampled_from([cin, cin, cin + 1]), label="channels")]
                 + [data.draw(st.integers(0, 6), label="size") for _ in range(dims - 2)])
        shape = shape[:dims]
    analog = aimcsim.convert_to_analog(digital, AnalogConfig().replace(**{"mapping.rows": 16}))
    aimcsim.program(analog, seed=0)
    mode = data.draw(st.sampled_from(["eval", "train", "digital"]), label="mode")
    analog.train(mode == "train")
    x = torch.randn(shape)
    try:
        expected = digital(x).shape
    except RuntimeError:
        expected = None  # torch refuses it: the analog layer must refuse it with a ValueError
    try:
        with torch.no_grad(), (aimcsim.digital(analog) if mode == "digital"
                               else contextlib.nullcontext()):
            y = analog(x)
    except ValueError as err:
        _expect_named(err, analog.layer_name)
        assert expected is None, f"torch computes {shape} -> {expected}, aimcsim refused: {err}"
        return
    assert expected is not None and y.shape == expected, (shape, expected)
    assert torch.isfinite(y).all()


@fuzz(25)
@given(data=st.data())
def test_changed_weights_are_refused_in_eval_and_fine_in_training(data):
    digital, shape = _layer(data)
    analog = aimcsim.convert_to_analog(digital).eval()
    aimcsim.program(analog, seed=data.draw(st.integers(0, 10)))
    how = data.draw(st.sampled_from(["zero_", "add_", "same", "bias"]))
    with torch.no_grad():
        if how == "zero_":
            analog.weight.zero_()
        elif how == "add_":
            analog.weight.add_(data.draw(st.floats(1e-3, 10)))
        elif how == "same":
            analog.weight.copy_(analog.weight.clone())
        elif analog.bias is not None:
            analog.bias.add_(1.0)
    x = torch.randn((2,) + shape)
    with torch.no_grad():
        if how in ("zero_", "add_"):
            with pytest.raises(WeightsChangedError, match="program"):
                analog(x)
            analog.train()
        assert torch.isfinite(analog(x)).all()


# ---------------------------------------------------------------- damaged state dicts
_PROGRAMMED: dict = {}


def _programmed_state():
    if not _PROGRAMMED:
        torch.manual_seed(0)
        config = AnalogConfig().replace(**{"mapping.rows": 4, "mapping.cols": 3})
        layer = aimcsim.convert_to_analog(nn.Linear(6, 5), config).eval()
        aimcsim.program(layer, seed=0)
        _PROGRAMMED["state"] = layer.state_dict()
    return _PROGRAMMED["state"]


DAMAGE = st.sampled_from(["delete", "nan", "shape", "dtype", "string", "int", "none",
                          "tensor_for_string", "json_list", "json_garbage", "random_same"])


@fuzz(80)
@given(data=st.data())
def test_damaged_state_dicts_load_or_raise_value_error_naming_the_key(data):
    state = copy.deepcopy(_programmed_state())
    extra = state["_extra_state"]
    key = data.draw(st.sampled_from(sorted(extra)), label="key")
    damage = data.draw(DAMAGE, label="damage")
    value = extra[key]
    if damage == "delete":
        del extra[key]
    elif damage == "nan" and isinstance(value, torch.Tensor) and value.is_floating_point():
        extra[key] = value.clone()
        extra[key].view(-1)[0] = float("nan")
    elif damage == "shape":
        extra[key] = torch.zeros(data.draw(st.integers(0, 4)), 2)
    elif damage == "dtype" and isinstance(value, torch.Tensor):
        extra[key] = value.to(torch.float64 if value.dtype != torch.float64 else torch.int32)
    elif damage == "string":
        extra[key] = data.draw(st.text(max_size=20))
    elif damage == "int":
        extra[key] = data.draw(st.integers(-3, 10))
    elif damage == "none":
        extra[key] = None
    elif damage == "tensor_for_string":
        extra[key] = torch.ones(3)
    elif damage == "json_list":
        extra[key] = json.dumps([1, 2, 3])
    elif damage == "json_garbage" and isinstance(value, str):
        extra[key] = value[: data.draw(st.integers(0, max(len(value) - 1, 0)))]
    elif damage == "random_same" and isinstance(value, torch.Tensor):
        extra[key] = torch.rand(value.shape).to(value.dtype)
    fresh = aimcsim.convert_to_analog(nn.Linear(6, 5)).eval()
    try:
        fresh.load_state_dict(state)
    except ValueError as err:
        _expect_named(err, "<root>")
        _expect_named(err, key, "state", "config")
        return
    if fresh.is_programmed:
        with torch.no_grad():
            y = fresh(torch.randn(3, 6))
        assert y.shape == (3, 5) and torch.isfinite(y).all()


# ---------------------------------------------------------------- damaged points files
GOOD_POINT = st.fixed_dictionaries({
    "series": st.sampled_from(["fp32", "direct", "hwa"]), "gdc": st.booleans(),
    "rep": st.integers(0, 4), "t": st.floats(0, 1e5), "accuracy": st.floats(0, 1)})
JSON_VALUE = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                          lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                          max_leaves=8)
LINE = st.one_of(GOOD_POINT.map(lambda p: json.dumps(p).encode()),
                 JSON_VALUE.map(lambda v: json.dumps(v).encode()),
                 st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
                 GOOD_POINT.map(lambda p: json.dumps(p).encode()[:-3]),
                 GOOD_POINT.map(lambda p: json.dumps({k: v for k, v in p.items()
                                                      if k != "accuracy"}).encode()))


@fuzz(80)
@given(lines=st.lists(LINE, max_size=8), final_newline=st.booleans())
def test_points_files_load_the_good_points_and_skip_the_rest(tmp_path_factory, lines,
                                                             final_newline):
    path = tmp_path_factory.mktemp("points") / "points.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"\n" if final_newline else b""))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        points = _load_points(path)
    for p in points.values():
        assert p["series"] in ("fp32", "direct", "hwa") and 0 <= p["accuracy"] <= 1
        assert math.isfinite(p["t"])
    for w in caught:
        assert "points.jsonl" in str(w.message) and "skipped" in str(w.message)
