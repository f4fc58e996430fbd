"""Exact standard normals from a counter-based hash, cheap enough to draw inline in a kernel.

Counter words: the 64-bit word ``w_k = mix(key + (k + 1) * golden)`` of stream ``key``
(SplitMix64's output function of its (k + 1)-th state) gives two draws: draw ``i`` is made from
the 32-bit half ``u = (w_{i >> 1} >> 32 (i & 1)) mod 2^32`` (even draws the low half, odd draws
the high half). A draw needs no other draw: any thread computes any element in any order, so
results depend only on the key and the element's index.

Ziggurat (Marsaglia & Tsang, J. Stat. Softw. 5(8), 2000) with N = 2048 layers: the region
under ``f(x) = exp(-x^2 / 2)``, x >= 0, is covered by a base strip (the box [0, r] x [0, f(r)]
plus the tail x > r) and N - 1 boxes ``[0, e_i] x [f(e_i), f(e_{i+1})]``, all of the same area
``v = r f(r) + sqrt(pi / 2) erfc(r / sqrt 2)``. Edges: ``e_0 = v / f(r)`` (the base strip as one
box of width e_0), ``e_1 = r``, ``e_{i+1} = f^-1(f(e_i) + v / e_i)``, ``e_N = 0``; r = 4.2164
closes the recursion (solved here by bisection; for N = 256 it gives Marsaglia & Tsang's
3.6541528853610088). A 32-bit half u gives the layer i (its low 11 bits) and a signed 21-bit
j (its high 21 bits, ``j = int32(u) >> 11``), ``x = (j / 2^20) e_i``:

- fast path (99.77% of draws; 98.5% with 256 layers, which made the slow path the main cost):
  ``|x| < e_{i+1}``, the point lies under f: return x. In integers:
  ``|j| < K_i = floor(2^20 e_{i+1} / e_i)``; the value is ``float32(j) * float32(e_i / 2^20)``.
- otherwise (:func:`ziggurat_slow`, float64): layer 0 draws from the tail beyond r by
  Marsaglia's method (``a = -ln(u1) / r``, ``b = -ln(u2)`` until ``2 b > a^2``; return
  ``sign(j) (r + a)``); a layer i >= 1 accepts x when ``f(e_i) + u (f(e_{i+1}) - f(e_i)) < f(x)``
  for a fresh uniform u; a rejected draw starts again from the high half of the next word.
  The further words and uniforms come from a SplitMix64 stream started at state
  ``mix(w ^ (h + 1))`` (h the half), so the two draws of a word have separate slow paths.

The result is an exact standard normal up to the 2^-20 resolution of j / 2^20 (a lattice of
spacing e_i 2^-20 <= 4.3e-6 sigma) and float32 rounding; the tails are exact (no cut-off).
Two draws per word halve the hashing, the main cost with the two table look-ups (measured:
2.1M draws 1.9x faster than one draw per word). Kernels vectorise the fast path over a run of
elements (:func:`fill_normals_run`), then redo the few rejected elements with the slow path;
:func:`normal_at_counter` does both for one element. Tested for moments, a Kolmogorov-Smirnov
test, a chi-square, tail probabilities to 5 sigma and the independence of the two halves of a
word in ``tests/test_ziggurat.py``.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np
from scipy.special import erfc

from .rng import _GOLDEN, splitmix64_next

#: Number of layers (a power of 2: the low bits of a word pick the layer).
LAYERS = 2048


def _density(x):
    return np.exp(-0.5 * np.asarray(x, dtype=np.float64) ** 2)


def _layer_area(r: float) -> float:
    """Area v of every layer for base edge r (box r f(r) plus the tail beyond r)."""
    return r * math.exp(-0.5 * r * r) + math.sqrt(math.pi / 2) * float(erfc(r / math.sqrt(2)))


def layer_edges(r: float, layers: int) -> tuple[np.ndarray, bool]:
    """Edges e_0 .. e_layers for base edge r; False when the recursion overshoots f = 1
    (r too small) before the top layer."""
    v = _layer_area(r)
    edges = [v / math.exp(-0.5 * r * r), r]
    for i in range(1, layers - 1):
        e = edges[i]
        level = math.exp(-0.5 * e * e) + v / e
        if level >= 1.0:
            return np.array(edges + [0.0] * (layers + 1 - len(edges))), False
        edges.append(math.sqrt(-2.0 * math.log(level)))
    e = edges[-1]
    closes = math.exp(-0.5 * e * e) + v / e < 1.0  # the top box reaches f = 1
    return np.array(edges + [0.0]), closes


def solve_base_edge(layers: int) -> float:
    """r such that the boxes above the base strip reach f = 1 exactly at the top layer:
    bisection on whether the recursion closes (it does for every r above the root)."""
    low, high = 2.0, 6.0
    for _ in range(64):  # 4 / 2^64: below the float64 spacing near 4
        mid = 0.5 * (low + high)
        if layer_edges(mid, layers)[1]:
            high = mid
        else:
            low = mid
    return high


#: Right edge of the base layer's box, r (4.2164 for 2048 layers; 3.6541528853610088 for
#: Marsaglia & Tsang's 256).
BASE_EDGE = solve_base_edge(LAYERS)
#: Area of each layer, v.
LAYER_AREA = _layer_area(BASE_EDGE)
#: Layer edges e_0 .. e_N (float64).
EDGES = layer_edges(BASE_EDGE, LAYERS)[0]
#: f(e_i), i = 0 .. N (f(e_N) = 1).
DENSITY_AT_EDGES = _density(EDGES)
#: Bits of j, the signed magnitude of a draw (a 32-bit half minus the 11 layer bits).
J_BITS = 21
_J_SCALE = 2.0 ** (J_BITS - 1)
#: Fast-path thresholds: accept when |j| < K_i (int32: a 32-bit table gathers faster).
ACCEPT_BELOW = np.floor(_J_SCALE * EDGES[1:] / EDGES[:-1]).astype(np.int32)
#: x = j * WIDTH_32[i] on the fast path (float32), WIDTH_64 in the slow path.
WIDTH_32 = (EDGES[:-1] / _J_SCALE).astype(np.float32)
WIDTH_64 = EDGES[:-1] / _J_SCALE

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_LAYER_MASK = np.uint32(LAYERS - 1)
_LAYER_BITS = np.int32(11)
_LOW32 = np.uint64(0xFFFFFFFF)
_R = BASE_EDGE
_INV_R = 1.0 / BASE_EDGE


@nb.njit(inline="always", cache=True)
def mix64(z: np.uint64) -> np.uint64:
    """SplitMix64's output function (a bijection of 64-bit words)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@nb.njit(inline="always", cache=True)
def counter_word(key: np.uint64, index: np.uint64) -> np.uint64:
    """The word of draw ``index`` (uint64) of stream ``key``: mix(key + (index + 1) golden)."""
    return mix64(key + (index + np.uint64(1)) * _GOLDEN)


@nb.njit(inline="always", cache=True)
def half_word(word: np.uint64, half) -> np.uint32:
    """The low (half 0) or high (half 1) 32 bits of ``word``."""
    return np.uint32((word >> np.uint64(32 * half)) & _LOW32)


@nb.njit(inline="always", cache=True)
def ziggurat_candidate(u: np.uint32) -> tuple[np.float32, bool]:
    """The fast path of the 32-bit half ``u``: (x, accepted). When ``accepted`` is False, x is
    meaningless and the draw is the slow path's. Branch-free, so loops over it vectorise."""
    layer = u & _LAYER_MASK  # unsigned index: no negative-index test
    j = np.int32(u) >> _LAYER_BITS  # arithmetic shift: the signed high 21 bits
    return np.float32(j) * WIDTH_32[layer], abs(j) < ACCEPT_BELOW[layer]


@nb.njit(inline="always", cache=True)
def _uniform_open0(state: np.uint64) -> tuple[np.uint64, float]:
    """Next state and a uniform in (0, 1] (53 bits) of a SplitMix64 stream."""
    state, z = splitmix64_next(state)
    return state, (np.float64(z >> np.uint64(11)) + 1.0) * (1.0 / 9007199254740992.0)


@nb.njit(cache=True)
def ziggurat_slow(u: np.uint32, state: np.uint64) -> np.float32:
    """The complete Ziggurat draw of the 32-bit half ``u`` (equal to the fast path's x when
    that accepts); ``state`` starts the SplitMix64 stream of its further uniforms."""
    while True:
        layer = u & _LAYER_MASK
        j = np.int32(u) >> _LAYER_BITS
        if abs(j) < ACCEPT_BELOW[layer]:
            return np.float32(j) * WIDTH_32[layer]
        if layer == 0:  # the tail beyond r
            while True:
                state, u1 = _uniform_open0(state)
                state, u2 = _uniform_open0(state)
                a = -np.log(u1) * _INV_R
                b = -np.log(u2)
                if b + b > a * a:
                    return np.float32(_R + a) if j >= 0 else np.float32(-(_R + a))
        x = np.float64(j) * WIDTH_64[layer]
        state, v = _uniform_open0(state)
        low = DENSITY_AT_EDGES[layer]
        if low + v * (DENSITY_AT_EDGES[layer + np.uint32(1)] - low) < np.exp(-0.5 * x * x):
            return np.float32(x)
        state, z = splitmix64_next(state)
        u = half_word(z, 1)


@nb.njit(inline="always", cache=True)
def normal_at_counter(key: np.uint64, index: np.uint64) -> np.float32:
    """Standard normal draw ``index`` (uint64) of stream ``key`` (random access)."""
    half = index & np.uint64(1)
    word = counter_word(key, index >> np.uint64(1))
    u = half_word(word, half)
    x, accepted = ziggurat_candidate(u)
    if accepted:
        return x
    return ziggurat_slow(u, mix64(word ^ (half + np.uint64(1))))


@nb.njit(inline="always", cache=True)
def rejection_scratch(size: int) -> np.ndarray:
    """Scratch for :func:`fill_normals_run` runs of up to ``size`` elements (zeroed)."""
    return np.zeros(8 * ((size + 7) // 8), np.uint8)


@nb.njit(cache=True)
def fill_normals_run(out: np.ndarray, rejected: np.ndarray, key: np.uint64,
                     first: np.uint64, scale: np.float32) -> None:
    """``out[b] = scale * normal(key, first + b)`` for the whole 1-D ``out``.

    The fast path runs over the words (two draws each; branch-free: it vectorises) and marks
    the draws it rejects (about 0.23%) in ``rejected``; a scan of the marks, 8 at a time,
    redoes those through :func:`normal_at_counter`. A run that starts or ends in the middle
    of a word draws that element alone. ``rejected`` is uint8 scratch of length a multiple of
    8 and at least ``out.size``, zero beyond ``out.size`` (:func:`rejection_scratch`)."""
    size = out.shape[0]
    if size == 0:
        return
    start = 0
    if first & np.uint64(1):
        out[0] = scale * normal_at_counter(key, first)
        rejected[0] = 0
        start = 1
    pairs = (size - start) >> 1
    word0 = (first + np.uint64(start)) >> np.uint64(1)
    for b in range(pairs):
        word = counter_word(key, word0 + np.uint64(b))
        for h in range(2):
            x, accepted = ziggurat_candidate(half_word(word, h))
            out[start + 2 * b + h] = scale * x
            rejected[start + 2 * b + h] = np.uint8(1) - np.uint8(accepted)
    last = start + 2 * pairs
    if last < size:
        out[last] = scale * normal_at_counter(key, first + np.uint64(last))
        rejected[last] = 0
    marks = rejected.view(np.uint64)
    for w in range((size + 7) // 8):
        if marks[w] != 0:
            for b in range(8 * w, min(8 * w + 8, size)):
                if rejected[b]:
                    out[b] = scale * normal_at_counter(key, first + np.uint64(b))
                    rejected[b] = 0


#: Elements per thread chunk of :func:`fill_normals` (values do not depend on it).
CHUNK = 4096


@nb.njit(parallel=True, cache=True)
def fill_normals(out: np.ndarray, key: np.uint64, first: np.uint64) -> None:
    """``out[i] = normal(key, first + i)`` for the 1-D float32 array ``out`` (parallel)."""
    size = out.shape[0]
    for chunk in nb.prange((size + CHUNK - 1) // CHUNK):
        start = chunk * CHUNK
        stop = min(start + CHUNK, size)
        rejected = np.zeros(CHUNK, np.uint8)
        fill_normals_run(out[start:stop], rejected, key, first + np.uint64(start),
                         np.float32(1.0))


def ziggurat_normal(n: int, key: int, first: int = 0) -> np.ndarray:
    """``n`` float32 draws ``first .. first + n - 1`` of stream ``key`` (see module docstring)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if first < 0:
        raise ValueError(f"first must be >= 0, got {first}")
    out = np.empty(n, dtype=np.float32)
    fill_normals(out, np.uint64(key & 0xFFFFFFFFFFFFFFFF), np.uint64(first))
    return out
