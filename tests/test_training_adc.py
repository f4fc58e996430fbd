"""The training forward of the per-patch ADC (``kernels.training.adc_per_vector_masked``)
against a scalar reference written from its docstring's equation, bit for bit: output noise
from the table-normal streams (kernels/table_normals.py) by random access, clipping,
quantisation, bound management, the mask of unclipped values and the counters, in both memory
layouts. And the per-image training forward (``adc_forward_masked``) against the inference
ADC: the same normals, so the same outputs."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aimcsim.kernels.periphery import adc_accumulate
from aimcsim.kernels.rng import block_state
from aimcsim.kernels.table_normals import normal_at_counter
from aimcsim.kernels.training import (adc_forward_masked, adc_forward_masked_serial,
                                      adc_per_vector_masked, adc_per_vector_masked_serial,
                                      MASKED_BLOCK)


def reference(y, vector_scale, col_scale, out_noise, bound, step, iterations, seed):
    """``Q(clip(y / (s 2^k) + sigma xi)) * s 2^k * col_scale[c]`` per position of the (N, C, P)
    array ``y``, k raised while a value clips (at most ``iterations``); xi of repetition k of
    sample n is ``normal_at_counter(block_state(seed, 128 n + 2 k), c P + p)``. Scalar
    float32."""
    n_samples, channels, positions = y.shape
    f32 = np.float32
    f_bound = f32(bound) if bound < 3e38 else f32(3e38)
    inv_step = f32(1.0 / step) if step > 0 else f32(1.0)
    out = np.empty_like(y)
    inside = np.empty(y.shape, np.uint8)
    counts = np.zeros((n_samples, 2), np.int64)
    for n in range(n_samples):
        for p in range(positions):
            k = 0
            while True:
                scale = vector_scale[n, p] * f32(1 << k)
                inv = f32(1.0) / scale
                state = np.uint64(block_state(np.uint64(seed), np.int64(128 * n + 2 * k)))
                clipped_here = 0
                for c in range(channels):
                    v = y[n, c, p] * inv
                    if out_noise > 0:
                        xi = f32(normal_at_counter(state, np.uint64(c * positions + p)))
                        v = v + f32(out_noise) * xi
                    clipped = bool(v > f_bound or v < -f_bound)
                    clipped_here += clipped
                    v = min(max(v, -f_bound), f_bound)
                    if step > 0:
                        v = f32(np.rint(v * inv_step)) * f32(step)
                    out[n, c, p] = v * scale * col_scale[c]
                    inside[n, c, p] = 0 if clipped else 1
                if clipped_here == 0 or k == iterations:
                    counts[n, 0] += clipped_here
                    break
                k += 1
                counts[n, 1] += 1
    return out, inside, counts


def run(kernel, y_cp, vector_scale, col_scale, channels_last, out_noise, bound, step,
        iterations, seed):
    """The kernel on the (N, C, P) data in the chosen layout; results back in (N, C, P)."""
    y = np.ascontiguousarray(y_cp.transpose(0, 2, 1)) if channels_last else y_cp.copy()
    out = np.empty_like(y)
    inside = np.empty(y.shape, np.uint8)
    counts = np.zeros((y.shape[0], 2), np.int64)
    kernel(y, out, inside, vector_scale, col_scale, 2 if channels_last else 1, out_noise,
           bound, step, iterations, np.uint64(seed), counts)
    if channels_last:
        out, inside = out.transpose(0, 2, 1), inside.transpose(0, 2, 1)
    return out, inside, counts


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), channels=st.integers(1, 9),
       positions=st.integers(1, MASKED_BLOCK + 7), channels_last=st.booleans(),
       noisy=st.booleans(), quantize=st.booleans(), bound=st.sampled_from([1.5, 4.0, np.inf]),
       iterations=st.sampled_from([0, 1, 5]), parallel=st.booleans(),
       seed=st.integers(0, 2 ** 62))
def test_matches_scalar_reference(n, channels, positions, channels_last, noisy, quantize,
                                  bound, iterations, parallel, seed):
    rng = np.random.default_rng(seed % 1000)
    y = (2.0 * rng.standard_normal((n, channels, positions))).astype(np.float32)
    vector_scale = rng.uniform(0.5, 2.0, (n, positions)).astype(np.float32)
    col_scale = rng.uniform(0.5, 2.0, channels).astype(np.float32)
    out_noise, step = (0.3 if noisy else 0.0), (2.0 / 511 if quantize else 0.0)
    kernel = adc_per_vector_masked if parallel else adc_per_vector_masked_serial
    got = run(kernel, y, vector_scale, col_scale, channels_last, out_noise, bound, step,
              iterations, seed)
    want = reference(y, vector_scale, col_scale, out_noise, bound, step, iterations, seed)
    assert np.array_equal(got[0].view(np.uint32), want[0].view(np.uint32))
    assert np.array_equal(got[1], want[1])
    assert np.array_equal(got[2], want[2])


def test_bound_management_and_noise_are_exercised():
    """The reference comparison above covers repetitions and clipped values: with a tight
    bound both happen, and the noise moves the outputs."""
    rng = np.random.default_rng(0)
    y = (3.0 * rng.standard_normal((2, 16, 100))).astype(np.float32)
    scale = np.ones((2, 100), np.float32)
    col = np.ones(16, np.float32)
    quiet = run(adc_per_vector_masked, y, scale, col, True, 0.0, 1.5, 0.0, 2, 7)
    noisy = run(adc_per_vector_masked, y, scale, col, True, 0.3, 1.5, 0.0, 2, 7)
    assert quiet[2][:, 1].sum() > 0 and quiet[2][:, 0].sum() > 0  # repeated, still clipped
    assert (quiet[1] == 0).any() and (quiet[1] == 1).any()
    assert not np.array_equal(quiet[0], noisy[0])


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 4), channels=st.integers(1, 9), positions=st.integers(1, 300),
       channels_last=st.booleans(), quantize=st.booleans(),
       bound=st.sampled_from([1.5, 4.0, np.inf]), parallel=st.booleans(),
       seed=st.integers(0, 2 ** 62))
def test_per_image_training_forward_draws_the_inference_normals(n, channels, positions,
                                                                channels_last, quantize,
                                                                bound, parallel, seed):
    """``adc_forward_masked`` adds the output noise of ``adc_accumulate`` (sample n: stream
    (seed, 2n), logical (channel, position) order): with the same seed both give the same
    outputs bit for bit and the same clip counts, which the mask's zeros match."""
    rng = np.random.default_rng(seed % 1000)
    shape = (n, positions, channels) if channels_last else (n, channels, positions)
    axis = 2 if channels_last else 1
    y = (2.0 * rng.standard_normal(shape)).astype(np.float32)
    # powers of 2: the kernels round the rescale q s_n c_k in different orders
    in_scale = rng.choice([0.5, 1.0, 2.0, 4.0], n).astype(np.float32)
    col_scale = rng.choice([0.5, 1.0, 2.0, 4.0], channels).astype(np.float32)
    step = 2.0 / 511 if quantize else 0.0
    clip = float(bound)
    want = np.empty_like(y)
    want_clipped = np.zeros(n, np.int64)
    adc_accumulate(y, np.zeros((1, 1, 1), np.float32), want, in_scale, col_scale, axis, 0.3,
                   False, clip, step, np.uint64(seed), False, False, want_clipped)
    got = np.empty_like(y)
    inside = np.empty(shape, np.uint8)
    clipped = np.zeros(n, np.int64)
    kernel = adc_forward_masked if parallel else adc_forward_masked_serial
    kernel(y, got, inside, in_scale, col_scale, axis, 0.3, clip, step, np.uint64(seed),
           clipped)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    np.testing.assert_array_equal(clipped, want_clipped)
    assert clipped.sum() == np.count_nonzero(inside == 0)
