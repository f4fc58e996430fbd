"""The PCM of the Hermes chip (Le Gallo et al. 2023) against docs/physics.md "Hermes PCM".

Statistical checks use 10^5 devices per check, fixed seeds, and compare with the model's exact
expectation (censored normal for the clamp at 0 µS, folded normal for nu = |...|) within 3
standard errors. The published fits are written out again here, independently of the library.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import ndtr

from aimcsim.devices import (HermesPCMConfig, HermesPCMDevice, PCMDevice, device_from_dict,
                             known_device_names, make_device)
from aimcsim.kernels.rng import seed_from
from aimcsim.tiles import AnalogConfig, AnalogTile
from device_stats import (assert_within, censored_normal, folded_normal, mean_se,
                          read_kernel_normals, std_se)

N = 100_000
HOUR, DAY, YEAR = 3600.0, 86400.0, 365 * 86400.0
T_READ = 512e-9
#: devices per sign -> (g_char µS, t0 s)
RANGE = {1: (10.35, 200.0), 2: (20.7, 300.0)}


# ---------------------------------------------------------------- the published fits, again
def _ln(u):
    return np.log(np.maximum(np.asarray(u, np.float64), 1e-300))


def sigma_prog(u, n):
    """µS at u = G / g_char."""
    if n == 1:
        return 0.15781817 + 2.32443916 * u - 2.16310839 * u ** 2 + 0.68841818 * u ** 3
    return 0.16603222 + 4.71806468 * u - 8.48101252 * u ** 2 + 4.68961419 * u ** 3


def nu_mean(u, n):
    low = np.clip(-0.0387 * _ln(u) - 0.0182, 0.0720, 0.13)
    return np.where(u < 0.0945, low, -0.0436 * u ** 2 - 0.0126 * u + 0.0736)


def nu_std(u, n):
    if n == 1:
        low = np.clip(-0.0120 * _ln(u) - 0.0023, 0.0124, 0.04)
        return np.where(u < 0.3039, low, -0.0165 * u ** 2 + 0.0116 * u + 0.0104)
    low = np.clip(-0.0117 * _ln(u) - 0.0057, 0.0091, 0.04)
    return np.where(u < 0.3055, low, -0.0118 * u ** 2 + 0.0093 * u + 0.0073)


def q_s(u, n):
    u = np.maximum(u, 0)
    if n == 1:
        low = np.clip(-0.0078 * _ln(u) + 0.0038, 0.0179, 0.04)
        high = 0.0664 * u ** 3 - 0.1352 * u ** 2 + 0.0768 * u + 0.0088
        return np.where(u < 0.1591, low, high)
    low = np.clip(-0.0117 * _ln(u) - 0.0069, 0.015, 0.04)
    high = 0.0069 * u ** 3 - 0.0280 * u ** 2 + 0.0211 * u + 0.0123
    return np.where(u < 0.16, low, high)


def time_factor(t, n):
    t0 = RANGE[n][1]
    return math.sqrt(math.log((t + t0 + T_READ) / (2 * T_READ)))


def program_level(u, n, seed, count=N, **config):
    device = HermesPCMDevice(devices_per_sign=n, **config)
    g = np.full(count, u * RANGE[n][0], np.float32)
    return device, device.program(g, np.random.default_rng(seed))


# ---------------------------------------------------------------- the published numbers
def test_published_values_and_the_two_device_cell():
    """Range, t0, and the fits at a few points; the two-device cell (the sum of a pair
    programmed together) has a smaller programming error than two independent devices, and a
    drift-exponent spread of 0.71 to 0.87 of one device's from u = 0.05 up."""
    for n, (g_char, t0) in RANGE.items():
        device = HermesPCMDevice(devices_per_sign=n)
        assert device.g_max == g_char and device.t0 == t0 and device.t_read == T_READ
        u = np.linspace(0, 1, 2001).astype(np.float32)
        g = u * np.float32(g_char)
        np.testing.assert_allclose(device.programming_sigma(g), sigma_prog(u, n), rtol=1e-5)
        mean, std = device.drift_statistics(g)
        np.testing.assert_allclose(mean, nu_mean(u, n), rtol=1e-5)
        np.testing.assert_allclose(std, nu_std(u, n), rtol=1e-5)
        np.testing.assert_allclose(device.q_s(g), q_s(u, n), rtol=1e-5)
    assert sigma_prog(1.0, 1) == pytest.approx(1.0075, abs=1e-4)
    assert sigma_prog(1.0, 2) == pytest.approx(1.0927, abs=1e-4)
    assert sigma_prog(1.0, 2) < 0.8 * math.sqrt(2) * sigma_prog(1.0, 1)
    u = np.linspace(0.05, 1, 96)
    ratio = nu_std(u, 2) / nu_std(u, 1)
    assert ratio.min() > 0.70 and ratio.max() < 0.88
    for fit in (nu_mean, nu_std, q_s):  # the published pieces meet at their splits
        for n in RANGE:
            for split in (0.0945, 0.1591, 0.16, 0.3039, 0.3055):
                assert abs(fit(split - 1e-9, n) - fit(split, n)) < 2e-3


# ---------------------------------------------------------------- programming noise
@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("u", [0.02, 0.1, 0.3, 0.6, 1.0])
def test_programming_noise_sigma(n, u):
    """Mean and std of G_prog: the normal N(G, sigma_prog^2) censored at 0 µS."""
    _, state = program_level(u, n, seed=int(100 * u) + n)
    g = state.g_prog.astype(np.float64)
    mean, std = censored_normal(u * RANGE[n][0], float(sigma_prog(u, n)))
    assert_within(g.mean(), mean, mean_se(g), what=f"mean G_prog u={u} n={n}")
    assert_within(g.std(), std, std_se(g), what=f"std G_prog u={u} n={n}")


def test_lower_g_max_uses_part_of_the_characterised_range():
    """The fits are functions of the physical conductance: a 5 µS target has the same
    programming spread whether g_max is the characterised 10.35 µS or 6 µS."""
    stds = []
    for g_max in (None, 6.0):
        device = HermesPCMDevice(devices_per_sign=1, g_max=g_max)
        state = device.program(np.full(N, 5.0, np.float32), np.random.default_rng(3))
        stds.append(state.g_prog.std())
    assert stds[0] == stds[1]
    assert HermesPCMDevice(devices_per_sign=1, g_max=6.0).g_max == 6.0


# ---------------------------------------------------------------- drift
@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("u", [0.01, 0.05, 0.2, 0.5, 1.0])
def test_drift_exponent_distribution(n, u):
    """nu = |N(nu_mean, nu_std^2)|: folded-normal mean and std."""
    _, state = program_level(u, n, seed=200 + int(100 * u) + n)
    nu = state.nu.astype(np.float64)
    mean, std = folded_normal(float(nu_mean(u, n)), float(nu_std(u, n)))
    assert_within(nu.mean(), mean, mean_se(nu), what=f"mean nu u={u} n={n}")
    assert_within(nu.std(), std, std_se(nu), what=f"std nu u={u} n={n}")


@pytest.mark.parametrize("n", [1, 2])
def test_drift_follows_the_power_law_with_t0(n):
    """G_drift(t) = G_prog ((t + t0) / t0)^(-nu), t0 = 200 s or 300 s; the mean decay of a
    level equals the folded-normal expectation of ((t + t0) / t0)^(-nu) within 3 SE."""
    device, state = program_level(0.5, n, seed=300 + n)
    t0 = RANGE[n][1]
    for t in (0.0, HOUR, YEAR):
        expected = state.g_prog.astype(np.float64) * ((t + t0) / t0) ** (-state.nu.astype(
            np.float64))
        np.testing.assert_allclose(device.drifted(state, t), expected, rtol=2e-6)
    lr = math.log((DAY + t0) / t0)
    mu, s = float(nu_mean(0.5, n)), float(nu_std(0.5, n))
    decay = (math.exp(-lr * mu + 0.5 * (lr * s) ** 2) * ndtr(mu / s - lr * s)
             + math.exp(lr * mu + 0.5 * (lr * s) ** 2) * ndtr(-mu / s - lr * s))
    ratio = (device.drifted(state, DAY) / state.g_prog).astype(np.float64)
    assert_within(ratio.mean(), decay, mean_se(ratio), what="mean decay at one day")


# ---------------------------------------------------------------- read noise
@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("fast", [False, True])
def test_read_noise_sigma(n, fast):
    """sigma_read = |G_drift| Q_s(u_prog) time factor: the standardised read noise is N(0, 1)
    within 3 SE at 1 s and 1 year, for the numpy reference and the Numba kernel."""
    device, state = program_level(0.4, n, seed=400 + n)
    u_prog = state.g_prog.astype(np.float64) / RANGE[n][0]
    np.testing.assert_allclose(state.read_q, q_s(u_prog, n), rtol=1e-5)
    for t in (1.0, YEAR):
        drift = device.drifted(state, t).astype(np.float64)
        sigma = np.abs(drift) * q_s(u_prog, n) * time_factor(t, n)
        np.testing.assert_allclose(device.read_noise_std(state, t), sigma, rtol=1e-5)
        z = (device.read(state, t, np.random.default_rng(7), fast=fast) - drift) / sigma
        assert_within(z.mean(), 0.0, mean_se(z), what=f"mean z at t={t}")
        assert_within(z.std(), 1.0, std_se(z), what=f"std z at t={t}")


def test_kernel_equals_reference_given_the_same_normals():
    device = HermesPCMDevice(devices_per_sign=1)
    rng = np.random.default_rng(5)
    targets = rng.uniform(0, device.g_max, (3, 4097)).astype(np.float32)
    targets[rng.random(targets.shape) < 0.2] = 0.0
    state = device.program(targets, rng)
    fast = device.read(state, DAY, np.random.default_rng(9), fast=True)
    xi = read_kernel_normals(targets.size, seed_from(np.random.default_rng(9))).reshape(
        targets.shape)
    np.testing.assert_allclose(fast, device.read_given_normals(state, DAY, xi), rtol=2e-6,
                               atol=1e-6)


# ---------------------------------------------------------------- the tile and the registry
def test_tile_maps_the_largest_weight_to_the_cells_range():
    """Two devices per sign: the tile maps max|W| to g_max = 20.7 µS, the sum of the pair;
    one device: 10.35 µS. Without noise the tile reads the weights back exactly."""
    w = np.random.default_rng(0).uniform(-1, 1, (16, 8)).astype(np.float32)
    for name, g_char in (("hermes", 20.7), ("hermes-1", 10.35)):
        device = make_device(name, prog_noise_scale=0.0, drift_scale=0.0, read_noise_scale=0.0)
        tile = AnalogTile(w, AnalogConfig(device=device))
        tile.program(0)
        assert tile._state.g_target.max() == pytest.approx(g_char, rel=1e-6)
        np.testing.assert_allclose(tile.read_weights()[0], w, atol=1e-6)


def test_registry_presets_and_json_round_trip():
    assert {"hermes", "hermes-1", "hermes-2", "HermesPCMDevice"} <= set(known_device_names())
    assert make_device("hermes").config == HermesPCMConfig(devices_per_sign=2)
    assert make_device("HERMES-1").config.devices_per_sign == 1
    assert make_device("hermes-1", devices_per_sign=2).config.devices_per_sign == 2
    device = make_device("hermes-1", g_max=9.0, drift_scale=0.5,
                         nu_std_params=[0.3, -0.01, 0.0, 0.01, 0.04, 0.01, 0.0, 0.0])
    restored = device_from_dict(json.loads(json.dumps(device.to_dict())))
    assert isinstance(restored, HermesPCMDevice) and restored.config == device.config
    targets = np.linspace(0, 9.0, 101, dtype=np.float32)
    a = device.program(targets, np.random.default_rng(1))
    b = restored.program(targets, np.random.default_rng(1))
    np.testing.assert_array_equal(device.read(a, DAY, np.random.default_rng(2)),
                                  restored.read(b, DAY, np.random.default_rng(2)))
    # defaults stay "published for the variant", so switching the variant keeps them right
    two = make_device(make_device("hermes-1"), devices_per_sign=2)
    assert two.g_max == 20.7 and two.t0 == 300.0


@pytest.mark.parametrize("kwargs,field", [
    ({"devices_per_sign": 3}, "devices_per_sign"), ({"devices_per_sign": 1.0}, "devices_per_sign"),
    ({"g_max": 20.8}, "g_max"), ({"devices_per_sign": 1, "g_max": 12.0}, "g_max"),
    ({"g_max": 0.0}, "g_max"), ({"t0": -1.0}, "t0"), ({"t0": 1e-7}, "t0"),
    ({"prog_coefficients": []}, "prog_coefficients"),
    ({"nu_mean_params": (0.1, 0, 0, 0.2, 0.1, 0, 0, 0)}, "nu_mean_params"),
    ({"read_q_params": (1.0,) * 8}, "read_q_params"), ({"drift_scale": -1.0}, "drift_scale"),
    ({"fast_read": 1}, "fast_read"),
])
def test_bad_config_raises_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        HermesPCMConfig(**kwargs)


def test_bad_targets_raise():
    with pytest.raises(ValueError, match="g_target"):
        HermesPCMDevice(devices_per_sign=1).program(np.array([11.0]), np.random.default_rng(0))


# ---------------------------------------------------------------- properties
@settings(max_examples=40, deadline=None)
@given(targets=hnp.arrays(np.float32, hnp.array_shapes(max_dims=3, min_side=0, max_side=6),
                          elements=st.one_of(st.just(0.0), st.floats(0, 20.5, width=32))),
       t=st.floats(0, 1e10), seed=st.integers(0, 2**32 - 1), fast=st.booleans())
def test_outputs_are_finite_non_negative_float32(targets, t, seed, fast):
    device = HermesPCMDevice()
    state = device.program(targets, np.random.default_rng(seed))
    for out in (state.g_prog, state.nu, state.read_q, device.drifted(state, t),
                device.read_noise_std(state, t),
                device.read(state, t, np.random.default_rng(seed), fast=fast)):
        assert out.shape == targets.shape and out.dtype == np.float32
        assert np.isfinite(out).all() and (out >= 0).all()
    assert (device.drifted(state, t) <= state.g_prog).all()
    assert not isinstance(device, PCMDevice)
