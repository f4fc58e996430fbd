"""bfloat16 operands for the tiles' GEMMs: rounding float32 to bfloat16 and widening it back.

A bfloat16 is the upper 16 bits of a float32 (sign, the 8 exponent bits, 7 fraction bits: an
8-bit significand). Rounding a finite float32 of bits ``b`` to nearest, ties to even:
``h = (b + 0x7FFF + ((b >> 16) & 1)) >> 16`` (a value that rounds above the largest bfloat16
becomes inf, like any IEEE rounding; +-inf stays +-inf). Widening is exact:
``bits = h << 16``. The relative error of the rounding is at most 2^-8 = 0.39% (half a unit
in the 8th significant bit); ``AnalogConfig.gemm_precision`` documents where aimcsim uses it.

Numba has no scalar bit cast, so values pass through small scratch arrays and their
``view``: a view of a kernel's own array. (A ``view`` of an argument written inside a
``prange`` loop lost its writes under Numba 0.6x; these kernels never write through one.)
"""
from __future__ import annotations

import numba as nb
import numpy as np

_HALF_MINUS_ONE = np.uint32(0x7FFF)
_ONE = np.uint32(1)
_SIXTEEN = np.uint32(16)


@nb.njit(inline="always", cache=True)
def round_bits(bits: np.uint32) -> np.uint16:
    """The bfloat16 (its 16 bits) nearest to the finite float32 of bits ``bits``, ties to
    even."""
    return np.uint16((bits + _HALF_MINUS_ONE + ((bits >> _SIXTEEN) & _ONE)) >> _SIXTEEN)


@nb.njit(inline="always", cache=True)
def round_row(values: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = bfloat16(values[i])`` (bits) for the 1-D float32 scratch ``values`` (an
    array of the kernel's own: it is read through its uint32 view)."""
    bits = values.view(np.uint32)
    for i in range(values.shape[0]):
        out[i] = round_bits(bits[i])


@nb.njit(cache=True)
def widen(bits: np.ndarray) -> np.ndarray:
    """A new float32 array of the shape of the C-contiguous uint16 array ``bits`` holding
    the bfloat16 values it encodes (exact)."""
    wide = np.empty(bits.shape, np.uint32)
    flat_in = bits.reshape(-1)
    flat = wide.reshape(-1)
    for i in range(flat.shape[0]):
        flat[i] = np.uint32(flat_in[i]) << _SIXTEEN
    return wide.view(np.float32)


@nb.njit(parallel=True, cache=True)
def _round_all(bits: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = round_bits(bits[i])`` over 1-D arrays (bits: the float32 values' uint32
    view, made by the caller)."""
    for i in nb.prange(bits.shape[0]):
        out[i] = round_bits(bits[i])


def round_to_bfloat16(values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The bits (uint16, same shape) of ``values`` (float32, C-contiguous, finite) rounded to
    bfloat16, nearest with ties to even; into ``out`` when given."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    if out is None:
        out = np.empty(values.shape, np.uint16)
    if out.shape != values.shape or out.dtype != np.uint16 or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous uint16 array of the values' shape")
    _round_all(values.reshape(-1).view(np.uint32), out.reshape(-1))
    return out


def widen_bfloat16(bits: np.ndarray) -> np.ndarray:
    """The float32 values of the bfloat16 ``bits`` (uint16), exact."""
    return widen(np.ascontiguousarray(bits, dtype=np.uint16))
