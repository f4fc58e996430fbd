"""A one-pass finiteness check of float32 arrays, on their bits.

A float32 without its sign bit, read as an unsigned integer, orders like the absolute value,
and it is 0x7F800000 (inf) or more (NaN) exactly when the value is not finite. So the array is
finite when the integer max of ``bits & 0x7FFFFFFF`` is below 0x7F800000: an integer
reduction, which vectorises (a float max or sum would need fast-math, under which NaN checks
are not reliable), with no temporary and no overflow.
"""
from __future__ import annotations

import numba as nb
import numpy as np

ABS_BITS = np.uint32(0x7FFFFFFF)
INF_BITS = np.uint32(0x7F800000)
#: Elements per parallel chunk; smaller arrays are checked on the calling thread.
CHUNK = 1 << 18


@nb.njit(cache=True)
def max_abs_bits(bits: np.ndarray) -> np.uint32:
    """max_i (bits[i] & 0x7FFFFFFF) of a 1-D uint32 array (0 when empty)."""
    worst = np.uint32(0)
    for i in range(bits.shape[0]):
        worst = max(worst, bits[i] & ABS_BITS)
    return worst


@nb.njit(parallel=True, cache=True)
def max_abs_bits_chunked(bits: np.ndarray) -> np.uint32:
    """:func:`max_abs_bits` over chunks of :data:`CHUNK` elements in parallel."""
    n_chunks = (bits.shape[0] + CHUNK - 1) // CHUNK
    worst = np.zeros(n_chunks, np.uint32)
    for k in nb.prange(n_chunks):
        worst[k] = max_abs_bits(bits[k * CHUNK:min((k + 1) * CHUNK, bits.shape[0])])
    return worst.max()


def all_finite_float32(values: np.ndarray) -> bool:
    """True when the float32 array ``values`` (any shape, any strides) holds no NaN or inf."""
    if values.dtype != np.float32:
        raise ValueError(f"a float32 array is needed, got {values.dtype}")
    bits = values.reshape(-1).view(np.uint32)
    kernel = max_abs_bits_chunked if bits.size >= 2 * CHUNK else max_abs_bits
    return bool(kernel(bits) < INF_BITS)
