"""The RRAM of Wan et al. 2022 against docs/physics.md "RRAM (Wan et al. 2022)".

The published spread around the target, sigma_k(u) at 1 s, 1 day and 2 days, is written out
again here. Statistical checks use 10^5 devices per check, fixed seeds, and compare with the
model's exact expectation (the clamps at 0 µS integrated numerically: a 4000-point quantile grid
over the programming draw, the censored normal in closed form over the relaxation draw) within
3 standard errors.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import ndtri

from aimcsim.devices import WanRRAMConfig, WanRRAMDevice, device_from_dict, make_device
from aimcsim.tiles import AnalogConfig, AnalogTile
from device_stats import (assert_within, censored_normal, censored_normal_moments, mean_se,
                          std_se)

N = 100_000
G_CHAR = 40.0
HOUR, DAY = 3600.0, 86400.0
TIMES = (1.0, DAY, 2 * DAY)
COEFFS = ((0.348, 16.030, -43.853, 45.393, -16.815),
          (0.701, 22.086, -50.773, 47.095, -16.458),
          (0.782, 20.274, -43.507, 37.062, -11.934))


def sigma(u, k):
    """Published spread around the target at TIMES[k], µS."""
    c = COEFFS[k]
    return c[0] + c[1] * u + c[2] * u ** 2 + c[3] * u ** 3 + c[4] * u ** 4


def variance(u, t):
    """sigma_k^2 linear in ln t between the published times."""
    if t <= TIMES[0]:
        return sigma(u, 0) ** 2
    k = 0 if t <= TIMES[1] else 1
    w = (math.log(t) - math.log(TIMES[k])) / (math.log(TIMES[k + 1]) - math.log(TIMES[k]))
    return (1 - w) * sigma(u, k) ** 2 + w * sigma(u, k + 1) ** 2


def relaxed_moments(u, t):
    """Mean and std of G_drift(t) = max(0, max(0, G + s1 z1) + r z2) at target u * 40 µS."""
    s1 = sigma(u, 0)
    r = math.sqrt(max(variance(u, t) - s1 ** 2, 0.0))
    z = ndtri((np.arange(4000) + 0.5) / 4000)
    g_prog = np.maximum(0.0, u * G_CHAR + s1 * z)
    if r == 0:
        return g_prog.mean(), g_prog.std()
    m1, m2 = censored_normal_moments(g_prog, np.full_like(g_prog, r))
    mean = m1.mean()
    return mean, math.sqrt(m2.mean() - mean * mean)


def program_level(u, seed, count=N, **config):
    device = WanRRAMDevice(**config)
    state = device.program(np.full(count, u * G_CHAR, np.float32), np.random.default_rng(seed))
    return device, state


# ---------------------------------------------------------------- the published numbers
def test_published_spread_and_time_range():
    device = WanRRAMDevice()
    assert device.g_max == G_CHAR and device.time_range == (1.0, 2 * DAY)
    u = np.linspace(0, 1, 1001).astype(np.float32)
    for k in range(3):
        np.testing.assert_allclose(device.sigma(u * np.float32(G_CHAR), k), sigma(u, k),
                                   rtol=1e-5, atol=1e-6)
    assert sigma(0.0, 0) == pytest.approx(0.348) and sigma(1.0, 0) == pytest.approx(1.103)
    assert sigma(1.0, 1) == pytest.approx(2.651) and sigma(1.0, 2) == pytest.approx(2.677)
    # relaxation widens the spread everywhere from 1 s to 1 day, about 2x at mid range
    assert (sigma(u, 1) > sigma(u, 0)).all()
    assert sigma(0.5, 1) / sigma(0.5, 0) == pytest.approx(1.93, abs=0.01)


# ---------------------------------------------------------------- programming noise
@pytest.mark.parametrize("u", [0.02, 0.1, 0.3, 0.6, 1.0])
def test_programming_noise_sigma(u):
    """G_prog = max(0, G + sigma_1(u) xi): censored-normal mean and std; equal to the state
    read at t = 0 and at t = 1 s (the first measured time: no relaxation yet)."""
    device, state = program_level(u, seed=int(100 * u))
    g = state.g_prog.astype(np.float64)
    mean, std = censored_normal(u * G_CHAR, float(sigma(u, 0)))
    assert_within(g.mean(), mean, mean_se(g), what=f"mean G_prog u={u}")
    assert_within(g.std(), std, std_se(g), what=f"std G_prog u={u}")
    np.testing.assert_array_equal(device.drifted(state, 0.0), state.g_prog)
    np.testing.assert_array_equal(device.drifted(state, 1.0), state.g_prog)


# ---------------------------------------------------------------- relaxation
@pytest.mark.parametrize("t", [HOUR, DAY, 1.5 * DAY, 2 * DAY])
@pytest.mark.parametrize("u", [0.05, 0.3, 0.7, 1.0])
def test_relaxation_spread(u, t):
    """The spread around the target at the measured times is the published sigma_k(u) (and
    between them the interpolated one); the mean stays on the target (clamps integrated)."""
    device, state = program_level(u, seed=1000 + int(100 * u) + int(t))
    g = device.drifted(state, t).astype(np.float64)
    mean, std = relaxed_moments(u, t)
    assert_within(g.mean(), mean, mean_se(g), what=f"mean G at u={u}, t={t:g}")
    assert_within(g.std(), std, std_se(g), what=f"std G at u={u}, t={t:g}")
    if u >= 0.7 and t in TIMES:  # no clamp: the spread is sigma_k itself
        assert std == pytest.approx(sigma(u, TIMES.index(t)), rel=1e-3)


def test_each_device_relaxes_in_its_own_direction():
    """G_drift(t) - G_prog = r(u, t) xi_rel with one xi_rel per device: the displacements at
    two times are proportional, device by device (away from the clamp)."""
    device, state = program_level(0.5, seed=5, count=10_000)
    d1 = device.drifted(state, HOUR) - state.g_prog
    d2 = device.drifted(state, 2 * DAY) - state.g_prog
    r1, r2 = (math.sqrt(variance(0.5, t) - sigma(0.5, 0) ** 2) for t in (HOUR, 2 * DAY))
    np.testing.assert_allclose(d1 / r1, state.nu, atol=2e-5)
    np.testing.assert_allclose(d2 / r2, state.nu, atol=2e-5)
    assert abs(np.corrcoef(d1, d2)[0, 1] - 1) < 1e-6


# ---------------------------------------------------------------- read noise
def test_read_noise_and_idle_devices():
    """Fresh N(0, read_sigma^2) at every read for active devices; idle ones stay at 0."""
    device = WanRRAMDevice()
    rng = np.random.default_rng(9)
    targets = rng.uniform(0.3, 1, N).astype(np.float32) * np.float32(G_CHAR)
    targets[::4] = 0.0
    state = device.program(targets, rng)
    idle = targets == 0
    assert not state.active[idle].any() and (state.nu[idle] == 0).all()
    drift = device.drifted(state, DAY)
    a, b = device.read(state, DAY, rng), device.read(state, DAY, rng)
    clear = drift > 2.0  # 5 read-noise sigmas above the clamp at 0
    assert clear.mean() > 0.74
    for g in (a, b):
        assert (g[idle] == 0).all()
        z = ((g - drift)[clear] / 0.4).astype(np.float64)
        assert_within(z.mean(), 0.0, mean_se(z), what="mean read noise")
        assert_within(z.std(), 1.0, std_se(z), what="std read noise")
    assert (a != b)[~idle].mean() > 0.99
    quiet = WanRRAMDevice(read_noise_scale=0.0)
    np.testing.assert_array_equal(quiet.read(state, DAY, rng), quiet.drifted(state, DAY))


def test_each_mechanism_can_be_switched_off():
    targets = np.linspace(1, 40, 1000, dtype=np.float32)
    device = WanRRAMDevice(prog_noise_scale=0.0, relaxation_scale=0.0)
    state = device.program(targets, np.random.default_rng(0))
    np.testing.assert_array_equal(state.g_prog, targets)
    np.testing.assert_array_equal(device.drifted(state, 2 * DAY), targets)


# ---------------------------------------------------------------- validity limits
@pytest.mark.parametrize("t", [1e-5, 0.5, 2 * DAY + 1, 30 * DAY])
def test_times_outside_the_characterisation_raise(t):
    device, state = program_level(0.5, seed=0, count=10)
    for call in (lambda: device.drifted(state, t), lambda: device.read_noise_std(state, t),
                 lambda: device.read(state, t, np.random.default_rng(0))):
        with pytest.raises(ValueError, match=r"outside the read times WanRRAMDevice was "
                                             r"characterised for: t = 0 .* 1 s <= t <= 172800 s"):
            call()
    tile = AnalogTile(np.ones((4, 4), np.float32), AnalogConfig(device=device))
    tile.program(0)  # reads t = 0: the end of programming is always valid
    tile.set_time(DAY)
    with pytest.raises(ValueError, match="characterised"):
        tile.set_time(t)


def test_g_max_is_limited_to_the_characterised_range():
    assert WanRRAMDevice(g_max=20.0).g_max == 20.0
    with pytest.raises(ValueError, match="g_max"):
        WanRRAMConfig(g_max=41.0)
    with pytest.raises(ValueError, match="g_target"):
        WanRRAMDevice(g_max=20.0).program(np.array([25.0]), np.random.default_rng(0))


@pytest.mark.parametrize("kwargs,field", [
    ({"sigma_times": (1.0, 1.0, 2.0)}, "sigma_times"), ({"sigma_times": (0.0, 1.0, 2.0)},
                                                          "sigma_times"),
    ({"sigma_times": (1.0, 2.0)}, "sigma_coefficients"),
    ({"sigma_coefficients": ((1.0,), (1.0,), "ab")}, r"sigma_coefficients\[2\]"),
    ({"sigma_coefficients": ((1.0, -2.0),) * 3}, "negative standard deviation"),
    ({"read_sigma": -0.1}, "read_sigma"), ({"relaxation_scale": np.nan}, "relaxation_scale"),
    ({"noise_idle_devices": 1}, "noise_idle_devices"),
])
def test_bad_config_raises_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        WanRRAMConfig(**kwargs)


# ---------------------------------------------------------------- registry and JSON
def test_registry_and_json_round_trip():
    assert isinstance(make_device("rram"), WanRRAMDevice)
    assert isinstance(make_device("WanRRAMDevice"), WanRRAMDevice)
    device = make_device("rram", g_max=30.0, read_sigma=0.2, sigma_times=[1.0, 10.0],
                         sigma_coefficients=[[0.5, 1.0], [0.8, 1.5]])
    restored = device_from_dict(json.loads(json.dumps(device.to_dict())))
    assert isinstance(restored, WanRRAMDevice) and restored.config == device.config
    assert restored.time_range == (1.0, 10.0)
    targets = np.linspace(0, 30, 101, dtype=np.float32)
    a = device.program(targets, np.random.default_rng(1))
    b = restored.program(targets, np.random.default_rng(1))
    np.testing.assert_array_equal(device.read(a, 5.0, np.random.default_rng(2)),
                                  restored.read(b, 5.0, np.random.default_rng(2)))
    config = AnalogConfig(device=make_device("rram"))
    assert AnalogConfig.from_dict(json.loads(json.dumps(config.to_dict()))).device.config == \
        WanRRAMConfig()


# ---------------------------------------------------------------- properties
@settings(max_examples=40, deadline=None)
@given(targets=hnp.arrays(np.float32, hnp.array_shapes(max_dims=3, min_side=0, max_side=6),
                          elements=st.one_of(st.just(0.0), st.floats(0, 40, width=32))),
       t=st.one_of(st.just(0.0), st.floats(1.0, 2 * DAY)), seed=st.integers(0, 2**32 - 1))
def test_outputs_are_finite_non_negative_float32(targets, t, seed):
    device = WanRRAMDevice()
    state = device.program(targets, np.random.default_rng(seed))
    for out in (state.g_prog, device.drifted(state, t), device.read_noise_std(state, t),
                device.read(state, t, np.random.default_rng(seed))):
        assert out.shape == targets.shape and out.dtype == np.float32
        assert np.isfinite(out).all() and (out >= 0).all()
    again = device.program(targets, np.random.default_rng(seed))
    np.testing.assert_array_equal(again.g_prog, state.g_prog)
    np.testing.assert_array_equal(again.nu, state.nu)
