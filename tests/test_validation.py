"""The shared argument checks (aimcsim/validation.py) and every config's construction-time
validation: bools, strings, floats for integers, NaN / inf and out-of-range values raise a
ValueError naming the field; numpy scalars are accepted and normalised (JSON-serialisable)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aimcsim.devices import GaussianDeviceConfig, PCMConfig
from aimcsim.experiments.drift import DriftStudyConfig
from aimcsim.nn import HardwareAwareConfig
from aimcsim.tiles import AnalogConfig, DriftCompensationConfig, MappingConfig, PeripheryConfig
from aimcsim.tiles.periphery import quantization_step
from aimcsim.training import TrainConfig
from aimcsim.validation import (MAX_CONVERTER_BITS, all_finite, check_bool, check_finite,
                                check_float, check_int, check_seed, check_time)

NAN, INF = float("nan"), float("inf")


def test_check_int():
    assert check_int(np.int64(5), "n", 1, 10) == 5 and type(check_int(np.int8(5), "n")) is int
    assert check_int(None, "n", allow_none=True) is None
    for bad in (True, "512", 512.0, 1.5, NAN, None, [1]):
        with pytest.raises(ValueError, match=r"^n must be an integer"):
            check_int(bad, "n")
    with pytest.raises(ValueError, match=r"n must be an integer >= 1 and <= 10, got 11"):
        check_int(11, "n", 1, 10)


def test_check_float():
    assert check_float(np.float32(0.5), "x", 0, 1) == 0.5 and type(check_float(2, "x")) is float
    assert check_float(None, "x", allow_none=True) is None
    for bad in (True, "1", NAN, INF, -INF, None, np.array([1.0])):
        with pytest.raises(ValueError, match=r"^x must be a finite number"):
            check_float(bad, "x")
    with pytest.raises(ValueError, match=r"x must be a finite number > 0, got 0.0"):
        check_float(0.0, "x", 0, low_open=True)
    with pytest.raises(ValueError, match=r"< 1"):
        check_float(1.0, "x", 0, 1, high_open=True)


def test_check_bool_seed_time():
    assert check_bool(np.bool_(True), "b") is True
    for bad in (1, 0, "True", None):
        with pytest.raises(ValueError, match="b must be True or False"):
            check_bool(bad, "b")
    seq = np.random.SeedSequence(1)
    assert check_seed(seq) is seq and check_seed(np.uint32(3)) == 3
    for bad in (-1, 1.0, "1", True, None):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            check_seed(bad)
    for bad in ("1", True, NAN, -1.0, INF, None):
        with pytest.raises(ValueError, match="t must be"):
            check_time(bad)


# (config class, field, bad values, accepted values)
CASES = [
    (PeripheryConfig, "inp_bits", [1, 25, 130, 7.0, "7", True, NAN], [2, 24, None, np.int64(8)]),
    (PeripheryConfig, "out_bits", [0, 25, 9.5, "9", False], [2, 24, np.int16(9)]),
    (PeripheryConfig, "inp_bound", [0, -1, NAN, INF, "1", 1e7, True], [1e-3, 2, np.float32(1)]),
    (PeripheryConfig, "out_noise", [-0.1, NAN, INF, "0"], [0, 0.5]),
    (PeripheryConfig, "nm_constant", [0, -2, NAN, None], [0.5, 3]),
    (PeripheryConfig, "noise_management", ["abs", None, 1], ["none", "constant"]),
    (PeripheryConfig, "bound_management", ["yes", None], ["none"]),
    (PeripheryConfig, "max_bound_iterations", [-1, 33, 2.0, "5", True], [0, 32]),
    (MappingConfig, "rows", [0, -1, 512.0, "512", True, (1 << 16) + 1], [1, 1 << 16]),
    (MappingConfig, "cols", [0, 1.5, None], [3, np.int32(64)]),
    (MappingConfig, "weight_scaling", ["row", None], ["column"]),
    (MappingConfig, "pair_drift", ["aihwkit", None, 1], ["net", "independent"]),
    (DriftCompensationConfig, "enabled", [1, "True", None], [False, np.bool_(True)]),
    (DriftCompensationConfig, "granularity", ["all"], ["column"]),
    (DriftCompensationConfig, "reference", ["exact", None], ["programmed", "read"]),
    (DriftCompensationConfig, "calibration_vectors", [0, 32.0, (1 << 16) + 1, True], [1, 64]),
    (AnalogConfig, "read_noise_sampling", ["sometimes", None], ["per_mvm"]),
    (AnalogConfig, "device", ["pcm", None], []),
    (AnalogConfig, "periphery", [{}, None], []),
    (HardwareAwareConfig, "weight_noise", [-0.1, NAN, "0.1", 11], [0, 0.08]),
    (HardwareAwareConfig, "clip_sigma", [0, -1, NAN, INF, "2"], [None, 2.5]),
    (HardwareAwareConfig, "periphery", [1, "yes"], [False]),
    (PCMConfig, "g_max", [0, -25, NAN, "25", 1e7], [10, np.float64(25)]),
    (PCMConfig, "drift_scale", [-1, INF], [0, 2]),
    (PCMConfig, "prog_coefficients", [(1, 2), "abc", (1, 2, NAN), (1e9, 0, 0)],
     [[0.1, 0.2, 0.3]]),
    (PCMConfig, "nu_mean_params", [(-1e9, 0.0, 0.0, 1e9), (0, 0, 0)], [(0.0, 0.02, 0.05, 0.1)]),
    (PCMConfig, "fast_read", [1, None], [False]),
    (GaussianDeviceConfig, "read_sigma", [-0.1, NAN, "0"], [0, 1]),
    (GaussianDeviceConfig, "noise_idle_devices", [0], [True]),
    (TrainConfig, "epochs", [0, 1.5, "10", True], [1, np.int64(3)]),
    (TrainConfig, "batch_size", [0, 128.0], [1]),
    (TrainConfig, "lr", [0, -1, NAN, "0.1"], [1e-4]),
    (TrainConfig, "momentum", [0, 1, NAN], [0.5]),
    (TrainConfig, "schedule", ["linear", None], ["cosine"]),
    (TrainConfig, "seed", [-1, 0.5], [0, 7]),
    (TrainConfig, "channels_last", [1, "no"], [False]),
    (TrainConfig, "threads", [-1, 2.0], [0, 2]),
    (TrainConfig, "swa_start", [-1, 61, 1.0], [0, 60]),
]


@pytest.mark.parametrize("kind,name,bad,good", CASES,
                         ids=[f"{c[0].__name__}.{c[1]}" for c in CASES])
def test_every_config_field_is_checked_at_construction(kind, name, bad, good):
    for value in bad:
        with pytest.raises(ValueError, match=name):
            kind(**{name: value})
    for value in good:
        kind(**{name: value})


def test_accepted_numpy_values_keep_the_config_json_serialisable():
    config = AnalogConfig(periphery=PeripheryConfig(inp_bits=np.int64(8),
                                                    out_bound=np.float32(10)),
                          mapping=MappingConfig(rows=np.int32(64)))
    again = AnalogConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again.to_dict() == config.to_dict() and again.periphery.inp_bits == 8


def test_replace_and_from_dict_validate_too():
    with pytest.raises(ValueError, match="out_bits"):
        AnalogConfig().replace(**{"periphery.out_bits": 130})
    with pytest.raises(ValueError, match="rows"):
        AnalogConfig.from_dict({"mapping": {"rows": "512"}})
    with pytest.raises(ValueError, match="MappingConfig must be given as a dict"):
        AnalogConfig.from_dict({"mapping": [512]})
    with pytest.raises(ValueError, match="AnalogConfig dict"):
        AnalogConfig.from_dict("{}")


def test_the_largest_bit_width_still_has_a_finite_float32_step():
    step = quantization_step(MAX_CONVERTER_BITS, 1.0)
    assert np.isfinite(np.float32(1.0 / step)) and np.float32(step) > 0


def test_drift_study_config_checks(tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    for name, value in (("repetitions", 0), ("repetitions", 2.0), ("seed", -1),
                        ("batch_size", 0), ("limit", 0), ("times", (1.0, NAN)),
                        ("times", ("1",)), ("times", "1"), ("analog", {}), ("gdc", ()),
                        ("gdc", ("on",)), ("gdc", "on")):
        with pytest.raises(ValueError, match=name):
            DriftStudyConfig(model="f1net", fp32_weights=str(weights), **{name: value})


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 40), min_size=1, max_size=3), data=st.data(),
       dtype=st.sampled_from([torch.float32, torch.float64, torch.float16]),
       bad=st.sampled_from([float("nan"), float("inf"), -float("inf")]))
def test_all_finite_finds_any_nan_or_inf_and_does_not_overflow(shape, data, dtype, bad):
    t = torch.randn(shape).to(dtype)
    assert all_finite(t) and all_finite(t.numpy() if dtype != torch.float16 else t)
    assert all_finite(torch.full(shape, 3e38)) and all_finite(torch.zeros(0, 3))
    index = data.draw(st.integers(0, t.numel() - 1))
    t.view(-1)[index] = bad
    assert not all_finite(t) and not all_finite(t.float().numpy())
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        check_finite(t, "x")
