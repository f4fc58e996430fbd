"""The state-independent Gaussian device, the ideal device, and the device registry (a user's own
model registered, built by name and round-tripped through JSON)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import ndtr

from aimcsim.devices import (DEVICE_REGISTRY, SHORT_NAMES, DeviceModel, DeviceState,
                             GaussianDevice, GaussianDeviceConfig, device_from_dict, ideal_device,
                             known_device_names, make_device, register_device)

N = 100_000


def std_se(x):
    """SE of the sample standard deviation (delta method; s / sqrt(2n) for a normal sample)."""
    d = np.asarray(x, np.float64) - np.mean(x)
    s2 = np.mean(d * d)
    return float(math.sqrt(max(np.mean(d ** 4) - s2 * s2, 0.0) / d.size) / (2 * math.sqrt(s2)))


def censored_normal(mu, s):
    """Mean and standard deviation of max(0, N(mu, s^2))."""
    a = mu / s
    pdf = math.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
    mean = mu * ndtr(a) + s * pdf
    second = (mu * mu + s * s) * ndtr(a) + mu * s * pdf
    return mean, math.sqrt(second - mean * mean)


@pytest.mark.parametrize("target", [0.2, 2.0, 10.0, 25.0])
def test_programming_noise_is_state_independent(target):
    """At 2, 10, 25 µS: N(target, 0.5^2); at 0.2 µS the clamp at 0 gives the censored normal."""
    device = GaussianDevice(prog_sigma=0.5, read_sigma=0.0)
    g = device.program(np.full(N, target, np.float32), np.random.default_rng(int(target * 10)))
    g = g.g_prog.astype(np.float64)
    mean, std = censored_normal(target, 0.5)
    assert abs(g.mean() - mean) <= 3 * g.std() / math.sqrt(N)
    assert abs(g.std() - std) <= 3 * std_se(g)


@pytest.mark.parametrize("t", [0.0, 1.0, 86400.0])
def test_read_noise_is_state_independent(t):
    device = GaussianDevice(prog_sigma=0.3, read_sigma=0.2, nu=0.05)
    rng = np.random.default_rng(1)
    state = device.program(rng.uniform(5, 25, N).astype(np.float32), rng)
    np.testing.assert_array_equal(device.read_noise_std(state, t), np.float32(0.2))
    noise = device.read(state, t, rng).astype(np.float64) - device.drifted(state, t)
    assert abs(noise.mean()) <= 3 * 0.2 / math.sqrt(N)
    assert abs(noise.std() - 0.2) <= 3 * std_se(noise)


def test_constant_drift_exponent_is_a_power_law():
    device = GaussianDevice(nu=0.06, t0=20.0)
    rng = np.random.default_rng(2)
    state = device.program(rng.uniform(1, 25, 1000).astype(np.float32), rng)
    times = np.array([0.0, 1.0, 3600.0, 86400.0, 3.15e7])
    log_g = np.stack([np.log(device.drifted(state, t).astype(np.float64)) for t in times])
    for t, row in zip(times, log_g):
        np.testing.assert_allclose(np.exp(row), state.g_prog * ((t + 20) / 20) ** -0.06,
                                   rtol=2e-6)
    lt = np.log(times + 20)[:, None] - np.log(times + 20).mean()
    slope = (lt * (log_g - log_g.mean(0))).sum(0) / (lt * lt).sum()
    np.testing.assert_allclose(slope, -0.06, atol=2e-6)


def test_idle_devices():
    targets = np.array([0.0, 5.0, 0.0, 20.0], np.float32)
    rng = np.random.default_rng(3)
    device = GaussianDevice(nu=0.1)
    state = device.program(targets, rng)
    for t in (0.0, 3600.0):
        assert device.read(state, t, rng)[[0, 2]].tolist() == [0.0, 0.0]
        assert device.read_noise_std(state, t)[[0, 2]].tolist() == [0.0, 0.0]
    noisy = GaussianDevice(nu=0.1, noise_idle_devices=True)
    reads = noisy.read(noisy.program(np.zeros(N, np.float32), rng), 0.0, rng)
    assert (reads > 0).mean() > 0.5 and reads.mean() > 0.1  # biased upwards: weights to 0


def test_ideal_device_is_exact():
    device = ideal_device()
    targets = np.linspace(0, 25, 1001, dtype=np.float32)
    state = device.program(targets, np.random.default_rng(0))
    for t in (0.0, 3.15e7):
        np.testing.assert_array_equal(device.read(state, t, np.random.default_rng(0)), targets)
    assert make_device("ideal", g_max=10.0).g_max == 10.0


@settings(max_examples=50, deadline=None)
@given(targets=hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=3, max_side=6),
                          elements=st.one_of(st.just(0.0), st.floats(0, 25, width=32))),
       t=st.floats(0, 1e10), seed=st.integers(0, 2**32 - 1), idle=st.booleans(),
       nu=st.floats(0, 0.5))
def test_outputs_are_finite_non_negative_float32(targets, t, seed, idle, nu):
    device = GaussianDevice(nu=nu, noise_idle_devices=idle)
    state = device.program(targets, np.random.default_rng(seed))
    read = device.read(state, t, np.random.default_rng(seed))
    for out in (state.g_prog, device.drifted(state, t), device.read_noise_std(state, t), read):
        assert isinstance(out, np.ndarray) and out.shape == targets.shape
        assert out.dtype == np.float32 and np.isfinite(out).all() and (out >= 0).all()
    np.testing.assert_array_equal(device.read(state, t, np.random.default_rng(seed)), read)
    assert (device.drifted(state, t) <= state.g_prog).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -0.5, 30.0])
def test_bad_targets_raise(bad):
    with pytest.raises(ValueError, match="g_target"):
        GaussianDevice().program(np.array([bad]), np.random.default_rng(0))


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_bad_times_raise(bad):
    device = GaussianDevice()
    state = device.program(np.ones(3, np.float32), np.random.default_rng(0))
    with pytest.raises(ValueError, match="t must"):
        device.read(state, bad, np.random.default_rng(0))


@pytest.mark.parametrize("kwargs,field", [({"prog_sigma": -1.0}, "prog_sigma"),
                                          ({"read_sigma": np.nan}, "read_sigma"),
                                          ({"g_max": 0}, "g_max"), ({"nu": -0.1}, "nu"),
                                          ({"noise_idle_devices": None}, "noise_idle_devices")])
def test_bad_config_raises_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        GaussianDeviceConfig(**kwargs)


def test_unknown_fields_and_names_raise():
    with pytest.raises(ValueError, match="prog_sgma.*known"):
        GaussianDevice(prog_sgma=1.0)
    with pytest.raises(ValueError, match="unknown GaussianDeviceConfig fields"):
        make_device("gaussian", sigma=1.0)
    with pytest.raises(ValueError, match="name_or_model"):
        make_device(3)
    with pytest.raises(ValueError, match="data must be a dict"):
        device_from_dict("GaussianDevice")


# ---------------------------------------------------------------- a user's own model
@dataclass
class StuckAtDeviceConfig:
    """A toy model: a fraction of devices is stuck at 0 µS."""

    g_max: float = 25.0
    stuck_fraction: float = 0.1


class StuckAtDevice(DeviceModel):
    def __init__(self, config: StuckAtDeviceConfig | None = None) -> None:
        self.config = config or StuckAtDeviceConfig()

    @property
    def g_max(self) -> float:
        return self.config.g_max

    def program(self, g_target, rng):
        g = np.asarray(g_target, np.float32)
        stuck = rng.random(g.shape) < self.config.stuck_fraction
        return DeviceState(g, np.where(stuck, 0, g).astype(np.float32),
                           np.zeros(g.shape, np.float32), ~stuck)

    def drifted(self, state, t):
        return state.g_prog

    def read_noise_std(self, state, t):
        return np.zeros_like(state.g_prog)

    def read(self, state, t, rng):
        return state.g_prog


@pytest.fixture
def clean_registry():
    registry, short = dict(DEVICE_REGISTRY), dict(SHORT_NAMES)
    yield
    DEVICE_REGISTRY.clear(), DEVICE_REGISTRY.update(registry)
    SHORT_NAMES.clear(), SHORT_NAMES.update(short)


def test_register_a_user_model_and_round_trip_it(clean_registry):
    register_device(StuckAtDevice, StuckAtDeviceConfig, short_name="stuck")
    assert "stuck" in known_device_names()
    device = make_device("stuck", stuck_fraction=0.25)
    restored = device_from_dict(json.loads(json.dumps(device.to_dict())))
    assert isinstance(restored, StuckAtDevice) and restored.config.stuck_fraction == 0.25
    state = restored.program(np.full(N, 10.0, np.float32), np.random.default_rng(0))
    assert abs((state.g_prog == 0).mean() - 0.25) < 3 * math.sqrt(0.25 * 0.75 / N)
    with pytest.raises(ValueError, match="must subclass DeviceModel"):
        register_device(dict, StuckAtDeviceConfig)


def test_gaussian_json_round_trip():
    device = make_device("gaussian", prog_sigma=0.7, nu=0.02)
    restored = device_from_dict(json.loads(json.dumps(device.to_dict())))
    assert restored.config == device.config
    copy = make_device(restored, read_sigma=0.0)
    assert copy.config.read_sigma == 0.0 and copy.config.prog_sigma == 0.7
