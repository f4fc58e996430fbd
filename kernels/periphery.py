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
``xi'`` are table normals with exact tails (``kernels/table_normals.py``): sample ``n`` draws
them from the streams with keys ``block_state(seed, 2n)`` and ``block_state(seed, 2n + 1)``
(:func:`sample_normals`), value (channel a, position b) at counter ``a B + b`` of its logical
(channel, position) order, so the draws depend only on the seed and that index, never on the
thread count or the memory layout (NCHW and channels_last give identical outputs).

Per-vector kernels (convolutions, one input vector = one patch): ``channel_absmax`` gives the
abs-max over channels at each pixel; ``dac_per_pixel`` quantises each pixel relative to its
own scale; ``dac_per_patch`` computes the per-patch scales and the DAC in one pass; the ADC of
every output position's MVM is ``kernels/adc_per_vector.py``.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .bfloat16 import round_row
from .rng import block_state
from .table_normals import fill_normals_run, mark_scratch
from .twins import serial_twin

NM_NONE = 0
NM_ABS_MAX = 1
NM_CONSTANT = 2
#: Largest finite float32: |v| <= FLOAT32_MAX is False exactly for NaN and +-inf.
FLOAT32_MAX = np.float32(3.4028235e38)
#: The bits of a float32 without its sign, and those of +inf (larger bits: NaN).
_ABS_BITS = np.uint32(0x7FFFFFFF)
_INF_BITS = np.uint32(0x7F800000)


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
        ok = True
        for a in range(size_a):
            for b in range(size_b):
                v = abs(x[n, a, b])
                ok &= v <= FLOAT32_MAX  # False for NaN and inf; never overflows
                s = max(s, v)
        finite[n] = ok
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
                   bound: float, step: float, seed: np.uint64, accumulate: bool,
                   hold_saturated: bool, saturated: np.ndarray) -> None:
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
        seed: stream seed of the noise draws: sample n's xi are :func:`sample_normals`
            ``(seed, 2n)``, its xi' ``(seed, 2n + 1)``.
        accumulate: add to ``out`` instead of overwriting it.
        hold_saturated: leave ``out[n]`` untouched for a sample with a clipped value (bound
            management will redo it).
        saturated: (N,) int64, receives the number of clipped values per sample.
    """
    n_samples, size_a, size_b = y.shape
    per_sample = size_a * size_b
    two_pass = hold_saturated and accumulate
    noisy, quantize, inv_step, f_step, f_bound, f_noise = adc_constants(out_noise, bound, step)
    for n in nb.prange(n_samples):
        count = 0
        sn = in_scale[n]
        noise = sample_normals(seed, 2 * n, per_sample, noisy)
        noise2 = sample_normals(seed, 2 * n + 1, per_sample, use_var)
        row = np.empty(size_b, np.float32)
        for a in range(size_a):
            for b in range(size_b):
                # noise is indexed in logical (channel, position) order, whatever the layout
                e = a * size_b + b if channel_axis == 1 else b * size_a + a
                v = y[n, a, b]
                if noisy:
                    v += f_noise * noise[e]
                if use_var:
                    v += np.sqrt(var[n, a, b]) * noise2[e]
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
            else:  # same rounding as above: q * (s_n * c_k), whatever the layout
                if accumulate:
                    for b in range(size_b):
                        out[n, a, b] += row[b] * (sn * col_scale[b])
                else:
                    for b in range(size_b):
                        out[n, a, b] = row[b] * (sn * col_scale[b])
        saturated[n] = count
        if two_pass and count == 0:
            for a in range(size_a):
                for b in range(size_b):
                    c = a if channel_axis == 1 else b
                    out[n, a, b] += y[n, a, b] * (sn * col_scale[c])


@nb.njit(inline="always", cache=True)
def adc_constants(out_noise: float, bound: float, step: float):
    """float32 constants of the ADC: (noisy, quantize, 1 / step, step, bound, sigma_out);
    a bound of 3e38 or more (np.inf) means no clipping."""
    quantize = step > 0.0
    inv_step = np.float32(1.0 / step) if quantize else np.float32(1.0)
    f_bound = np.float32(bound) if bound < 3.0e38 else np.float32(3.0e38)
    return out_noise > 0.0, quantize, inv_step, np.float32(step), f_bound, np.float32(out_noise)


@nb.njit(inline="always", cache=True)
def sample_normals(seed: np.uint64, stream: int, size: int, draw: bool) -> np.ndarray:
    """Draws 0 .. ``size`` - 1 (float32 standard normals) of the table-normal stream with key
    ``block_state(seed, stream)``, in one vectorised run; a 1-element dummy when not
    ``draw``. The per-image ADC's noise of sample n: stream 2n (output noise) and 2n + 1
    (per-MVM read noise), indexed in logical (channel, position) order."""
    if not draw:
        return np.zeros(1, np.float32)
    noise = np.empty(size, np.float32)
    fill_normals_run(noise, mark_scratch(size), block_state(seed, np.int64(stream)),
                     np.uint64(0))
    return noise


#: Below this many elements the single-threaded variants are faster (no thread wake-up).
PARALLEL_MIN_ELEMENTS = 1 << 15
dac_quantize_serial = serial_twin(dac_quantize, cache=True)
adc_accumulate_serial = serial_twin(adc_accumulate, cache=True)


def dac(x: np.ndarray, *args) -> bool:
    """:func:`dac_quantize`, single-threaded for small batches; True if all inputs are finite."""
    kernel = dac_quantize if x.size >= PARALLEL_MIN_ELEMENTS else dac_quantize_serial
    return kernel(x, *args)


def adc(y: np.ndarray, *args) -> None:
    """:func:`adc_accumulate`, single-threaded for small batches."""
    kernel = adc_accumulate if y.size >= PARALLEL_MIN_ELEMENTS else adc_accumulate_serial
    kernel(y, *args)


@nb.njit(parallel=True, cache=True)
def channel_absmax(x: np.ndarray, channel_axis: int, out: np.ndarray) -> bool:
    """Per pixel, the abs-max over the channels of a tile's input.

    Args:
        x: (N, C, P) (``channel_axis == 1``) or (N, P, C) (``channel_axis == 2``) float32.
        out: (N, P) float32, receives ``max_c |x[n, c, p]|``.
    Returns:
        True when every input is finite (compared with the float32 maximum: no overflow).
    """
    n_samples, size_a, size_b = x.shape
    finite = np.ones(n_samples, np.bool_)
    for n in nb.prange(n_samples):
        ok = True
        if channel_axis == 1:
            for b in range(size_b):
                out[n, b] = np.float32(0.0)
            for a in range(size_a):
                for b in range(size_b):
                    v = abs(x[n, a, b])
                    ok &= v <= FLOAT32_MAX
                    out[n, b] = max(out[n, b], v)
        else:
            for a in range(size_a):
                s = np.float32(0.0)
                for b in range(size_b):
                    v = abs(x[n, a, b])
                    ok &= v <= FLOAT32_MAX
                    s = max(s, v)
                out[n, a] = s
        finite[n] = ok
    return finite.all()


@nb.njit(parallel=True, cache=True)
def dac_per_pixel(x: np.ndarray, out: np.ndarray, pixel_scale: np.ndarray, channel_axis: int,
                  bound: float, step: float) -> None:
    """DAC relative to a scale per pixel, back in input units:
    ``out = Q_in(clip(x / s[n, p], -b_in, b_in)) * s[n, p]``.

    Args:
        x: (N, C, P) or (N, P, C) float32 (see ``channel_axis``); may be ``out``.
        out: same shape, float32.
        pixel_scale: (N, P) float32, > 0.
        bound: input clip bound b_in; step: quantisation step (<= 0: none).
    """
    n_samples, size_a, size_b = x.shape
    f_bound = np.float32(bound)
    quantize = step > 0.0
    f_step = np.float32(step)
    inv_step = np.float32(1.0 / step) if quantize else np.float32(1.0)
    for n in nb.prange(n_samples):
        for a in range(size_a):
            for b in range(size_b):
                s = pixel_scale[n, b] if channel_axis == 1 else pixel_scale[n, a]
                v = min(max(x[n, a, b] * (np.float32(1.0) / s), -f_bound), f_bound)
                if quantize:
                    v = np.float32(np.rint(v * inv_step)) * f_step
                out[n, a, b] = v * s


channel_absmax_serial = serial_twin(channel_absmax, cache=True)
dac_per_pixel_serial = serial_twin(dac_per_pixel, cache=True)


def _pick(parallel, serial, size: int):
    return parallel if size >= PARALLEL_MIN_ELEMENTS else serial


def absmax_per_pixel(x: np.ndarray, channel_axis: int, out: np.ndarray) -> bool:
    """:func:`channel_absmax`, single-threaded for small batches."""
    return _pick(channel_absmax, channel_absmax_serial, x.size)(x, channel_axis, out)


def dac_pixels(x: np.ndarray, *args) -> None:
    """:func:`dac_per_pixel`, single-threaded for small batches."""
    _pick(dac_per_pixel, dac_per_pixel_serial, x.size)(x, *args)


@nb.njit(inline="always", cache=True)
def _first_valid(offset, stride, size, count):
    """The range [lo, hi) of outputs j < count with 0 <= j stride + offset < size."""
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride
    hi = (size - 1 - offset) // stride + 1 if size - 1 - offset >= 0 else 0
    return lo, max(lo, min(hi, count))


@nb.njit(inline="always", cache=True)
def _pool_max(m, height, width, out, out_h, out_w, k_h, k_w, s_h, s_w, d_h, d_w, top, left,
              rows):
    """out[i, j] = max of m (height x width, flattened) over the window with top-left tap
    (i s_h - top, j s_w - left), taps outside the image counting as 0: separable, a pass
    along rows into ``rows`` (height x out_w) and one along columns, each tap one loop over
    the outputs it reaches (no bounds test per tap). ``m``, ``out`` and ``rows`` hold the
    bits of non-negative float32 values as uint32, which order like the values: integer
    maxima vectorise. Indexes are uint64: a signed computed index costs a negative-index
    test per access, which also stops vectorisation."""
    zero = np.uint32(0)
    for i in range(height * out_w):
        rows[i] = zero
    for b in range(k_w):
        offset = b * d_w - left
        lo, hi = _first_valid(offset, s_w, width, out_w)
        for h in range(height):
            src = np.uint64(h * width + offset + lo * s_w)
            dst = np.uint64(h * out_w + lo)
            if s_w == 1:
                for j in range(np.uint64(hi - lo)):
                    rows[dst + j] = max(rows[dst + j], m[src + j])
            else:
                step = np.uint64(s_w)
                for j in range(np.uint64(hi - lo)):
                    rows[dst + j] = max(rows[dst + j], m[src + j * step])
    for i in range(out_h * out_w):
        out[i] = zero
    for a in range(k_h):
        offset = a * d_h - top
        lo, hi = _first_valid(offset, s_h, height, out_h)
        for i in range(lo, hi):
            src = np.uint64((i * s_h + offset) * out_w)
            dst = np.uint64(i * out_w)
            for j in range(np.uint64(out_w)):
                out[dst + j] = max(out[dst + j], rows[src + j])


def _build_dac_per_patch(quantize: bool, bfloat16: bool = False):
    """The (parallel, serial) :func:`dac_per_patch` kernels with ``quantize`` and
    ``bfloat16`` (write the outputs' bfloat16 bits, uint16) fixed at compile time: a run-time
    switch in the inner loops stops them vectorising."""

    def kernel(x, out, channel_axis, height, width, window, vector_scale, bound, step):
        n_samples, size_a, size_b = x.shape
        k_h, k_w, s_h, s_w, d_h, d_w = window[0], window[1], window[2], window[3], \
            window[4], window[5]
        pad_top, pad_left, c_top, c_left, h_out, w_out = window[6], window[7], window[8], \
            window[9], window[10], window[11]
        pixels = height * width
        channels = size_a if channel_axis == 1 else size_b
        f_bound = np.float32(bound)
        f_step = np.float32(step)
        inv_step = np.float32(1.0 / step) if quantize else np.float32(1.0)
        finite = np.ones(n_samples, np.bool_)
        bits = x.view(np.uint32)
        for n in nb.prange(n_samples):
            m_bits = np.zeros(pixels, np.uint32)
            if channel_axis == 1:
                for c in range(channels):
                    for p in range(pixels):
                        m_bits[p] = max(m_bits[p], bits[n, c, p] & _ABS_BITS)
            else:
                for p in range(pixels):
                    s_bits = np.uint32(0)
                    for c in range(channels):
                        s_bits = max(s_bits, bits[n, p, c] & _ABS_BITS)
                    m_bits[p] = s_bits
            worst = np.uint32(0)
            for p in range(pixels):
                worst = max(worst, m_bits[p])
            finite[n] = worst < _INF_BITS
            rows = np.empty(height * max(w_out, width), np.uint32)
            patch = np.empty(h_out * w_out, np.uint32)
            _pool_max(m_bits, height, width, patch, h_out, w_out, k_h, k_w, s_h, s_w, d_h,
                      d_w, pad_top, pad_left, rows)
            patch_scale = patch.view(np.float32)
            for q in range(h_out * w_out):
                vector_scale[n, q] = patch_scale[q] if patch[q] > 0 else np.float32(1.0)
            if s_h == 1 and s_w == 1 and h_out == height and w_out == width and \
                    pad_top == c_top and pad_left == c_left:
                centred_bits = patch  # stride 1, "same" zero padding: the same windows
            else:
                centred_bits = np.empty(pixels, np.uint32)
                _pool_max(m_bits, height, width, centred_bits, height, width, k_h, k_w, 1, 1,
                          d_h, d_w, c_top, c_left, rows)
            m = m_bits.view(np.float32)
            centred = centred_bits.view(np.float32)
            inv = np.empty(pixels, np.float32)
            scale = np.empty(pixels, np.float32)
            for p in range(pixels):
                s = max(m[p], centred[p])
                if s <= 0:
                    s = np.float32(1.0)
                scale[p] = s
                inv[p] = np.float32(1.0) / s
            if channel_axis == 1:
                line = np.empty(pixels if bfloat16 else 1, np.float32)
                for c in range(channels):
                    for p in range(pixels):
                        v = min(max(x[n, c, p] * inv[p], -f_bound), f_bound)
                        if quantize:
                            v = np.float32(np.rint(v * inv_step)) * f_step
                        if bfloat16:
                            line[p] = v * scale[p]
                        else:
                            out[n, c, p] = v * scale[p]
                    if bfloat16:
                        round_row(line, out[n, c])
            else:
                line = np.empty(channels if bfloat16 else 1, np.float32)
                for p in range(pixels):
                    sp, ip = scale[p], inv[p]
                    for c in range(channels):
                        v = min(max(x[n, p, c] * ip, -f_bound), f_bound)
                        if quantize:
                            v = np.float32(np.rint(v * inv_step)) * f_step
                        if bfloat16:
                            line[c] = v * sp
                        else:
                            out[n, p, c] = v * sp
                    if bfloat16:
                        round_row(line, out[n, p])
        return finite.all()

    options = dict(cache=True, error_model="numpy")  # no zero-division checks (scales > 0)
    return nb.njit(parallel=True, **options)(kernel), serial_twin(kernel, **options)


_DAC_VARIANTS: dict[tuple[bool, bool], tuple] = {}


def dac_per_patch(x: np.ndarray, out: np.ndarray, channel_axis: int, height: int, width: int,
                  window: np.ndarray, vector_scale: np.ndarray, bound: float, step: float,
                  parallel: bool = True) -> bool:
    """Per-patch abs-max scales and the DAC of a convolution's input, fused per sample.

    For every sample: ``m[h, w] = max_c |x|``; the scale of output position (i, j) is the max
    of m over its kernel window (``vector_scale``); each pixel is quantised relative to the max
    of m over the window centred on it (and its own m):
    ``out = Q_in(clip(x / s_pixel, -b_in, b_in)) * s_pixel``. Zero scales become 1.

    Args:
        x: (N, C, H W) or (N, H W, C) float32 (``channel_axis`` 1 or 2); may be ``out``.
        out: same shape, float32, or uint16 to receive the outputs rounded to bfloat16
            (their bits; nearest, ties to even: ``kernels/bfloat16.py``).
        height, width: H and W.
        window: int64 [k_h, k_w, stride_h, stride_w, dilation_h, dilation_w, pad_top,
            pad_left, centred_top, centred_left, H_out, W_out].
        vector_scale: (N, H_out W_out) float32, receives the patch scales.
        bound, step: the DAC's clip bound and step (<= 0: no quantisation).
        parallel: samples on Numba's threads.
    Returns:
        True when every input is finite (tested on the bits: the channel abs-max is an
        integer max of the bits without the sign, which orders like the floats and is
        0x7F800000 or more exactly for inf and NaN; integer reductions vectorise).
    """
    key = (step > 0.0, out.dtype == np.uint16)
    if key not in _DAC_VARIANTS:
        _DAC_VARIANTS[key] = _build_dac_per_patch(*key)
    threaded, serial = _DAC_VARIANTS[key]
    return (threaded if parallel else serial)(x, out, channel_axis, height, width, window,
                                              vector_scale, bound, step)


def dac_per_patch_serial(*args) -> bool:
    """:func:`dac_per_patch` on the calling thread."""
    return dac_per_patch(*args, parallel=False)


def dac_patches(x: np.ndarray, *args) -> bool:
    """:func:`dac_per_patch`, single-threaded for small batches."""
    return dac_per_patch(x, *args, parallel=x.size >= PARALLEL_MIN_ELEMENTS)
