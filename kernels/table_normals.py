"""Standard normals with exact tails from a counter-based hash: one table look-up per draw.

The kernels' only normal generator: device reads (``kernels/devices.py``), the per-image and
per-patch ADCs (``kernels/periphery.py``, ``kernels/adc_per_vector.py``) and the training
kernels (``kernels/training.py``) draw from it; stream keys come from ``kernels/rng.py``.

Counter words: the 64-bit word ``w_k = mix(key + (k + 1) * golden)`` of stream ``key``
(SplitMix64's output function of its (k + 1)-th state) holds four draws: draw ``i`` is made from
the 16-bit field ``k_i = (w_{i >> 2} >> 16 (i & 3)) & 0xFFFF``, uniform over the 65,536
equiprobable levels of the standard normal. A draw needs no other draw: any thread computes any
element in any order, so results depend only on the key and the element's index.

- Body, ``TAIL_LEVELS <= k < 65536 - TAIL_LEVELS``: ``x = Phi^-1((k + 1/2) / 65536)``, the
  median of level k (one look-up in a 256 KiB float32 table).
- Tails, the ``TAIL_LEVELS = 89`` outer levels on each side (probability 2 x 89 / 65536 =
  0.27%): x is drawn exactly from the normal beyond ``r = -Phi^-1(89 / 65536) = 2.998`` on the
  level's side, by Marsaglia's tail method (``a = -ln(u1) / r``, ``b = -ln(u2)`` until
  ``2 b > a^2``; ``x = +-(r + a)``), its uniforms from a SplitMix64 stream started at
  ``mix(w ^ (field + 1))``.

The distribution: exactly normal beyond +-r (so every tail probability from 3 sigma out, 5
sigma included, is exact); inside, the normal quantised to the 65,358 body level medians, so
the CDF is within 1 / 131072 = 7.6e-6 of Phi everywhere (half a level's probability), the mean
is 0 and the variance 1 - 2.6e-8. A chi-square over 200 equiprobable bins sees the
quantisation only with about 2^25 draws or more (non-centrality 34 at 2^24, i.e. a statistic
of about 233 for 199 degrees of freedom). The body's levels are at most 0.0035 sigma apart
(near 3 sigma; 4e-5 sigma near 0): for the default output noise of 0.06 ADC units that is
2e-4 units, 200 times finer than the 9-bit ADC step of 0.047 the noisy value is rounded to. Measured against the exact reference in
``tests/test_table_normals.py``.

Speed (2-core development machine, quiet, one thread, runs of 4096): 0.81 ns per draw against
1.46 ns for the exact Ziggurat normals (Marsaglia & Tsang, 2048 layers, two draws per word)
these replaced in the per-patch ADC: the look-ups take 0.60 ns, finding the tail marks 0.06
and redrawing them 0.15. The tail levels hold a mark (+-1e30) in the table, so the look-up
loop has no branch and vectorises; a vectorised compare of the bits without their signs
writes one byte per draw, which is read 8 bytes at a time, each set byte found by the index of
its lowest bit (a branch per byte cost 0.08 ns per draw more).
"""
from __future__ import annotations

import numba as nb
import numpy as np
from scipy.special import ndtri

from .rng import counter_word, mix64, splitmix64_next

#: Equiprobable levels (one 16-bit field per draw).
LEVELS = 1 << 16
#: Outer levels on each side drawn from the exact tail (r just below 3 sigma).
TAIL_LEVELS = 89
#: Where the exact tails start, r = -Phi^-1(TAIL_LEVELS / LEVELS) (2.998).
TAIL_EDGE = float(-ndtri(TAIL_LEVELS / LEVELS))
#: The mark a tail level's look-up gives (with the level's sign); never returned.
TAIL_MARK = np.float32(1e30)
_MARK_BITS = np.uint32(np.array(TAIL_MARK, np.float32).view(np.uint32))
_ABS_BITS = np.uint32(0x7FFFFFFF)


def _table() -> np.ndarray:
    """Level medians Phi^-1((k + 1/2) / 65536), the tail levels replaced by -+TAIL_MARK."""
    table = ndtri((np.arange(LEVELS, dtype=np.float64) + 0.5) / LEVELS).astype(np.float32)
    table[:TAIL_LEVELS] = -TAIL_MARK
    table[LEVELS - TAIL_LEVELS:] = TAIL_MARK
    return table


#: The look-up table (float32, 65,536 entries, 256 KiB).
TABLE = _table()

_FIELD = np.uint64(0xFFFF)
_R = TAIL_EDGE
_INV_R = 1.0 / TAIL_EDGE


@nb.njit(inline="always", cache=True)
def _uniform_open0(state: np.uint64) -> tuple[np.uint64, float]:
    """Next state and a uniform in (0, 1] (53 bits) of a SplitMix64 stream."""
    state, z = splitmix64_next(state)
    return state, (np.float64(z >> np.uint64(11)) + 1.0) * (1.0 / 9007199254740992.0)


@nb.njit(cache=True)
def tail_draw(positive: bool, state: np.uint64) -> np.float32:
    """An exact normal draw beyond r (``positive``) or below -r, Marsaglia's tail method
    with the uniforms of the SplitMix64 stream started at ``state``."""
    while True:
        state, u1 = _uniform_open0(state)
        state, u2 = _uniform_open0(state)
        a = -np.log(u1) * _INV_R
        b = -np.log(u2)
        if b + b > a * a:
            return np.float32(_R + a) if positive else np.float32(-(_R + a))


@nb.njit(inline="always", cache=True)
def normal_at_counter(key: np.uint64, index: np.uint64) -> np.float32:
    """Draw ``index`` (uint64) of stream ``key`` (random access; never a mark)."""
    field = index & np.uint64(3)
    word = counter_word(key, index >> np.uint64(2))
    level = (word >> (np.uint64(16) * field)) & _FIELD
    x = TABLE[level]
    if abs(x) < TAIL_MARK:
        return x
    return tail_draw(x > 0, mix64(word ^ (field + np.uint64(1))))


#: De Bruijn sequence B(2, 6) and the bit index of each of its 6-bit windows: the lowest set
#: bit v of a word is at _DEBRUIJN_INDEX[(v * _DEBRUIJN) >> 58] (Leiserson, Prokop & Randall).
_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN_INDEX = np.zeros(64, np.int64)
for _i in range(64):
    _DEBRUIJN_INDEX[((1 << _i) * 0x03F79D71B4CB0A89 & 0xFFFFFFFFFFFFFFFF) >> 58] = _i


@nb.njit(inline="always", cache=True)
def _lowest_bit(word: np.uint64) -> np.int64:
    """The index of the lowest set bit of a non-zero uint64."""
    low = word & (~word + np.uint64(1))
    return _DEBRUIJN_INDEX[(low * _DEBRUIJN) >> np.uint64(58)]


@nb.njit(cache=True)
def fill_normals_run(out: np.ndarray, marks: np.ndarray, key: np.uint64,
                     first: np.uint64) -> None:
    """``out[b] = normal(key, first + b)`` for the whole contiguous 1-D float32 ``out``;
    ``marks`` is uint8 scratch of at least ``out.size`` draws (:func:`mark_scratch`).

    The look-ups run over whole words (four draws each, branch-free: the loop vectorises); a
    run that starts or ends inside a word draws those elements alone. Then integer maxima over
    the bits of 16 draws at a time find the tail marks (0.27% of draws: about 11 in a run of
    4096), and the marked elements are redrawn through :func:`normal_at_counter`."""
    size = out.shape[0]
    if size == 0:
        return
    head = min(size, np.int64((np.uint64(4) - (first & np.uint64(3))) & np.uint64(3)))
    for b in range(head):
        out[b] = normal_at_counter(key, first + np.uint64(b))
    words = (size - head) >> 2
    word0 = (first + np.uint64(head)) >> np.uint64(2)
    offset = np.uint64(head)  # unsigned indexes: no negative-index tests
    for j in range(np.uint64(words)):
        word = counter_word(key, word0 + j)
        base = offset + np.uint64(4) * j
        for q in range(np.uint64(4)):
            out[base + q] = TABLE[(word >> (np.uint64(16) * q)) & _FIELD]
    for b in range(head + 4 * words, size):
        out[b] = normal_at_counter(key, first + np.uint64(b))
    # the tail marks (about 11 in a run of 4096): one byte per draw from a vectorised compare
    # of the bits without their signs, read 8 bytes at a time, each set byte found by the
    # index of its lowest bit (branches on the bytes themselves cost as much as the look-ups)
    bits = out.view(np.uint32)
    for b in range(np.uint64(size)):
        marks[b] = (bits[b] & _ABS_BITS) >= _MARK_BITS
    eights = marks[:size & ~7].view(np.uint64)
    for w in range(eights.shape[0]):
        word = eights[w]
        while word != 0:
            b = 8 * w + (_lowest_bit(word) >> 3)
            out[b] = normal_at_counter(key, first + np.uint64(b))
            word &= word - np.uint64(1)
    for b in range(size & ~7, size):
        if marks[b]:
            out[b] = normal_at_counter(key, first + np.uint64(b))


@nb.njit(inline="always", cache=True)
def mark_scratch(size: int) -> np.ndarray:
    """Scratch for :func:`fill_normals_run` runs of up to ``size`` draws."""
    return np.zeros(8 * ((size + 7) // 8), np.uint8)


#: Elements per thread chunk of a parallel fill (:func:`fill_normals`, the device reads of
#: ``kernels/devices.py``); the values do not depend on it.
CHUNK = 4096


@nb.njit(inline="always", cache=True)
def chunk_count(size: int) -> int:
    """The number of chunks of ``CHUNK`` elements (the last one shorter) in ``size``."""
    return (size + CHUNK - 1) // CHUNK


@nb.njit(inline="always", cache=True)
def fill_chunk(buffer: np.ndarray, marks: np.ndarray, key: np.uint64, first: np.uint64,
               chunk: int, size: int) -> tuple[int, int]:
    """Chunk ``chunk`` of a parallel fill of ``size`` draws: ``buffer[j] = normal(key, first +
    start + j)`` for the chunk's elements ``start <= start + j < stop``; returns (start, stop).

    ``buffer`` is contiguous float32 of at least ``stop - start`` elements (the chunk's slice
    of the output, or a thread's scratch of ``CHUNK``), ``marks`` is
    ``mark_scratch(CHUNK)``. Draw i of the fill is draw ``first + i`` of the stream whichever
    thread makes it: the values depend only on the key and the element index."""
    start = chunk * CHUNK
    stop = min(start + CHUNK, size)
    fill_normals_run(buffer[:stop - start], marks, key, first + np.uint64(start))
    return start, stop


@nb.njit(parallel=True, cache=True)
def fill_normals(out: np.ndarray, key: np.uint64, first: np.uint64) -> None:
    """``out[i] = normal(key, first + i)`` for the 1-D float32 array ``out`` (parallel)."""
    size = out.shape[0]
    for chunk in nb.prange(chunk_count(size)):
        fill_chunk(out[chunk * CHUNK:], mark_scratch(CHUNK), key, first, chunk, size)


def table_normal(n: int, key: int, first: int = 0) -> np.ndarray:
    """``n`` float32 draws ``first .. first + n - 1`` of stream ``key`` (module docstring)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if first < 0:
        raise ValueError(f"first must be >= 0, got {first}")
    out = np.empty(n, dtype=np.float32)
    fill_normals(out, np.uint64(key & 0xFFFFFFFFFFFFFFFF), np.uint64(first))
    return out
