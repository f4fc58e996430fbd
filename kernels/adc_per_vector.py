"""The ADC of a convolution with one input vector per output position (per patch), fused.

Each output position p of sample n is one input vector (a patch) with its own input scale
``s = vector_scale[n, p]``; ``y`` holds the GEMM outputs in input units, so the ADC sees
``u = y / (s m) + sigma_out xi + sqrt(var) / (s m) xi'`` with the bound-management multiplier
``m = 2^k``: while a value of the vector clips and k < ``max_iterations``, k -> k + 1 with fresh
noise. Then ``out (+)= Q_out(clip(u, -b_out, b_out)) * s m * col_scale[channel]``.

Noise: the output noise and, with per-MVM read noise, the read noise of a value are
independent normals, so their sum is one normal of standard deviation
``std = sqrt(sigma_out^2 + var / (s m)^2)``, drawn as ``std * xi`` (exactly the same
distribution, one draw and one square root instead of two of each). Repetition k of sample n draws xi from the stream
with key ``block_state(seed, 128 n + 2 k)``; value (c, p) is the table normal with exact tails
of counter ``p C + c`` (``kernels/table_normals.py``), so the result depends only on the seed and the logical
index, never on the memory layout or the thread count. A sample's normals are drawn first, in
one vectorised pass over the counters (in channels_last layout they run along the memory).

Speed (all measured; each of these made the loop several times slower): the switches (output
noise on, per-MVM read noise on, ADC quantising) are compile-time constants of one kernel
variant each (:func:`adc_variant`), since a run-time switch in a loop body stops it
vectorising; the loop over vectors calls nothing that takes an array (even an inlined call
costs atomic reference-count updates per vector) and indexes the noise with unsigned integers
(a signed computed index costs a negative-index test per access); the rare bound-management
repetition is a call after that loop. The serial and the parallel kernel are compiled under
different names (``kernels/twins.py``).
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .bfloat16 import widen
from .periphery import FLOAT32_MAX, PARALLEL_MIN_ELEMENTS, adc_constants
from .rng import block_state
from .twins import serial_twin
from .table_normals import fill_normals_run, mark_scratch


#: Normals drawn per block of positions (then consumed while still in the L1 cache).
BLOCK_VALUES = 4096


@nb.njit(inline="always", cache=True)
def _stream_key(seed, n, k):
    """The key of the noise stream of repetition k of sample n."""
    return block_state(seed, np.int64(128 * n + 2 * k))


@nb.njit(inline="always", cache=True)
def _adc_value(y, var, inv, x, f_noise, f_bound, inv_step, f_step, noisy, use_var, quantize):
    """(Q(clip(u)), clipped) of ``u = y inv + std x`` for one value (scalars only): ``std`` is
    sigma_out, or with per-MVM read noise ``sqrt(sigma_out^2 + var inv^2)``."""
    v = y * inv
    if use_var:
        v += np.sqrt(f_noise * f_noise + var * (inv * inv)) * x
    elif noisy:
        v += f_noise * x
    clipped = (v > f_bound) | (v < -f_bound)
    v = min(max(v, -f_bound), f_bound)
    if quantize:
        v = np.float32(np.rint(v * inv_step)) * f_step
    return v, clipped


@nb.njit(inline="always", cache=True)
def _convert_vector(y, var, p, noise, offset, row, scale, col_scale, f_noise, inv_step, f_step,
                    f_bound, noisy, use_var, quantize):
    """Vector p (row p of the (P, C) arrays ``y`` and ``var``) into ``row``
    (``Q(clip(u)) * scale * col_scale``), its normals read from ``noise[offset:]``; returns
    the number of clipped values. (Bound management only: the hot loop of
    :func:`_vectors_in_rows` is this loop written out.)"""
    inv = np.float32(1.0) / scale
    count = 0
    for c in range(row.shape[0]):
        v, clipped = _adc_value(y[p, c], var[p, c] if use_var else np.float32(0.0), inv,
                                noise[offset + c], f_noise, f_bound, inv_step, f_step, noisy,
                                use_var, quantize)
        count += clipped
        row[c] = v * scale * col_scale[c]
    return count


@nb.njit(cache=True)
def _repeat_row_vector(y, var, p, row, row_noise, marks, s, col_scale, out_noise, use_var,
                       bound, step, max_iterations, seed, n):
    """Bound management of vector p of a channels_last sample (it clipped): repetition
    k = 1, 2, ... with input scale s 2^k and the noise of stream k, until nothing clips or
    k = ``max_iterations``. Fills ``row``; returns (values still clipped, k)."""
    noisy, quantize, inv_step, f_step, f_bound, f_noise = adc_constants(out_noise, bound, step)
    base = np.uint64(p * row.shape[0])
    count = 1
    k = 0
    while count > 0 and k < max_iterations:
        k += 1
        if noisy or use_var:
            fill_normals_run(row_noise, marks, _stream_key(seed, n, k), base)
        count = _convert_vector(y, var, p, row_noise, 0, row, s * np.float32(1 << k),
                                col_scale, f_noise, inv_step, f_step, f_bound, noisy, use_var,
                                quantize)
    return count, k


@nb.njit(inline="always", cache=True)
def _store_row(out, p, row, channels, accumulate):
    """Write (or add, with ``accumulate``) the converted ``row`` into output position ``p``."""
    if accumulate:
        for c in range(channels):
            out[p, c] += row[c]
    else:
        for c in range(channels):
            out[p, c] = row[c]


@nb.njit(cache=True)
def _not_finite(a, p, channels):
    """How many of ``a[p, :channels]`` are inf or NaN (``abs(v) <= FLOAT32_MAX`` is False
    exactly for those)."""
    bad = 0
    for c in range(channels):
        bad += not (abs(a[p, c]) <= FLOAT32_MAX)
    return bad


@nb.njit(inline="always", cache=True)
def _vectors_in_rows(y, var, out, scale, col_scale, out_noise, bound, step, max_iterations, seed,
                     n, accumulate, safe_scale, noisy, use_var, quantize):
    """One sample in channels_last layout: ``y`` is (P, C), every row one vector. The
    normals of a block of positions (about ``BLOCK_VALUES``; counters ``p C + c`` run along
    the memory) are drawn in one vectorised pass, then the loop over those vectors reads them
    while they are in the L1 cache (drawing a whole sample's first was 10-15% slower, drawing
    them inside the loop over vectors 10-20% slower). Returns (clipped values, repeated
    vectors).

    On its common path the loop over vectors calls only a function of scalars
    (:func:`_adc_value`; a call that takes an array costs atomic reference-count updates per
    vector, even an inlined one, so those are in its rare branches) and indexes with unsigned
    integers (a signed computed index costs a negative-index test): each of those made it
    several times slower. Clipping is found by an OR over the vector; the clipped values are
    counted only when it fires (a count over every vector cost 3 ns per vector).

    Third return value: the values found not finite, checked only in the vectors whose scale
    exceeds ``safe_scale`` (below it every value is finite by construction; see
    :func:`adc_per_vector`): the GEMM output and variance before the clip (an inf there would
    become the bound) and the written output after the rescale."""
    positions, channels = y.shape
    _, _, inv_step, f_step, f_bound, f_noise = adc_constants(out_noise, bound, step)
    draw = noisy or use_var
    block = max(1, BLOCK_VALUES // channels)  # positions whose normals are drawn together
    size = block * channels
    noise = np.empty(size if draw else 1, np.float32)
    marks = mark_scratch(size if draw else 1)
    key = _stream_key(seed, n, 0)
    row = np.empty(channels, np.float32)
    pending = np.empty(positions, np.int64)
    n_pending = 0
    clipped_total = 0
    bad = 0
    for p0 in range(0, positions, block):
        p1 = min(positions, p0 + block)
        if draw:
            fill_normals_run(noise[:(p1 - p0) * channels], marks, key, np.uint64(p0 * channels))
        for p in range(p0, p1):
            s = scale[p]
            inv = np.float32(1.0) / s
            offset = np.uint64((p - p0) * channels)
            hit = False
            for c in range(np.uint64(channels)):
                v, clipped = _adc_value(y[p, c], var[p, c] if use_var else np.float32(0.0), inv,
                                        noise[offset + c] if draw else np.float32(0.0),
                                        f_noise, f_bound, inv_step, f_step, noisy, use_var,
                                        quantize)
                hit |= clipped
                row[c] = v * s * col_scale[c]
            count = 0
            if hit:  # rare: count the clipped values
                for c in range(np.uint64(channels)):
                    count += _adc_value(y[p, c], var[p, c] if use_var else np.float32(0.0),
                                        inv, noise[offset + c] if draw else np.float32(0.0),
                                        f_noise, f_bound, inv_step, f_step, noisy, use_var,
                                        quantize)[1]
            if s > safe_scale:  # rare: check this vector's values one by one (before a store
                bad += _not_finite(y, p, channels)  # in place overwrites y)
                if use_var:
                    bad += _not_finite(var, p, channels)
            if count > 0 and max_iterations > 0:  # bound management after this loop
                pending[n_pending] = p
                n_pending += 1
                continue
            clipped_total += count
            _store_row(out, p, row, channels, accumulate)
            if s > safe_scale:
                bad += _not_finite(out, p, channels)
    repeated = 0
    if n_pending > 0:
        row_noise = np.zeros(channels, np.float32)
        for i in range(n_pending):
            p = pending[i]
            count, k = _repeat_row_vector(y, var, p, row, row_noise, marks, scale[p],
                                          col_scale, out_noise, use_var, bound, step,
                                          max_iterations, seed, n)
            repeated += k
            clipped_total += count
            _store_row(out, p, row, channels, accumulate)
            if scale[p] > safe_scale:
                bad += _not_finite(out, p, channels)
    return clipped_total, repeated, bad


@nb.njit(inline="always", cache=True)
def _vectors_in_columns(y, var, out, scale, col_scale, out_noise, bound, step, max_iterations,
                        seed, n, accumulate, safe_scale, noisy, use_var, quantize):
    """One sample in NCHW layout: ``y`` is (C, P), every column one vector. The sample's
    normals are drawn first in one pass (counters ``p C + c``), then each row is converted
    (ADC values into scratch, clip counts per column); bound management redoes the clipped
    columns; a last pass rescales. Non-finite values are counted as in
    :func:`_vectors_in_rows`, in the whole sample when any of its scales exceeds
    ``safe_scale``."""
    channels, positions = y.shape
    _, _, inv_step, f_step, f_bound, f_noise = adc_constants(out_noise, bound, step)
    draw = noisy or use_var
    f_noise2 = f_noise * f_noise
    size = positions * channels
    q = np.empty((channels, positions), np.float32)
    count = np.zeros(positions, np.int64)
    inv = np.empty(positions, np.float32)
    final_scale = np.empty(positions, np.float32)
    for p in range(positions):
        inv[p] = np.float32(1.0) / scale[p]
        final_scale[p] = scale[p]
    noise = np.empty(size if draw else 1, np.float32)
    marks = mark_scratch(size if draw else 1)
    if draw:
        fill_normals_run(noise, marks, _stream_key(seed, n, 0), np.uint64(0))
    stride = np.uint64(channels)
    unsafe = False
    for p in range(positions):
        unsafe |= scale[p] > safe_scale
    bad = 0
    if unsafe:  # rare: check the GEMM outputs (and variances) before the clip
        for c in range(channels):
            bad += _not_finite(y, c, positions)
            if use_var:
                bad += _not_finite(var, c, positions)
    for c in range(channels):
        for p in range(positions):
            v = y[c, p] * inv[p]
            if use_var:
                v += np.sqrt(f_noise2 + var[c, p] * (inv[p] * inv[p])) * \
                    noise[np.uint64(p) * stride + c]
            elif noisy:
                v += f_noise * noise[np.uint64(p) * stride + c]
            count[p] += (v > f_bound) | (v < -f_bound)
            v = min(max(v, -f_bound), f_bound)
            if quantize:
                v = np.float32(np.rint(v * inv_step)) * f_step
            q[c, p] = v
    repeated = 0
    row_noise = np.zeros(channels if draw else 1, np.float32)
    for p in range(positions):
        k = 0
        while count[p] > 0 and k < max_iterations:  # bound management: halve and redo
            k += 1
            repeated += 1
            s = scale[p] * np.float32(1 << k)
            inv_k = np.float32(1.0) / s
            if draw:
                fill_normals_run(row_noise, marks, _stream_key(seed, n, k),
                                 np.uint64(p * channels))
            n_clipped = 0
            for c in range(channels):
                x = row_noise[c] if draw else np.float32(0.0)
                v, clipped = _adc_value(y[c, p], var[c, p] if use_var else np.float32(0.0),
                                        inv_k, x, f_noise, f_bound, inv_step, f_step, noisy,
                                        use_var, quantize)
                n_clipped += clipped
                q[c, p] = v
            count[p] = n_clipped
            final_scale[p] = s
    for c in range(channels):
        cs = col_scale[c]
        if accumulate:
            for p in range(positions):
                out[c, p] += q[c, p] * final_scale[p] * cs
        else:
            for p in range(positions):
                out[c, p] = q[c, p] * final_scale[p] * cs
        if unsafe:
            bad += _not_finite(out, c, positions)
    return count.sum(), repeated, bad


def _build_variant(noisy: bool, use_var: bool, quantize: bool, bfloat16: bool = False):
    """The (parallel, serial) kernels with the switches fixed at compile time; ``bfloat16``:
    ``y`` holds bfloat16 bits (uint16), widened one sample at a time (exact)."""

    def kernel(y, var, out, vector_scale, col_scale, channel_axis, out_noise, bound, step,
               max_iterations, seed, accumulate, safe_scale, counts):
        for n in nb.prange(y.shape[0]):
            var_n = var[n] if use_var else var[0]
            if bfloat16:
                y_n = widen(y[n])
            else:
                y_n = y[n]
            if channel_axis == 2:
                clipped, repeated, bad = _vectors_in_rows(
                    y_n, var_n, out[n], vector_scale[n], col_scale, out_noise, bound, step,
                    max_iterations, seed, n, accumulate, safe_scale, noisy, use_var, quantize)
            else:
                clipped, repeated, bad = _vectors_in_columns(
                    y_n, var_n, out[n], vector_scale[n], col_scale, out_noise, bound, step,
                    max_iterations, seed, n, accumulate, safe_scale, noisy, use_var, quantize)
            counts[n, 0] = clipped
            counts[n, 1] = repeated
            counts[n, 2] = bad

    options = dict(cache=True, error_model="numpy")  # no zero-division checks (scales > 0)
    return nb.njit(parallel=True, **options)(kernel), serial_twin(kernel, **options)


_VARIANTS: dict[tuple[bool, bool, bool, bool], tuple] = {}


def adc_variant(noisy: bool, use_var: bool, quantize: bool, bfloat16: bool = False) -> tuple:
    """The (parallel, serial) kernel pair of one switch setting (compiled on first use)."""
    key = (bool(noisy), bool(use_var), bool(quantize), bool(bfloat16))
    if key not in _VARIANTS:
        _VARIANTS[key] = _build_variant(*key)
    return _VARIANTS[key]


def adc_per_vector(y: np.ndarray, var: np.ndarray, out: np.ndarray, vector_scale: np.ndarray,
                   col_scale: np.ndarray, channel_axis: int, out_noise: float, use_var: bool,
                   bound: float, step: float, max_iterations: int, seed: np.uint64,
                   accumulate: bool, counts: np.ndarray, parallel: bool | None = None,
                   safe_scale: float = 0.0) -> None:
    """Output noise, ADC and bound management of every output position's MVM, then rescale
    (see the module docstring).

    Args:
        y: (N, C, P) (``channel_axis == 1``) or (N, P, C) float32 GEMM outputs; ``out`` may be
            ``y`` (each vector is read completely before it is written). Or uint16: the
            outputs' bfloat16 bits (C-contiguous; ``out`` then a float32 array of its own).
        var: same shape, read-noise variance in input units squared (``use_var``), else any
            (1, 1, 1) array.
        out: destination, same shape.
        vector_scale: (N, P) float32 input scale of each vector (> 0).
        col_scale: (C,) float32 per-channel scale (weight scale x drift compensation).
        out_noise: std of the output noise (ADC units); bound: ADC bound (>= 3e38: none);
        step: ADC step (<= 0: none); max_iterations: bound-management halvings (0: off).
        seed: stream seed (see the module docstring).
        accumulate: add to ``out``.
        counts: (N, 3) int64, receives per sample the values still clipped after bound
            management, the number of repeated vectors and a count of values found not finite
            (see ``safe_scale``; a value can count at more than one check).
        parallel: run samples on Numba's threads; None: when ``y`` has at least
            ``PARALLEL_MIN_ELEMENTS`` values.
        safe_scale: an input scale up to which the caller guarantees that every GEMM output,
            variance and written value of a vector is finite
            (:func:`aimcsim.tiles.engine.safe_vector_scale`). A vector with a larger scale has
            its GEMM outputs and variances checked before the clip (an inf there would become
            the bound) and its written values after the rescale, one by one, and the values
            found not finite are counted. 0 checks every vector. (A check of every value in the
            loop cost 0.5 ns per value, more than a second read of the output.)
    """
    threaded, serial = adc_variant(out_noise > 0.0, use_var, step > 0.0, y.dtype == np.uint16)
    if parallel is None:
        parallel = y.size >= PARALLEL_MIN_ELEMENTS
    (threaded if parallel else serial)(y, var, out, vector_scale, col_scale, channel_axis,
                                       out_noise, bound, step, max_iterations, seed, accumulate,
                                       np.float32(min(safe_scale, 3e38)), counts)
