"""Fused Numba kernels for a tile's periphery: the work before and after the GEMM.

Arrays are 3-D views ``(N, A, B)``: N input vectors (samples) and, per sample, the A x B values
of one tile's input or output (a matrix-vector product has A = 1; a convolution in NCHW layout
has A = channels, B = pixels; in channels_last layout A = pixels, B = channels). The GEMM itself
(BLAS / oneDNN) happens between the two kernels and is not in this file.

``dac_quantize``: per sample, the noise-management scale s (abs-max, constant or none), then
``x_q = Q_in(clip(x / s, -b_in, b_in))`` with ``Q(v) = rint(v / step) * step``.

``adc_accumulate``: per output value,
``q = Q_out(clip(y + sigma_out * xi + sqrt(var) * xi', -b_out, b_out))`` and
``out (+)= q * in_scale[n] * col_scale[channel]``; counts clipped values per sample. ``xi`` and
``xi'`` are table normals (see ``kernels/rng.py``); each sample ``n`` has its own streams
seeded from ``(seed, 2n)`` and ``(seed, 2n + 1)``, so the draws depend only on the seed and the
element index, never on the thread count.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .rng import block_state, splitmix64_next

NM_NONE = 0
NM_ABS_MAX = 1
NM_CONSTANT = 2


@nb.njit(parallel=True, cache=True)
def dac_quantize(x: np.ndarray, out: np.ndarray, scales: np.ndarray, mode: int,
                 constant: float, bound: float, step: float) -> bool:
    """DAC of a batch of input vectors, into ``out``; writes the scales used.

    Args:
        x: (N, A, B) float32 input (any strides).
        out: (N, A, B) float32 output buffer (may be ``x`` itself).
        scales: (N,) float32; on entry, multipliers for the scale (1 normally, 2^k during bound
            management); on exit, the full scale s of each sample (x ~ s * out).
        mode: NM_NONE, NM_ABS_MAX or NM_CONSTANT.
        constant: s for NM_CONSTANT.
        bound: input clip bound b_in (normalised units).
        step: quantisation step (<= 0: no quantisation).
    Returns:
        True when every input is finite (the caller raises on False: no silent NaN).
    """
    n_samples, size_a, size_b = x.shape
    f_bound = np.float32(bound)
    quantize = step > 0.0
    f_step = np.float32(step)
    inv_step = np.float32(1.0 / step) if quantize else np.float32(1.0)
    finite = np.ones(n_samples, np.bool_)
    for n in nb.prange(n_samples):
        s = np.float32(0.0)
        total = np.float32(0.0)
        for a in range(size_a):
            for b in range(size_b):
                v = x[n, a, b]
                total += v
                s = max(s, abs(v))
        finite[n] = np.isfinite(total) and np.isfinite(s)
        if mode == NM_ABS_MAX:
            if s == 0.0:
                s = np.float32(1.0)
        elif mode == NM_CONSTANT:
            s = np.float32(constant)
        else:
            s = np.float32(1.0)
        s = s * scales[n]
        scales[n] = s
        inv = np.float32(1.0) / s
        for a in range(size_a):
            for b in range(size_b):
                v = min(max(x[n, a, b] * inv, -f_bound), f_bound)
                if quantize:
                    v = np.float32(np.rint(v * inv_step)) * f_step
                out[n, a, b] = v
    return finite.all()


@nb.njit(parallel=True, cache=True)
def adc_accumulate(y: np.ndarray, var: np.ndarray, out: np.ndarray, in_scale: np.ndarray,
                   col_scale: np.ndarray, channel_axis: int, out_noise: float, use_var: bool,
                   bound: float, step: float, seed: np.uint64, table: np.ndarray,
                   accumulate: bool, hold_saturated: bool, saturated: np.ndarray) -> None:
    """Output noise, ADC and rescaling of a batch of tile outputs, fused in one pass.

    Args:
        y: (N, A, B) float32 raw outputs in normalised units; overwritten with the quantised
            values when ``hold_saturated and accumulate`` (scratch), else only read.
        var: (N, A, B) float32 per-output read-noise variance (used when ``use_var``), else any
            (1, 1, 1) array.
        out: (N, A, B) float32 destination (may be ``y``); receives ``q * in_scale * col_scale``.
        in_scale: (N,) float32 per-sample input scale (noise / bound management).
        col_scale: per-channel scale (length A if ``channel_axis == 1``, B if 2).
        out_noise: standard deviation of the additive output noise (normalised units).
        bound: ADC clip bound b_out (np.inf: no clipping).
        step: ADC step (<= 0: no quantisation).
        seed: stream seed for the noise draws.
        accumulate: add to ``out`` instead of overwriting it.
        hold_saturated: leave ``out[n]`` untouched for a sample with a clipped value (bound
            management will redo it).
        saturated: (N,) int64, receives the number of clipped values per sample.
    """
    n_samples, size_a, size_b = y.shape
    per_sample = size_a * size_b
    n_words = (per_sample + 3) // 4
    two_pass = hold_saturated and accumulate
    noisy, quantize, inv_step, f_step, f_bound, f_noise = adc_constants(out_noise, bound, step)
    for n in nb.prange(n_samples):
        count = 0
        sn = in_scale[n]
        noise = np.zeros(4 * n_words if noisy else 1, np.float32)
        noise2 = np.zeros(4 * n_words if use_var else 1, np.float32)
        if noisy:
            _fill_normals(noise, block_state(seed, 2 * n), f_noise, table, n_words)
        if use_var:
            _fill_normals(noise2, block_state(seed, 2 * n + 1), np.float32(1.0), table, n_words)
        row = np.empty(size_b, np.float32)
        for a in range(size_a):
            base = a * size_b
            for b in range(size_b):
                v = y[n, a, b]
                if noisy:
                    v += noise[base + b]
                if use_var:
                    v += np.sqrt(var[n, a, b]) * noise2[base + b]
                count += (v > f_bound) | (v < -f_bound)
                v = min(max(v, -f_bound), f_bound)
                if quantize:
                    v = np.float32(np.rint(v * inv_step)) * f_step
                row[b] = v
            if two_pass:
                for b in range(size_b):
                    y[n, a, b] = row[b]
            elif channel_axis == 1:
                factor = sn * col_scale[a]
                if accumulate:
                    for b in range(size_b):
                        out[n, a, b] += row[b] * factor
                else:
                    for b in range(size_b):
                        out[n, a, b] = row[b] * factor
            else:
                if accumulate:
                    for b in range(size_b):
                        out[n, a, b] += row[b] * sn * col_scale[b]
                else:
                    for b in range(size_b):
                        out[n, a, b] = row[b] * sn * col_scale[b]
        saturated[n] = count
        if two_pass and count == 0:
            for a in range(size_a):
                for b in range(size_b):
                    c = a if channel_axis == 1 else b
                    out[n, a, b] += y[n, a, b] * sn * col_scale[c]


@nb.njit(inline="always", cache=True)
def adc_constants(out_noise: float, bound: float, step: float):
    """float32 constants of the ADC: (noisy, quantize, 1 / step, step, bound, sigma_out);
    a bound of 3e38 or more (np.inf) means no clipping."""
    quantize = step > 0.0
    inv_step = np.float32(1.0 / step) if quantize else np.float32(1.0)
    f_bound = np.float32(bound) if bound < 3.0e38 else np.float32(3.0e38)
    return out_noise > 0.0, quantize, inv_step, np.float32(step), f_bound, np.float32(out_noise)


@nb.njit(inline="always")
def _fill_normals(buf, state, scale, table, n_words):
    for j in range(n_words):
        state, word = splitmix64_next(state)
        for q in range(4):
            buf[4 * j + q] = scale * table[np.int64((word >> np.uint64(16 * q)) & np.uint64(0xFFFF))]


#: Below this many elements the single-threaded variants are faster (no thread wake-up).
PARALLEL_MIN_ELEMENTS = 1 << 15
dac_quantize_serial = nb.njit(cache=True)(dac_quantize.py_func)
adc_accumulate_serial = nb.njit(cache=True)(adc_accumulate.py_func)


def dac(x: np.ndarray, *args) -> bool:
    """:func:`dac_quantize`, single-threaded for small batches; True if all inputs are finite."""
    kernel = dac_quantize if x.size >= PARALLEL_MIN_ELEMENTS else dac_quantize_serial
    return kernel(x, *args)


def adc(y: np.ndarray, *args) -> None:
    """:func:`adc_accumulate`, single-threaded for small batches."""
    kernel = adc_accumulate if y.size >= PARALLEL_MIN_ELEMENTS else adc_accumulate_serial
    kernel(y, *args)
