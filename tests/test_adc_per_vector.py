"""The per-vector ADC kernel (kernels/adc_per_vector.py) against a numpy reference fed with the
same table normals (exact tails): output noise, per-MVM read noise, ADC, bound management with fresh
noise, rescale and accumulation, in both layouts and thread counts; and the statistics of the
noise it adds."""
from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimcsim.kernels.adc_per_vector import adc_per_vector
from aimcsim.kernels.rng import block_state
from aimcsim.kernels.table_normals import table_normal
from aimcsim.tiles.engine import bound_iterations, safe_vector_scale
from aimcsim.tiles.periphery import PeripheryConfig

NO_VAR = np.zeros((1, 1, 1), np.float32)


def stream(seed: int, stream_index: int, size: int) -> np.ndarray:
    return table_normal(size, int(block_state(np.uint64(seed), stream_index)))


def reference(y, var, scale, col_scale, out_noise, bound, step, iterations, seed):
    """Numpy per-vector ADC on (N, C, P) outputs: vector p of sample n repeats with input
    scale s 2^k while a value clips (k <= iterations); repetition k draws xi from stream
    128 n + 2 k at index p C + c, and the output plus read noise is one normal of std
    sqrt(sigma_out^2 + var / s^2)."""
    n_samples, channels, positions = y.shape
    out = np.empty_like(y)
    clipped = np.zeros(n_samples, np.int64)
    repeated = np.zeros(n_samples, np.int64)
    f32 = np.float32
    sigma = f32(out_noise)
    for n in range(n_samples):
        for p in range(positions):
            k = 0
            while True:
                s = scale[n, p] * f32(2 ** k)
                inv = f32(1.0) / s
                size = channels * positions  # counters p C + c: (P, C) order
                xi = stream(seed, 128 * n + 2 * k, size).reshape(positions, channels)[p]
                v = y[n, :, p] * inv
                if var is not None:
                    v = v + np.sqrt(sigma * sigma + var[n, :, p] * (inv * inv)) * xi
                elif out_noise > 0:
                    v = v + sigma * xi
                count = int(np.count_nonzero((v > bound) | (v < -bound)))
                if count == 0 or k == iterations:
                    break
                k += 1
                repeated[n] += 1
            clipped[n] += count
            v = np.clip(v, f32(-bound), f32(bound))
            if step > 0:
                v = np.rint(v * f32(1.0 / step)).astype(np.float32) * f32(step)
            out[n, :, p] = v * s * col_scale
    return out, clipped, repeated


def run(y, var, scale, col_scale, out_noise, bound, step, iterations, seed, axis,
        parallel=True, out=None):
    """The kernel on (N, C, P) data, in NCHW (axis 1) or channels_last (axis 2) layout."""
    view = y if axis == 1 else np.ascontiguousarray(y.transpose(0, 2, 1))
    var_view = NO_VAR if var is None else (var if axis == 1 else
                                           np.ascontiguousarray(var.transpose(0, 2, 1)))
    dest = np.zeros_like(view) if out is None else (out.copy() if axis == 1 else
                                                   np.ascontiguousarray(out.transpose(0, 2, 1)))
    counts = np.zeros((y.shape[0], 3), np.int64)
    adc_per_vector(view, var_view, dest, scale, col_scale, axis, out_noise, var is not None,
                   bound, step, iterations, np.uint64(seed), out is not None, counts,
                   parallel=parallel)
    return (dest if axis == 1 else dest.transpose(0, 2, 1)), counts


def case(seed=0, n=3, channels=7, positions=33):
    rng = np.random.default_rng(seed)
    y = (rng.standard_normal((n, channels, positions)) * 8).astype(np.float32)
    var = (rng.uniform(0, 0.5, (n, channels, positions)) ** 2).astype(np.float32)
    scale = rng.uniform(0.5, 2.0, (n, positions)).astype(np.float32)
    col_scale = rng.uniform(0.5, 1.5, channels).astype(np.float32)
    return y, var, scale, col_scale


@pytest.mark.parametrize("axis", [1, 2])
@pytest.mark.parametrize("with_var", [False, True])
def test_kernel_equals_the_reference_with_noise_and_bound_management(axis, with_var):
    y, var, scale, col_scale = case()
    var = var if with_var else None
    bound, step = 2.0, 2 * 2.0 / (2 ** 9 - 2)
    expected, clipped, repeated = reference(y, var, scale, col_scale, 0.3, bound, step, 3, 7)
    assert repeated.sum() > 10 and clipped.sum() > 0  # bound management ran and gave up
    out, counts = run(y, var, scale, col_scale, 0.3, bound, step, 3, 7, axis)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(counts[:, 0], clipped)
    np.testing.assert_array_equal(counts[:, 1], repeated)


@pytest.mark.parametrize("axis", [1, 2])
@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_values_that_are_not_finite_are_counted_not_clipped_away(axis, noise):
    """An inf or NaN GEMM output (which the clip would turn into the bound), a rescale beyond
    float32 and an accumulation beyond float32 are each counted per sample; a finite pass
    counts none."""
    y, var, scale, col_scale = case(3)
    bound, step = 2.0, 2 * 2.0 / (2 ** 9 - 2)
    _, counts = run(y, None, scale, col_scale, noise, bound, step, 3, 7, axis)
    assert not counts[:, 2].any()
    bad = y.copy()
    bad[0, 1, 2] = np.inf
    bad[0, 3, 4] = np.nan
    bad[2, 0, 0] = -np.inf
    _, counts = run(bad, None, scale, col_scale, noise, bound, step, 3, 7, axis)
    np.testing.assert_array_equal(counts[:, 2] > 0, [True, False, True])
    big, huge = y.copy(), scale.copy()
    big[1, :, 5], huge[1, 5] = 3.3e38, 3e38  # finite, but q * s * col_scale (= 2) overflows
    _, counts = run(big, None, huge, np.full_like(col_scale, 2.0), noise, bound, step, 0, 7,
                    axis)
    assert counts[1, 2] > 0 and counts[0, 2] == 0 and counts[2, 2] == 0
    start, big, large = np.zeros_like(y), y.copy(), scale.copy()
    start[2], big[2], large[2] = 3e38, 1.5e38, 1e38  # each output about 1e38: the sum overflows
    _, counts = run(big, None, large, col_scale, noise, bound, step, 3, 7, axis, out=start)
    assert counts[2, 2] > 0 and counts[0, 2] == 0


@pytest.mark.parametrize("axis", [1, 2])
def test_accumulate_adds_to_the_destination(axis):
    y, var, scale, col_scale = case(1)
    start = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
    expected, _, _ = reference(y, var, scale, col_scale, 0.2, 4.0, 0.0, 2, 3)
    out, _ = run(y, var, scale, col_scale, 0.2, 4.0, 0.0, 2, 3, axis, out=start)
    np.testing.assert_array_equal(out, start + expected)


def test_layouts_threads_and_serial_kernel_agree():
    y, var, scale, col_scale = case(4, n=6, channels=24, positions=300)
    args = (y, var, scale, col_scale, 0.5, 3.0, 0.01, 5, 11)
    first, counts = run(*args, axis=1)
    assert counts[:, 1].sum() > 0
    for axis in (1, 2):
        np.testing.assert_array_equal(run(*args, axis=axis, parallel=False)[0], first)
        threads = numba.get_num_threads()
        try:
            numba.set_num_threads(1)
            np.testing.assert_array_equal(run(*args, axis=axis)[0], first)
        finally:
            numba.set_num_threads(threads)
    assert not np.array_equal(run(*args[:-1], 12, axis=1)[0], first)


@pytest.mark.parametrize("axis", [1, 2])
def test_output_noise_is_normal_with_exact_tails_and_the_configured_std(axis):
    """Zero GEMM outputs, ideal ADC: the outputs are sigma_out xi; their std within 4 SE and
    the fraction beyond 4 sigma within 4 SE (exact tails; a table generator cut at 4.3 sigma
    has half)."""
    y = np.zeros((16, 64, 4096), np.float32)
    scale = np.ones((16, 4096), np.float32)
    out, _ = run(y, None, scale, np.ones(64, np.float32), 0.06, np.inf, 0.0, 0, 5, axis)
    z = out.astype(np.float64).ravel() / 0.06
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.std() - 1) < 4 / np.sqrt(2 * n)
    p = 6.334248366623996e-05  # P(|z| > 4)
    assert abs(np.count_nonzero(np.abs(z) > 4) - n * p) < 4 * np.sqrt(n * p)


def test_output_and_read_noise_add_in_variance():
    """Per-MVM read noise: the output minus its noiseless value has variance
    sigma_out^2 + var / s^2 (one normal for both), within 4 standard errors."""
    n, channels, positions = 8, 32, 2048
    rng = np.random.default_rng(9)
    var = rng.uniform(0.0, 0.2, (n, channels, positions)).astype(np.float32)
    scale = rng.uniform(0.5, 2.0, (n, positions)).astype(np.float32)
    y = np.zeros((n, channels, positions), np.float32)
    out, _ = run(y, var, scale, np.ones(channels, np.float32), 0.06, np.inf, 0.0, 0, 4, 2)
    z = out.astype(np.float64) / scale[:, None, :]  # = std xi
    std = np.sqrt(0.06 ** 2 + var / scale[:, None, :].astype(np.float64) ** 2)
    standardised = (z / std).ravel()
    assert abs(standardised.mean()) < 4 / np.sqrt(standardised.size)
    assert abs(standardised.var() - 1) < 4 * np.sqrt(2 / standardised.size)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 4096), weight_max=st.floats(1e-3, 10.0),
       variance_max=st.sampled_from([0.0, 1e-6, 1e-2]), scale_max=st.floats(1e-3, 1e3),
       out_bound=st.sampled_from([None, 12.0, 1e4]), iterations=st.integers(0, 32),
       inp_bound=st.floats(0.1, 8.0), out_noise=st.sampled_from([0.0, 0.06, 5.0]))
def test_every_value_below_the_safe_scale_is_finite(rows, weight_max, variance_max, scale_max,
                                                     out_bound, iterations, inp_bound,
                                                     out_noise):
    """At the scale ``safe_vector_scale`` returns, the largest GEMM output and variance its
    bound allows are finite, and the kernel, checking every value, converts them, plus noise,
    bound management and a sum onto 1023 blocks' worth of equal outputs, without one value
    that is not finite."""
    periphery = PeripheryConfig(inp_bound=inp_bound, out_bound=out_bound, out_noise=out_noise,
                                out_bits=9 if out_bound else None,
                                max_bound_iterations=iterations)
    s = safe_vector_scale(periphery, rows, weight_max, variance_max, scale_max)
    x_max = 2.0 * max(1.0, inp_bound)
    y_max = np.float32(rows * x_max * weight_max * s)
    var_max = np.float32(rows * (x_max * s) ** 2 * variance_max)
    assert np.isfinite(y_max) and np.isfinite(var_max)
    y = np.array([[[y_max, -y_max, 0.0, y_max / 3]]], np.float32).transpose(0, 2, 1)  # (1, 4, 1)
    var = np.full_like(y, var_max)
    scale = np.full((1, 1), s, np.float32)
    col_scale = np.full(4, scale_max, np.float32)
    v_max = min(periphery.out_clip, float(np.abs(y).max() / s) + 16 * (
        out_noise + x_max * np.sqrt(rows * variance_max)))
    start = np.full_like(y, 1023 * v_max * s * 2.0 ** bound_iterations(periphery) * scale_max)
    assert np.all(np.isfinite(start))
    for use_var in (False, True):
        counts = np.zeros((1, 3), np.int64)
        out = start.copy()
        adc_per_vector(y, var if use_var else NO_VAR, out, scale, col_scale, 1, out_noise,
                       use_var, periphery.out_clip if out_bound else 3.4e38, periphery.out_step,
                       bound_iterations(periphery), np.uint64(3), True, counts,
                       parallel=False, safe_scale=0.0)
        assert counts[0, 2] == 0 and np.all(np.isfinite(out)), (use_var, out)
