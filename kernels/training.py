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

from .adc_per_vector import _adc_value
from .periphery import adc_constants, sample_normals
from .rng import block_state
from .table_normals import fill_normals_run, mark_scratch, normal_at_counter
from .twins import serial_twin

_ZERO = np.float32(0.0)


@nb.njit(parallel=True, cache=True)
def adc_forward_masked(y: np.ndarray, out: np.ndarray, inside: np.ndarray,
                       in_scale: np.ndarray, col_scale: np.ndarray, channel_axis: int,
                       out_noise: float, bound: float, step: float, seed: np.uint64,
                       saturated: np.ndarray) -> None:
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
        seed: stream seed; sample n's xi are ``periphery.sample_normals(seed, 2n)`` in
            logical (channel, position) order, the same draws as ``adc_accumulate``'s.
        saturated: (N,) int64, receives the number of clipped values per sample.
    """
    n_samples, size_a, size_b = y.shape
    noisy, quantize, inv_step, f_step, f_bound, f_noise = adc_constants(out_noise, bound, step)
    for n in nb.prange(n_samples):
        noise = sample_normals(seed, 2 * n, size_a * size_b, noisy)
        sn = in_scale[n]
        count = 0
        for a in range(size_a):
            for b in range(size_b):
                v = y[n, a, b]
                if noisy:  # logical (channel, position) order, as in adc_accumulate
                    v += f_noise * noise[a * size_b + b if channel_axis == 1 else b * size_a + a]
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
adc_forward_masked_serial = serial_twin(adc_forward_masked, cache=True)
adc_backward_serial = serial_twin(adc_backward, cache=True)
dac_backward_serial = serial_twin(dac_backward, cache=True)


@nb.njit(cache=True)
def _repeat_masked_vector(y, out, inside, p, s, col_scale, channel_axis, out_noise, bound,
                          step, max_iterations, seed, n):
    """Bound management of position ``p`` of sample ``y`` (2-D; it clipped at k = 0):
    repetitions k = 1, 2, ... with input scale s 2^k and the normals of stream
    ``block_state(seed, 128 n + 2 k)`` at counters ``c P + p`` (random access,
    :func:`~kernels.table_normals.normal_at_counter`), until nothing clips or k =
    ``max_iterations``; overwrites the position's ``out`` and ``inside``. Returns (values still
    clipped, repetitions)."""
    noisy, quantize, inv_step, f_step, f_bound, f_noise = adc_constants(out_noise, bound, step)
    size_a, size_b = y.shape
    positions = size_b if channel_axis == 1 else size_a
    channels = size_a if channel_axis == 1 else size_b
    k = 0
    count = 1
    while count > 0 and k < max_iterations:
        k += 1
        scale = s * np.float32(1 << k)
        inv = np.float32(1.0) / scale
        state = block_state(seed, np.int64(128 * n + 2 * k))
        count = 0
        for c in range(channels):
            xi = normal_at_counter(state, np.uint64(c * positions + p)) if noisy \
                else np.float32(0.0)
            raw = y[c, p] if channel_axis == 1 else y[p, c]
            v, clipped = _adc_value(raw, _ZERO, inv, xi, f_noise, f_bound, inv_step, f_step,
                                    noisy, False, quantize)
            count += clipped
            if channel_axis == 1:
                out[c, p] = v * scale * col_scale[c]
                inside[c, p] = 0 if clipped else 1
            else:
                out[p, c] = v * scale * col_scale[c]
                inside[p, c] = 0 if clipped else 1
    return count, k


#: Positions per block of the channels_last training ADC (their normals fit in the L1 cache).
MASKED_BLOCK = 64


@nb.njit(inline="always", cache=True)
def _block_normals_transposed(noise, run, marks, key, positions, p0, p1, channels):
    """``noise[(p - p0) C + c] = normal(key, c P + p)`` for positions p0 <= p < p1 and every
    channel c (the outputs' channels_last layout): per channel, one vectorised run of the
    block's counters ``c P + p0 ..`` into ``run``, then scattered with a stride of C."""
    width = p1 - p0
    stride = np.uint64(channels)
    for c in range(channels):
        fill_normals_run(run[:width], marks, key, np.uint64(c * positions + p0))
        at = np.uint64(c)
        for j in range(np.uint64(width)):
            noise[at + j * stride] = run[j]


def _build_masked(noisy: bool, quantize: bool):
    """The (parallel, serial) :func:`adc_per_vector_masked` kernels with the output-noise and
    quantisation switches fixed at compile time (a run-time switch stops the loops
    vectorising)."""

    def kernel(y, out, inside, vector_scale, col_scale, channel_axis, out_noise, bound, step,
               max_iterations, seed, counts):
        n_samples, size_a, size_b = y.shape
        _, _, inv_step, f_step, f_bound, f_noise = adc_constants(out_noise, bound, step)
        positions = size_b if channel_axis == 1 else size_a
        channels = size_a if channel_axis == 1 else size_b
        for n in nb.prange(n_samples):
            state0 = block_state(seed, np.int64(128 * n))
            scales = vector_scale[n]
            count = np.zeros(positions, np.int64)
            if channel_axis == 1:  # (C, P): counters c P + p run along the memory
                noise = np.empty(positions if noisy else 1, np.float32)
                marks = mark_scratch(positions if noisy else 1)
                inv = np.empty(positions, np.float32)
                for p in range(positions):
                    inv[p] = np.float32(1.0) / scales[p]
                for c in range(channels):
                    if noisy:
                        fill_normals_run(noise, marks, state0, np.uint64(c * positions))
                    cs = col_scale[c]
                    for p in range(positions):
                        xi = noise[p] if noisy else np.float32(0.0)
                        v, clipped = _adc_value(y[n, c, p], _ZERO, inv[p], xi, f_noise, f_bound,
                                                inv_step, f_step, noisy, False, quantize)
                        out[n, c, p] = v * scales[p] * cs
                        inside[n, c, p] = 0 if clipped else 1
                        count[p] += clipped
            else:  # (P, C): a block of positions' normals drawn channel by channel, transposed
                block = max(1, min(MASKED_BLOCK, positions))
                noise = np.empty(block * channels if noisy else 1, np.float32)
                run = np.empty(block if noisy else 1, np.float32)
                marks = mark_scratch(block if noisy else 1)
                for p0 in range(0, positions, block):
                    p1 = min(positions, p0 + block)
                    if noisy:
                        _block_normals_transposed(noise, run, marks, state0, positions, p0, p1,
                                                  channels)
                    for p in range(p0, p1):
                        s = scales[p]
                        inv_p = np.float32(1.0) / s
                        at = np.uint64((p - p0) * channels)
                        hits = 0
                        for c in range(np.uint64(channels)):
                            xi = noise[at + c] if noisy else np.float32(0.0)
                            v, clipped = _adc_value(y[n, p, c], _ZERO, inv_p, xi, f_noise,
                                                    f_bound, inv_step, f_step, noisy, False,
                                                    quantize)
                            out[n, p, c] = v * s * col_scale[c]
                            inside[n, p, c] = 0 if clipped else 1
                            hits += clipped
                        count[p] = hits
            clipped_total = 0
            repeated = 0
            for p in range(positions):
                c_p = count[p]
                if c_p > 0 and max_iterations > 0:  # rare: bound management
                    c_p, k = _repeat_masked_vector(y[n], out[n], inside[n], p, scales[p],
                                                   col_scale, channel_axis, out_noise, bound,
                                                   step, max_iterations, seed, n)
                    repeated += k
                clipped_total += c_p
            counts[n, 0] = clipped_total
            counts[n, 1] = repeated

    options = dict(cache=True, error_model="numpy")  # no zero-division checks (scales > 0)
    return nb.njit(parallel=True, **options)(kernel), serial_twin(kernel, **options)


_MASKED_VARIANTS: dict[tuple[bool, bool], tuple] = {}


def adc_per_vector_masked(y: np.ndarray, out: np.ndarray, inside: np.ndarray,
                          vector_scale: np.ndarray, col_scale: np.ndarray, channel_axis: int,
                          out_noise: float, bound: float, step: float, max_iterations: int,
                          seed: np.uint64, counts: np.ndarray,
                          parallel: bool = True) -> None:
    """Training forward of ``kernels.adc_per_vector.adc_per_vector`` (no read noise, no
    accumulation) that also records where the final noisy value was inside the ADC range.

    ``out = Q_out(clip(y / (s m) + sigma_out xi, -b, b)) * s m * col_scale[c]`` per output
    position with its bound-management multiplier m = 2^k (k -> k + 1 while a value of the
    vector clips and k < ``max_iterations``); ``inside`` (uint8, same shape) is 1 where that
    value was not clipped. Repetition k of sample n draws xi from the table-normal stream
    ``block_state(seed, 128 n + 2 k)``, value (c, p) at counter ``c P + p``
    (``kernels/table_normals.py``, ``normal_at_counter``): the result depends on the seed and
    the logical index only. (The inference kernel ``adc_per_vector`` uses the same keys at
    counters ``p C + c``, so the two draw different normals of the same distribution.)
    Repetition 0's normals are drawn in vectorised runs (``fill_normals_run``, four per hashed
    word): per channel along the positions (NCHW), or in channels_last for a block of
    ``MASKED_BLOCK`` positions at a time, channel by channel, scattered into a buffer in the
    outputs' layout that stays in the L1 cache (one hash per draw by random access, read with
    a stride of P, made this kernel 2.3-3 times slower: benchmarks/README.md); the rare
    repetitions draw theirs by random access.

    Args:
        y: (N, C, P) (``channel_axis`` 1) or (N, P, C) float32 GEMM outputs in input units.
        out: same shape, float32 destination (not ``y``: a repetition reads ``y`` again).
        inside: same shape, uint8 destination.
        vector_scale: (N, P) float32 input scale of each vector (> 0).
        col_scale: (C,) float32 per-channel scale.
        out_noise: std of the output noise (ADC units); bound: ADC bound (>= 3e38: none);
        step: ADC step (<= 0: none); max_iterations: bound-management halvings (0: off).
        seed: stream seed.
        counts: (N, 2) int64, receives per sample the values still clipped and the number of
            repeated vectors.
        parallel: samples on Numba's threads (training runs the serial kernel: torch's pool
            spins between operators).
    """
    key = (bool(out_noise > 0.0), bool(step > 0.0))
    if key not in _MASKED_VARIANTS:
        _MASKED_VARIANTS[key] = _build_masked(*key)
    threaded, serial = _MASKED_VARIANTS[key]
    (threaded if parallel else serial)(y, out, inside, vector_scale, col_scale, channel_axis,
                                       out_noise, bound, step, max_iterations, seed, counts)


def adc_per_vector_masked_serial(*args) -> None:
    """:func:`adc_per_vector_masked` on the calling thread."""
    adc_per_vector_masked(*args, parallel=False)


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


adc_per_vector_backward_serial = serial_twin(adc_per_vector_backward, cache=True)
