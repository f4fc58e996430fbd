"""The PCM device model against the equations of docs/physics.md sections 1-4.

Statistical checks use >= 10^5 devices per check, fixed seeds, and compare with the model's exact
expectation within 3 standard errors (SE). The expected values are computed here from the
published constants, independently of the library's code. Where a clamp at 0 S or the folding
nu = |...| matters, the expectation is that of the censored / folded normal.
"""
from __future__ import annotations

import json
import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import ndtr, ndtri

from aimcsim.devices import (DeviceState, PCMConfig, PCMDevice, device_from_dict, make_device)
from aimcsim.devices.drift import drift_log_ratio, drift_nu_mean, drift_nu_std
from aimcsim.devices.programming_noise import programming_sigma
from aimcsim.devices.read_noise import read_time_factor
from aimcsim.kernels.devices import read_drifted, read_drifted_serial
from aimcsim.kernels.rng import seed_from
from device_stats import (assert_within, censored_normal, folded_normal, mean_se, phi,
                          read_kernel_normals, std_se)

G_MAX = 25.0
T0 = 20.0
T_READ = 250e-9
HOUR, DAY, YEAR = 3600.0, 86400.0, 365 * 86400.0
N = 100_000


# ---------------------------------------------------------------- the published model, again
def sigma_prog(x):
    """physics.md 2: µS at g_max = 25 µS."""
    return 0.26348 + 1.9650 * x - 1.1731 * x * x


def _ln(x):
    return np.log(np.maximum(x, 1e-300))


def nu_mean(x):
    return np.clip(-0.0155 * _ln(x) + 0.0244, 0.049, 0.1)


def nu_std(x):
    return np.clip(-0.0125 * _ln(x) - 0.0059, 0.008, 0.045)


def q_s(x):
    return np.minimum(0.0088 / np.maximum(np.maximum(x, 0) ** 0.65, 1e-3), 0.2)


def time_factor(t):
    return math.sqrt(math.log((t + T0 + T_READ) / (2 * T_READ)))


def program_level(x, seed, n=N, **config):
    device = PCMDevice(**config)
    state = device.program(np.full(n, x * device.g_max, np.float32), np.random.default_rng(seed))
    return device, state


# ---------------------------------------------------------------- the published numbers
def test_published_constants_of_the_formulas():
    assert programming_sigma(0.0, PCMConfig().prog_coefficients, 25.0) == pytest.approx(0.263,
                                                                                      abs=1e-3)
    x = np.linspace(0, 1, 10001)
    s = programming_sigma(x, PCMConfig().prog_coefficients, 25.0)
    assert s.max() == pytest.approx(1.09, abs=0.01) and x[s.argmax()] == pytest.approx(0.84,
                                                                                       abs=0.01)
    assert s[-1] == pytest.approx(1.055, abs=1e-3)
    c = PCMConfig()
    for xv, expected in ((1.0, 0.049), (0.1, 0.060), (0.01, 0.096)):
        assert drift_nu_mean(np.float64(xv), *c.nu_mean_params) == pytest.approx(expected,
                                                                                 abs=1e-3)
    np.testing.assert_allclose(drift_nu_std(np.array([1.0, 0.1, 1e-6]), *c.nu_std_params),
                               nu_std(np.array([1.0, 0.1, 1e-6])), rtol=1e-12)
    for t, expected in ((1.0, 4.19), (HOUR, 4.76), (DAY, 5.09), (YEAR, 5.64)):
        assert read_time_factor(t, T0, T_READ) == pytest.approx(expected, abs=0.005)


# ---------------------------------------------------------------- programming noise
@pytest.mark.parametrize("x", [0.01, 0.05, 0.2, 0.5, 0.84, 1.0])
def test_programming_noise_sigma(x):
    """test_programming_noise_sigma: mean and std of G_prog at a level; at x = 0.01 and 0.05
    the clamp at 0 is visible (19% / 0.03% of devices) and the censored-normal moments apply."""
    _, state = program_level(x, seed=int(1000 * x))
    g = state.g_prog.astype(np.float64)
    mean, std = censored_normal(x * G_MAX, sigma_prog(x))
    assert_within(g.mean(), mean, mean_se(g), what=f"mean G_prog at x={x}")
    assert_within(g.std(), std, std_se(g), what=f"std G_prog at x={x}")
    if x == 0.01:
        assert (g == 0).mean() == pytest.approx(ndtr(-x * G_MAX / sigma_prog(x)), abs=0.005)


def test_programming_noise_scales_with_g_max():
    _, state = program_level(0.5, seed=7, g_max=50.0)
    g = state.g_prog.astype(np.float64)
    assert_within(g.std(), 2 * sigma_prog(0.5), std_se(g), what="std at g_max = 50")
    assert_within(g.mean(), 25.0, mean_se(g), what="mean at g_max = 50")


# ---------------------------------------------------------------- drift
@pytest.mark.parametrize("x", [0.005, 0.01, 0.05, 0.1, 0.3, 1.0])
def test_drift_exponent_distribution(x):
    """test_drift_exponent_distribution: nu = |N(nu_mean, nu_std^2)|, folded-normal moments
    (the folding matters at low x: 1.7% of draws at x = 0.01)."""
    _, state = program_level(x, seed=100 + int(1000 * x))
    nu = state.nu.astype(np.float64)
    mean, std = folded_normal(float(nu_mean(x)), float(nu_std(x)))
    assert_within(nu.mean(), mean, mean_se(nu), what=f"mean nu at x={x}")
    assert_within(nu.std(), std, std_se(nu), what=f"std nu at x={x}")
    assert (nu >= 0).all()


def test_drift_is_a_straight_line_in_log_log():
    """test_drift_is_a_straight_line_in_log_log: per device, log G_drift vs log(t + t0) has
    slope -nu (least squares over 7 times from 0 to 30 years), residuals at float32 level."""
    device = PCMDevice()
    rng = np.random.default_rng(3)
    state = device.program(rng.uniform(0.05, 1, 20_000).astype(np.float32) * G_MAX, rng)
    times = np.array([0.0, 1.0, 60.0, HOUR, DAY, YEAR, 30 * YEAR])
    log_g = np.stack([np.log(device.drifted(state, t).astype(np.float64)) for t in times])
    log_t = np.log(times + T0)[:, None]
    dt = log_t - log_t.mean()
    slope = (dt * (log_g - log_g.mean(0))).sum(0) / (dt * dt).sum()
    np.testing.assert_allclose(slope, -state.nu, atol=2e-6)
    residual = log_g - log_g.mean(0) - slope * dt
    assert np.abs(residual).max() < 2e-6
    # the kernel's drift (read noise off) is the same straight line
    quiet = PCMDevice(read_noise_scale=0.0)
    for t in times:
        np.testing.assert_allclose(quiet.read(state, t, rng, fast=True),
                                   device.drifted(state, t), rtol=1e-6)


def test_drift_matches_power_law_formula():
    device, state = program_level(0.4, seed=11, n=10_000)
    for t in (0.0, 1.0, HOUR, YEAR):
        expected = state.g_prog.astype(np.float64) * ((t + T0) / T0) ** (-state.nu.astype(
            np.float64))
        np.testing.assert_allclose(device.drifted(state, t), expected, rtol=2e-6)


# ---------------------------------------------------------------- read noise
@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("t,factor", [(1.0, 4.19), (HOUR, 4.76), (DAY, 5.09), (YEAR, 5.64)])
def test_read_noise_sigma(t, factor, fast):
    """test_read_noise_sigma: (G_read - G_drift) / (|G_drift| Q_s(G_prog / g_max) f(t)) is a
    standard normal (mean 0, std 1 within 3 SE), f = 4.19 / 4.76 / 5.09 / 5.64."""
    device, state = program_level(0.5, seed=int(t) % 1000)
    drift = device.drifted(state, t).astype(np.float64)
    sigma = drift * q_s(state.g_prog.astype(np.float64) / G_MAX) * time_factor(t)
    assert time_factor(t) == pytest.approx(factor, abs=0.005)
    np.testing.assert_allclose(device.read_noise_std(state, t), sigma, rtol=1e-5)
    g = device.read(state, t, np.random.default_rng(int(t) + fast), fast=fast)
    assert (g > 0).all()  # at x = 0.5 sigma is ~7% of G: no clamping
    z = (g - drift) / sigma
    assert_within(z.mean(), 0.0, 1 / math.sqrt(z.size), what="mean of standardised read noise")
    assert_within(z.std(), 1.0, std_se(z), what="std of standardised read noise")


def _clamped_read_moments(drift, k):
    """Per device, mean and variance of drift * max(0, 1 + k Z)."""
    a = 1 / k
    m1 = ndtr(a) + k * phi(a)
    m2 = (1 + k * k) * ndtr(a) + k * phi(a)
    return drift * m1, drift * drift * (m2 - m1 * m1)


@pytest.mark.parametrize("fast", [False, True])
def test_read_noise_clamp_at_low_conductance(fast):
    """test_read_noise_clamp_at_low_conductance: at x = 0.01 sigma_read is ~90% of G; the mean
    read equals the censored-normal expectation, sum_i E[max(0, G_i + sigma_i Z)]."""
    t = DAY
    device, state = program_level(0.01, seed=21)
    drift = device.drifted(state, t).astype(np.float64)
    k = q_s(state.g_prog / G_MAX) * time_factor(t)
    mean_i, var_i = _clamped_read_moments(drift, k)
    g = device.read(state, t, np.random.default_rng(22), fast=fast).astype(np.float64)
    assert (g == 0).mean() > 0.2
    assert_within(g.mean(), mean_i.mean(), math.sqrt(var_i.sum()) / g.size,
                  what="mean clamped read")


def test_read_sampling_is_fresh_each_read_and_reproducible():
    device, state = program_level(0.5, seed=5, n=1000)
    for fast in (False, True):
        a = device.read(state, HOUR, np.random.default_rng(1), fast=fast)
        b = device.read(state, HOUR, np.random.default_rng(1), fast=fast)
        rng = np.random.default_rng(1)
        c, d = device.read(state, HOUR, rng, fast=fast), device.read(state, HOUR, rng, fast=fast)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
        assert (c != d).mean() > 0.99


# ---------------------------------------------------------------- kernel against reference
@pytest.mark.parametrize("shape", [(0,), (1,), (4095,), (4097,), (3, 50, 70), (2, 2, 512, 65)])
@pytest.mark.parametrize("t", [0.0, 1.0, YEAR])
def test_kernel_equals_reference_given_the_same_normals(shape, t):
    """test_kernel_equals_reference_given_the_same_normals: the fused kernel is the numpy
    reference fed with the table normals of the kernel's stream (float32 rounding apart)."""
    rng = np.random.default_rng(sum(shape) + int(t))
    targets = rng.uniform(0, G_MAX, shape).astype(np.float32)
    targets[rng.random(shape) < 0.2] = 0.0
    for idle in (False, True):
        device = PCMDevice(noise_idle_devices=idle)
        state = device.program(targets, rng)
        seed = seed_from(np.random.default_rng(9))
        fast = device.read(state, t, np.random.default_rng(9), fast=True)
        xi = read_kernel_normals(targets.size, seed).reshape(shape)
        ref = device.read_given_normals(state, t, xi)
        assert fast.shape == shape and fast.dtype == np.float32
        np.testing.assert_allclose(fast, ref, rtol=2e-6, atol=1e-6)


def test_kernel_does_not_depend_on_thread_count():
    """The parallel kernel (chunks of table_normals.CHUNK on the threads) on one thread and on
    all, and its serial twin, give the same bits; ``read`` (serial below
    PARALLEL_MIN_DEVICES) too."""
    device, state = program_level(0.3, seed=8, n=50_000)
    args = (state.g_prog, state.nu, device._q(state).astype(np.float32), state.active,
            drift_log_ratio(DAY, device.t0), device.read_noise_amplitude(DAY), np.uint64(77))
    serial = np.empty(state.g_prog.size, np.float32)
    read_drifted_serial(*args, serial)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = device.read(state, DAY, np.random.default_rng(4), fast=True)
        parallel_one = np.empty_like(serial)
        read_drifted(*args, parallel_one)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = device.read(state, DAY, np.random.default_rng(4), fast=True)
        parallel_many = np.empty_like(serial)
        read_drifted(*args, parallel_many)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, many)
    np.testing.assert_array_equal(parallel_one, serial)
    np.testing.assert_array_equal(parallel_many, serial)
    ref = device.read_given_normals(state, DAY, read_kernel_normals(serial.size, 77))
    np.testing.assert_allclose(serial, ref, rtol=2e-6, atol=1e-6)


def test_kernel_and_numpy_reads_have_the_same_distribution():
    """Table normals vs exact normals: the read-outs of the same state agree in mean and std of
    the standardised noise (two independent samples, 3 SE of the difference)."""
    device = PCMDevice()
    rng = np.random.default_rng(12)
    state = device.program(rng.uniform(0.1, 1, 200_000).astype(np.float32) * G_MAX, rng)
    drift = device.drifted(state, HOUR)
    sigma = device.read_noise_std(state, HOUR)
    z_fast = (device.read(state, HOUR, rng, fast=True) - drift) / sigma
    z_ref = (device.read(state, HOUR, rng, fast=False) - drift) / sigma
    se_mean = math.hypot(mean_se(z_fast), mean_se(z_ref))
    se_std = math.hypot(std_se(z_fast), std_se(z_ref))
    assert_within(z_fast.mean() - z_ref.mean(), 0.0, se_mean, what="mean difference")
    assert_within(z_fast.std() - z_ref.std(), 0.0, se_std, what="std difference")
    for q in (0.01, 0.5, 0.99):  # quantiles within 3 SE of the normal quantile
        zq = float(ndtri(q))
        se_q = math.sqrt(q * (1 - q) / z_fast.size) / float(phi(zq))
        assert_within(np.quantile(z_fast, q), zq, se_q, what=f"kernel quantile {q}")


# ---------------------------------------------------------------- weights: shrink with time
def expected_mean_read(u, t):
    """E[G_read] / g_max for targets u * g_max (array), by numerical integration: G_prog over a
    4000-point quantile grid of xi, E[exp(-nu L)] of the folded normal in closed form, and the
    clamped read noise in closed form. u = 0 gives the idle device when it is noised."""
    u = np.asarray(u, np.float64)[:, None]
    z = ndtri((np.arange(4000) + 0.5) / 4000)[None, :]
    g_prog = np.maximum(0.0, u * G_MAX + sigma_prog(u) * z)
    k = q_s(g_prog / G_MAX) * time_factor(t)
    with np.errstate(divide="ignore"):
        a = np.where(k > 0, 1 / k, np.inf)
    read_gain = ndtr(a) + k * phi(np.minimum(a, 1e3))
    lr = math.log((t + T0) / T0)
    mu, s = nu_mean(u[:, 0]), nu_std(u[:, 0])
    drift_gain = (np.exp(-lr * mu + 0.5 * (lr * s) ** 2) * ndtr(mu / s - lr * s)
                  + np.exp(lr * mu + 0.5 * (lr * s) ** 2) * ndtr(-mu / s - lr * s))
    return (g_prog * read_gain).mean(1) * drift_gain / G_MAX


def expected_slope(t):
    """LS slope of w' on w for w ~ U[-1, 1]: 3 * int_0^1 u m(u) du (midpoint rule)."""
    u = (np.arange(4000) + 0.5) / 4000
    return 3 * float(np.mean(u * expected_mean_read(u, t)))


def weights_read(w, t, seed, **config):
    """Map w in [-1, 1] to a differential pair, program, read at t: w' = (G+ - G-) / g_max."""
    device = PCMDevice(**config)
    targets = np.stack([np.maximum(w, 0), np.maximum(-w, 0)]) * np.float32(G_MAX)
    state = device.program(targets, np.random.default_rng(seed))
    g = device.read(state, t, np.random.default_rng(seed + 1))
    return ((g[0] - g[1]) / G_MAX).astype(np.float64)


def ls_slope(w, w_read):
    """Least-squares slope (with intercept) and its heteroscedasticity-robust (HC0) SE."""
    dw = w - w.mean()
    slope = float((dw * (w_read - w_read.mean())).sum() / (dw * dw).sum())
    resid = w_read - w_read.mean() - slope * dw
    se = float(math.sqrt((dw * dw * resid * resid).sum()) / (dw * dw).sum())
    return slope, se


@pytest.mark.parametrize("t,published", [(1.0, 0.99), (HOUR, 0.77), (DAY, 0.66), (YEAR, 0.50)])
def test_mean_weight_shrink_on_uniform_weights(t, published):
    """test_mean_weight_shrink_on_uniform_weights: slope of w' on w (uniform weights) equals the
    model's expectation (numerical integration) within 3 SE, and the published 0.99 / 0.77 /
    0.66 / 0.50 within 0.03."""
    w = np.random.default_rng(30).uniform(-1, 1, 200_000).astype(np.float32)
    slope, se = ls_slope(w.astype(np.float64), weights_read(w, t, seed=31))
    expected = expected_slope(t)
    assert_within(slope, expected, se, what=f"slope at t={t:g} s")
    assert abs(expected - published) <= 0.03
    assert abs(slope - published) <= 0.03


# ---------------------------------------------------------------- idle devices
@pytest.mark.parametrize("fast", [False, True])
def test_idle_devices_stay_at_zero_by_default(fast):
    """test_idle_devices_stay_at_zero_by_default: a 0 µS target is never programmed, drifts or
    read-noised: exactly 0 at every time."""
    device = PCMDevice()
    rng = np.random.default_rng(40)
    targets = rng.uniform(0, G_MAX, 10_000).astype(np.float32)
    targets[::3] = 0.0
    state = device.program(targets, rng)
    idle = targets == 0
    assert not state.active[idle].any() and state.active[~idle].all()
    assert (state.g_prog[idle] == 0).all() and (state.nu[idle] == 0).all()
    for t in (0.0, 1.0, HOUR, YEAR):
        assert (device.read(state, t, rng, fast=fast)[idle] == 0).all()
        assert (device.read_noise_std(state, t)[idle] == 0).all()


@pytest.mark.parametrize("t", [0.0, HOUR])
def test_noise_idle_devices_biases_weights_towards_zero(t):
    """test_noise_idle_devices_biases_weights_towards_zero: with noise_idle_devices=True (the
    reference toolkit) the idle device of every pair is programmed, drifts and is read with
    noise; the same seeds give the same active devices, so w'(True) - w'(False) is minus the
    idle device's read: about 0.43% of w_max at t = 0 (within 3 SE of the model), and the slope
    drops by 1.5 x that."""
    w = np.random.default_rng(50).uniform(-1, 1, 200_000).astype(np.float32)
    default = weights_read(w, t, seed=51)
    toolkit = weights_read(w, t, seed=51, noise_idle_devices=True)
    bias = np.where(w > 0, default - toolkit, toolkit - default)  # idle read / g_max, >= 0
    assert (bias >= 0).all() and (bias > 0).mean() > 0.4
    m0 = float(expected_mean_read(np.array([0.0]), t)[0])
    assert_within(bias.mean(), m0, mean_se(bias), what="idle-device bias")
    if t == 0:
        assert m0 == pytest.approx(0.0043, abs=0.0002)
    w64 = w.astype(np.float64)
    slope_default, _ = ls_slope(w64, default)
    slope_toolkit, se = ls_slope(w64, toolkit)
    assert slope_toolkit < slope_default
    assert_within(slope_toolkit, expected_slope(t) - 1.5 * m0, se, what="toolkit slope")


# ---------------------------------------------------------------- noise switches
def test_each_noise_source_can_be_switched_off():
    rng = np.random.default_rng(60)
    targets = rng.uniform(0, G_MAX, 5000).astype(np.float32)
    state = PCMDevice(prog_noise_scale=0.0).program(targets, rng)
    np.testing.assert_array_equal(state.g_prog, targets)
    device = PCMDevice(drift_scale=0.0)
    state = device.program(targets, rng)
    assert (state.nu == 0).all()
    np.testing.assert_array_equal(device.drifted(state, YEAR), state.g_prog)
    quiet = PCMDevice(read_noise_scale=0.0)
    state = quiet.program(targets, rng)
    for fast in (False, True):
        np.testing.assert_allclose(quiet.read(state, DAY, rng, fast=fast),
                                   quiet.drifted(state, DAY), rtol=1e-6)
    assert (quiet.read_noise_std(state, DAY) == 0).all()


def test_state_without_precomputed_q_reads_the_same():
    device, state = program_level(0.3, seed=61, n=5000)
    bare = DeviceState(state.g_target, state.g_prog, state.nu, state.active)
    for fast in (False, True):
        np.testing.assert_array_equal(device.read(state, DAY, np.random.default_rng(1), fast),
                                      device.read(bare, DAY, np.random.default_rng(1), fast))


# ---------------------------------------------------------------- properties
targets_strategy = hnp.arrays(
    np.float32, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=7),
    elements=st.one_of(st.just(0.0), st.floats(0, G_MAX, width=32)))
times = st.floats(0, 1e10, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(targets=targets_strategy, t=times, seed=st.integers(0, 2**32 - 1), fast=st.booleans(),
       idle=st.booleans())
def test_outputs_are_finite_non_negative_float32_of_the_same_shape(targets, t, seed, fast, idle):
    device = PCMDevice(noise_idle_devices=idle)
    state = device.program(targets, np.random.default_rng(seed))
    outputs = [state.g_prog, state.nu, state.read_q, device.drifted(state, t),
               device.read_noise_std(state, t),
               device.read(state, t, np.random.default_rng(seed), fast=fast)]
    for out in outputs:
        assert isinstance(out, np.ndarray) and out.shape == targets.shape
        assert out.dtype == np.float32
        assert np.isfinite(out).all() and (out >= 0).all()
    again = device.program(targets, np.random.default_rng(seed))
    np.testing.assert_array_equal(again.g_prog, state.g_prog)
    np.testing.assert_array_equal(again.nu, state.nu)
    np.testing.assert_array_equal(device.read(state, t, np.random.default_rng(seed), fast=fast),
                                  outputs[-1])


@settings(max_examples=60, deadline=None)
@given(targets=targets_strategy, t1=times, t2=times, seed=st.integers(0, 2**32 - 1))
def test_drift_never_increases_conductance(targets, t1, t2, seed):
    t1, t2 = sorted((t1, t2))
    device = PCMDevice()
    state = device.program(targets, np.random.default_rng(seed))
    early, late = device.drifted(state, t1), device.drifted(state, t2)
    assert (late <= early).all()
    assert (device.drifted(state, 0.0) == state.g_prog).all()


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, -1.0, 25.1, 1e40])
def test_bad_targets_raise(bad):
    targets = np.array([1.0, bad, 3.0])
    with pytest.raises(ValueError, match="g_target"):
        PCMDevice().program(targets, np.random.default_rng(0))


def test_targets_within_tolerance_are_clipped():
    state = PCMDevice().program(np.array([-1e-5, 25.0 + 1e-4]), np.random.default_rng(0))
    assert state.g_target.tolist() == [0.0, 25.0]


@pytest.mark.parametrize("bad", [-1.0, -1e-9, np.nan, np.inf, "soon", None])
def test_bad_times_raise(bad):
    device, state = program_level(0.5, seed=0, n=10)
    for call in (lambda: device.drifted(state, bad), lambda: device.read_noise_std(state, bad),
                 lambda: device.read(state, bad, np.random.default_rng(0)),
                 lambda: device.read(state, bad, np.random.default_rng(0), fast=False)):
        with pytest.raises(ValueError, match="t must"):
            call()


@pytest.mark.parametrize("kwargs,field", [
    ({"g_max": 0.0}, "g_max"), ({"g_max": np.nan}, "g_max"), ({"t0": -1.0}, "t0"),
    ({"t_read": 0.0}, "t_read"), ({"read_noise_scale": -0.1}, "read_noise_scale"),
    ({"drift_scale": np.inf}, "drift_scale"), ({"prog_noise_scale": True}, "prog_noise_scale"),
    ({"prog_coefficients": (1.0, 2.0)}, "prog_coefficients"),
    ({"nu_mean_params": (0.0, 0.0, 0.2, 0.1)}, "nu_mean_params"),
    ({"nu_std_params": (0.0, 0.0, -0.1, 0.1)}, "nu_std_params"),
    ({"nu_std_params": "abcd"}, "nu_std_params"),
    ({"noise_idle_devices": "yes"}, "noise_idle_devices"), ({"fast_read": 1}, "fast_read"),
    ({"t0": 1e-7}, "t0"),
])
def test_bad_config_raises_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        PCMConfig(**kwargs)


def test_unknown_names_raise_listing_the_known_ones():
    with pytest.raises(ValueError, match="drift_scal.*known"):
        PCMDevice(drift_scal=0.0)
    with pytest.raises(ValueError, match="unknown PCMConfig fields"):
        make_device("pcm", nosie=1.0)
    with pytest.raises(ValueError, match="known: .*pcm"):
        make_device("flash")
    with pytest.raises(ValueError, match="unknown device model"):
        device_from_dict({"model": "FlashDevice", "config": {}})
    with pytest.raises(ValueError, match="unknown PCMConfig fields"):
        device_from_dict({"model": "PCMDevice", "config": {"gmax": 25.0}})
    with pytest.raises(ValueError, match="config must be a PCMConfig"):
        PCMDevice({"g_max": 25.0})


def test_inconsistent_state_raises():
    device, state = program_level(0.5, seed=0, n=10)
    bad = DeviceState(state.g_target, state.g_prog, state.nu[:5], state.active)
    with pytest.raises(ValueError, match="state.nu"):
        device.read(bad, 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="state must be a DeviceState"):
        device.drifted(state.g_prog, 1.0)


# ---------------------------------------------------------------- JSON round trip
def test_json_round_trip_and_make_device():
    device = make_device("pcm", drift_scale=0.5, noise_idle_devices=True,
                         prog_coefficients=[0.2, 1.0, -0.5])
    restored = device_from_dict(json.loads(json.dumps(device.to_dict())))
    assert isinstance(restored, PCMDevice) and restored.config == device.config
    targets = np.linspace(0, G_MAX, 101, dtype=np.float32)
    a = device.program(targets, np.random.default_rng(1))
    b = restored.program(targets, np.random.default_rng(1))
    np.testing.assert_array_equal(device.read(a, DAY, np.random.default_rng(2)),
                                  restored.read(b, DAY, np.random.default_rng(2)))
    copy = make_device(device, read_noise_scale=0.0)
    assert copy.config.read_noise_scale == 0.0 and copy.config.drift_scale == 0.5
    assert device.config.read_noise_scale == 1.0
    assert make_device("PCMDevice").config == PCMConfig()
