"""The fused Numba periphery kernels against the plain numpy references, the converter
limits of physics.md section 5, and the per-image ADC's noise streams (table normals with
exact tails, kernels/table_normals.py)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimcsim.kernels.periphery import (NM_ABS_MAX, adc_accumulate, adc_accumulate_serial,
                                       dac_quantize)
from aimcsim.kernels.rng import block_state
from aimcsim.kernels.table_normals import table_normal
from aimcsim.tiles.periphery import (NOISE_MANAGEMENT, PeripheryConfig, quantization_step,
                                     reference_adc, reference_dac)

NO_VAR = np.zeros((1, 1, 1), np.float32)


def run_adc(y, config, seed=0, col_scale=None, in_scale=None, noise=True):
    y = np.ascontiguousarray(y, np.float32)
    n = y.shape[0]
    out = np.zeros_like(y)
    clipped = np.zeros(n, np.int64)
    col_scale = np.ones(y.shape[1], np.float32) if col_scale is None else col_scale
    in_scale = np.ones(n, np.float32) if in_scale is None else in_scale
    adc_accumulate(y.copy(), NO_VAR, out, in_scale, col_scale, 1,
                   config.out_noise if noise else 0.0, False, config.out_clip, config.out_step,
                   np.uint64(seed), False, False, clipped)
    return out, clipped


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 6), a=st.integers(1, 9), b=st.integers(1, 40),
       bits=st.one_of(st.none(), st.integers(2, 10)), bound=st.floats(0.25, 4.0),
       mode=st.sampled_from(sorted(NOISE_MANAGEMENT)), seed=st.integers(0, 2**31))
def test_dac_kernel_equals_reference(n, a, b, bits, bound, mode, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, a, b)) * rng.uniform(0.1, 5)).astype(np.float32)
    if seed % 5 == 0:
        x[0] = 0.0  # an all-zero input vector keeps scale 1
    config = PeripheryConfig(inp_bits=bits, inp_bound=bound, noise_management=mode,
                             nm_constant=1.7)
    expected, s_ref = reference_dac(x, config)
    out = np.empty_like(x)
    scales = np.ones(n, np.float32)
    dac_quantize(x, out, scales, NOISE_MANAGEMENT[mode], config.nm_constant, config.inp_bound,
                 config.inp_step)
    np.testing.assert_allclose(scales, s_ref, rtol=1e-6)
    step = config.inp_step or 1e-6
    # identical except at exact rounding ties (v / step = k + 0.5), never more than a step apart
    assert np.abs(out - expected).max() <= step * 1.0001
    if config.inp_step:
        v = np.clip(x / s_ref[:, None, None], -bound, bound).astype(np.float64) / config.inp_step
        ties = np.abs(v - np.floor(v) - 0.5) < 1e-3
        assert np.all(ties[np.abs(out - expected) > step / 2])
    else:
        np.testing.assert_allclose(out, expected, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 5), a=st.integers(1, 6), b=st.integers(1, 50),
       bits=st.one_of(st.none(), st.integers(2, 12)), bound=st.floats(0.5, 20.0),
       seed=st.integers(0, 2**31))
def test_adc_kernel_equals_reference_without_noise(n, a, b, bits, bound, seed):
    rng = np.random.default_rng(seed)
    y = (rng.standard_normal((n, a, b)) * bound).astype(np.float32)
    config = PeripheryConfig(out_bits=bits, out_bound=bound, out_noise=0.0)
    expected, clipped_ref = reference_adc(y, config)
    out, clipped = run_adc(y, config)
    np.testing.assert_array_equal(clipped, clipped_ref)
    step = config.out_step or 1e-6
    assert np.abs(out - expected).max() <= step * 1.0001
    if config.out_step:
        v = np.clip(y, -bound, bound).astype(np.float64) / config.out_step
        ties = np.abs(v - np.floor(v) - 0.5) < 1e-3
        assert np.all(ties[np.abs(out - expected) > step / 2])
    else:
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("bits,bound", [(7, 1.0), (9, 12.0), (4, 3.0), (2, 1.0)])
def test_converter_step_is_full_range_over_2b_minus_2(bits, bound):
    assert quantization_step(bits, bound) == pytest.approx(2 * bound / (2 ** bits - 2))
    config = PeripheryConfig(out_bits=bits, out_bound=bound, out_noise=0.0)
    y = np.linspace(-1.5 * bound, 1.5 * bound, 20001, dtype=np.float32).reshape(1, 1, -1)
    out, _ = run_adc(y, config)
    levels = np.unique(out)
    assert len(levels) == 2 ** bits - 1  # 2^b - 2 steps between -bound and +bound
    np.testing.assert_allclose(np.diff(levels), 2 * bound / (2 ** bits - 2), rtol=1e-4)
    assert levels[0] == pytest.approx(-bound) and levels[-1] == pytest.approx(bound)


def test_infinite_bits_leave_values_untouched():
    config = PeripheryConfig(inp_bits=None, out_bits=None, out_bound=None, out_noise=0.0)
    y = np.random.default_rng(1).standard_normal((3, 4, 25)).astype(np.float32) * 100
    out, clipped = run_adc(y, config)
    np.testing.assert_array_equal(out, y)
    assert clipped.sum() == 0


def test_saturation_is_counted_per_sample():
    config = PeripheryConfig(out_bits=9, out_bound=2.0, out_noise=0.0)
    y = np.zeros((3, 1, 10), np.float32)
    y[0, 0, :4] = 5.0
    y[2, 0, 0] = -2.5
    y[1, 0, 0] = 1.99
    _, clipped = run_adc(y, config)
    assert clipped.tolist() == [4, 0, 1]


def test_output_noise_has_the_configured_std():
    config = PeripheryConfig(out_bits=None, out_bound=None, out_noise=0.06)
    y = np.zeros((8, 16, 2000), np.float32)
    out, _ = run_adc(y, config, seed=3)
    n = out.size
    assert abs(out.mean()) < 3 * 0.06 / np.sqrt(n)
    se = 0.06 / np.sqrt(2 * n)
    assert abs(out.std() - 0.06) < 3 * se + 1e-6


def test_noise_streams_are_reproducible_and_thread_independent():
    config = PeripheryConfig(out_bits=9, out_bound=12.0, out_noise=0.5)
    y = np.random.default_rng(0).standard_normal((4, 3, 100)).astype(np.float32)
    a, _ = run_adc(y, config, seed=11)
    b, _ = run_adc(y, config, seed=11)
    c, _ = run_adc(y, config, seed=12)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    serial = np.zeros_like(y)
    clipped = np.zeros(4, np.int64)
    adc_accumulate_serial(y.copy(), NO_VAR, serial, np.ones(4, np.float32),
                          np.ones(3, np.float32), 1, 0.5, False, 12.0, config.out_step,
                          np.uint64(11), False, False, clipped)
    np.testing.assert_array_equal(a, serial)


def sample_stream(seed: int, stream: int, size: int) -> np.ndarray:
    """Draws 0 .. size - 1 of the table-normal stream with key block_state(seed, stream)."""
    return table_normal(size, int(block_state(np.uint64(seed), np.int64(stream))))


@pytest.mark.parametrize("channel_axis", [1, 2])
@pytest.mark.parametrize("parallel", [False, True])
def test_noise_is_the_table_normals_of_each_sample_in_logical_order(channel_axis, parallel):
    """With no clipping and no quantisation, the ADC of zero outputs returns its noise:
    sample n's output noise is sigma_out times draws 0 .. C P - 1 of stream (seed, 2n), value
    (channel c, position p) at counter c P + p in either memory layout, and its per-MVM read
    noise is sqrt(var) times those of stream (seed, 2n + 1). Bit for bit."""
    n, channels, positions, seed, sigma = 3, 5, 4100, 21, np.float32(0.06)
    shape = (n, channels, positions) if channel_axis == 1 else (n, positions, channels)
    kernel = adc_accumulate if parallel else adc_accumulate_serial
    ones = np.ones(n, np.float32), np.ones(channels, np.float32)
    for out_noise, use_var, stream_offset, factor in ((0.06, False, 0, sigma),
                                                      (0.0, True, 1, np.float32(2.0))):
        var = np.full(shape, 4.0, np.float32) if use_var else NO_VAR
        out = np.empty(shape, np.float32)
        kernel(np.zeros(shape, np.float32), var, out, *ones, channel_axis, out_noise, use_var,
               np.inf, 0.0, np.uint64(seed), False, False, np.zeros(n, np.int64))
        for i in range(n):
            xi = sample_stream(seed, 2 * i + stream_offset, channels * positions)
            want = factor * xi.reshape(channels, positions)
            got = out[i] if channel_axis == 1 else out[i].T
            np.testing.assert_array_equal(got, want)


def test_scales_and_accumulate():
    config = PeripheryConfig(out_bits=None, out_bound=None, out_noise=0.0)
    y = np.ones((2, 3, 4), np.float32)
    out = np.full_like(y, 10.0)
    clipped = np.zeros(2, np.int64)
    adc_accumulate(y, NO_VAR, out, np.array([1.0, 2.0], np.float32),
                   np.array([1.0, 3.0, 5.0], np.float32), 1, 0.0, False, np.inf, 0.0,
                   np.uint64(0), True, False, clipped)
    np.testing.assert_array_equal(out[0, :, 0], [11, 13, 15])
    np.testing.assert_array_equal(out[1, :, 0], [12, 16, 20])


@pytest.mark.parametrize("field,value", [("inp_bits", 1), ("out_bits", 0), ("inp_bits", -3),
                                         ("inp_bound", 0.0), ("out_bound", float("nan")),
                                         ("out_noise", -0.1), ("noise_management", "absmax"),
                                         ("bound_management", "clever"),
                                         ("max_bound_iterations", -1)])
def test_bad_periphery_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        PeripheryConfig(**{field: value})


def test_abs_max_mode_constant_is_exported():
    assert NOISE_MANAGEMENT["abs_max"] == NM_ABS_MAX
