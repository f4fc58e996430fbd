"""Fused Numba kernels for the periphery during hardware-aware training (forward and backward).

Same 3-D views as ``kernels/periphery.py``: ``(N, A, B)`` with the channel on axis 1 (A) or 2
(B). The forward kernels are those of inference plus a mask of the values that were *not*
clipped; the backward kernels apply the straight-through gradients of the quantisers:

- DAC: ``v = Q_in(clip(x / s, -b_in, b_in))`` gives ``dL/dx = dL/dv / s`` where
  ``|x / s| <= b_in`` and 0 outside (the quantiser passes the gradient unchanged).
- ADC: ``out = Q_out(clip(y + sigma_out * xi, -b_out, b_out)) * s_n * c_k`` gives
  ``dL/dy = dL/dout * s_n * c_k`` where the noisy value was inside ``[-b_out, b_out]``.

``s_n`` (per-sample input scale) and ``c_k`` (per-channel weight scale) are constants for the
gradient, as in the plain torch path (``aimcsim/nn/backends/torch_periphery.py``), which these
kernels match to float rounding when the output noise is off.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .periphery import _fill_normals, adc_constants
from .rng import block_state, normal_at


@nb.njit(parallel=True, cache=True)
def adc_forward_masked(y: np.ndarray, out: np.ndarray, inside: np.ndarray,
                       in_scale: np.ndarray, col_scale: np.ndarray, channel_axis: int,
                       out_noise: float, bound: float, step: float, seed: np.uint64,
                       table: np.ndarray, saturated: np.ndarray) -> None:
    """Output noise, ADC clip + quantisation and rescale; records the unclipped mask.

    Args:
        y: (N, A, B) float32 raw tile outputs (normalised units).
        out: (N, A, B) float32 destination: ``q * in_scale[n] * col_scale[channel]``.
        inside: (N, A, B) uint8 destination: 1 where the noisy value was within the bound.
        in_scale: (N,) float32 per-sample input scale.
        col_scale: per-channel scale (length A if ``channel_axis == 1``, else B).
        out_noise: standard deviation of the additive output noise (normalised units).
        bound: ADC bound b_out (>= 3e38: no clipping).
        step: ADC step (<= 0: no quantisation).
        seed: stream seed; sample n draws from stream ``(seed, 2n)`` as in ``adc_accumulate``.
        table: normal quantile table (``kernels.rng.NORMAL_TABLE``).
        saturated: (N,) int64, receives the number of clipped values per sample.
    """
    n_samples, size_a, size_b = y.shape
    n_words = (size_a * size_b + 3) // 4
    noisy, quantize, inv_step, f_step, f_bound, f_noise = adc_constants(out_noise, bound, step)
    for n in nb.prange(n_samples):
        noise = np.zeros(4 * n_words if noisy else 1, np.float32)
        if noisy:
            _fill_normals(noise, block_state(seed, 2 * n), f_noise, table, n_words)
        sn = in_scale[n]
        count = 0
        for a in range(size_a):
            for b in range(size_b):
                v = y[n, a, b]
                if noisy:  # logical (channel, position) order, as in adc_accumulate
                    v += noise[a * size_b + b if channel_axis == 1 else b * size_a + a]
                clipped = (v > f_bound) | (v < -f_bound)
                count += clipped
                inside[n, a, b] = 0 if clipped else 1
                v = min(max(v, -f_bound), f_bound)
                if quantize:
                    v = np.float32(np.rint(v * inv_step)) * f_step
                c = a if channel_axis == 1 else b
                out[n, a, b] = v * sn * col_scale[c]
        saturated[n] = count


@nb.njit(parallel=True, cache=True)
def adc_backward(grad: np.ndarray, inside: np.ndarray, in_scale: np.ndarray,
                 col_scale: np.ndarray, channel_axis: int, out: np.ndarray) -> None:
    """``out = grad * in_scale[n] * col_scale[channel]`` where ``inside``, else 0."""
    n_samples, size_a, size_b = grad.shape
    for n in nb.prange(n_samples):
        sn = in_scale[n]
        for a in range(size_a):
            for b in range(size_b):
                c = a if channel_axis == 1 else b
                g = grad[n, a, b] * sn * col_scale[c]
                out[n, a, b] = g if inside[n, a, b] else np.float32(0.0)


@nb.njit(parallel=True, cache=True)
def dac_backward(x: np.ndarray, grad: np.ndarray, scales: np.ndarray, bound: float,
                 out: np.ndarray) -> None:
    """``out = grad / s_n`` where ``|x / s_n| <= bound``, else 0 (straight-through DAC)."""
    n_samples, size_a, size_b = x.shape
    f_bound = np.float32(bound)
    for n in nb.prange(n_samples):
        inv = np.float32(1.0) / scales[n]
        for a in range(size_a):
            for b in range(size_b):
                v = x[n, a, b] * inv
                inside = (v <= f_bound) & (v >= -f_bound)
                out[n, a, b] = grad[n, a, b] * inv if inside else np.float32(0.0)


# Single-threaded variants: during training torch's thread pool spins between operators, and a
# parallel Numba region competing with it for the same cores costs more than it saves (f1net,
# batch 128, 2 cores: 0.72 s per step with 2 Numba threads, 0.43 s with these; FP32 0.37 s).
adc_forward_masked_serial = nb.njit(cache=True)(adc_forward_masked.py_func)
adc_backward_serial = nb.njit(cache=True)(adc_backward.py_func)
dac_backward_serial = nb.njit(cache=True)(dac_backward.py_func)


@nb.njit(parallel=True, cache=True)
def adc_per_vector_masked(y: np.ndarray, out: np.ndarray, inside: np.ndarray,
                          vector_scale: np.ndarray, col_scale: np.ndarray, channel_axis: int,
                          out_noise: float, bound: float, step: float, max_iterations: int,
                          seed: np.uint64, table: np.ndarray, counts: np.ndarray) -> None:
    """Training forward of ``kernels.periphery.adc_per_vector`` (no read noise, no
    accumulation) that also records where the final noisy value was inside the ADC range.

    ``out = Q_out(clip(y / (s m) + sigma_out xi, -b, b)) * s m * col_scale[c]`` per output
    position with its bound-management multiplier m; ``inside`` (uint8, same shape) is 1 where
    that value was not clipped. Same noise streams as ``adc_per_vector``.
    """
    n_samples, size_a, size_b = y.shape
    noisy, quantize, inv_step, f_step, f_bound, f_noise = adc_constants(out_noise, bound, step)
    positions = size_b if channel_axis == 1 else size_a
    channels = size_a if channel_axis == 1 else size_b
    for n in nb.prange(n_samples):
        repeated = 0
        clipped_total = 0
        for p in range(positions):
            s = vector_scale[n, p]
            k = 0
            while True:
                scale = s * np.float32(1 << k)
                inv = np.float32(1.0) / scale
                state = block_state(seed, np.int64(128 * n + 2 * k))
                count = 0
                for c in range(channels):
                    v = (y[n, c, p] if channel_axis == 1 else y[n, p, c]) * inv
                    if noisy:
                        v += f_noise * normal_at(state, np.int64(c * positions + p), table)
                    clipped = (v > f_bound) | (v < -f_bound)
                    count += clipped
                    v = min(max(v, -f_bound), f_bound)
                    if quantize:
                        v = np.float32(np.rint(v * inv_step)) * f_step
                    if channel_axis == 1:
                        out[n, c, p] = v * scale * col_scale[c]
                        inside[n, c, p] = 0 if clipped else 1
                    else:
                        out[n, p, c] = v * scale * col_scale[c]
                        inside[n, p, c] = 0 if clipped else 1
                if count == 0 or k == max_iterations:
                    clipped_total += count
                    break
                k += 1
                repeated += 1
        counts[n, 0] = clipped_total
        counts[n, 1] = repeated


@nb.njit(parallel=True, cache=True)
def adc_per_vector_backward(grad: np.ndarray, inside: np.ndarray, col_scale: np.ndarray,
                            channel_axis: int, out: np.ndarray) -> None:
    """``out = grad * col_scale[channel]`` where ``inside``, else 0: the straight-through
    gradient of ``y -> Q(clip(y / (s m))) * s m * c`` (the input scale cancels)."""
    n_samples, size_a, size_b = grad.shape
    for n in nb.prange(n_samples):
        for a in range(size_a):
            for b in range(size_b):
                c = a if channel_axis == 1 else b
                out[n, a, b] = grad[n, a, b] * col_scale[c] if inside[n, a, b] \
                    else np.float32(0.0)


adc_per_vector_masked_serial = nb.njit(cache=True)(adc_per_vector_masked.py_func)
adc_per_vector_backward_serial = nb.njit(cache=True)(adc_per_vector_backward.py_func)
