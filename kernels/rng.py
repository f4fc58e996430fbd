"""Counter-based hashing for reproducible random streams inside Numba kernels.

SplitMix64 (Steele, Lea & Flood 2014): a stream with state ``s`` outputs ``mix(s + golden)``,
``mix(s + 2 golden)``, ..., where ``mix`` is SplitMix64's output function (a bijection of
64-bit words) and golden = 0x9E3779B97F4A7C15. Output ``k`` is
``counter_word(s, k) = mix(s + (k + 1) golden)``, computable without the outputs before it, so
any element of a stream can be drawn by any thread in any order: kernel results depend only on
the seed and the element's logical index, never on the thread count or how ``prange`` splits
the work.

- :func:`block_state` derives the key (initial state) of stream ``b`` under a 64-bit seed,
  e.g. ``(seed, 2n)`` for the output noise of sample n.
- :func:`counter_word_int` is :func:`counter_word` on Python ints (seeds derived in Python).
- :func:`seed_from` draws a kernel seed from a numpy Generator (runs stay reproducible).

The Gaussian draws themselves (table normals with exact tails beyond 2.998 sigma) live in
``kernels/table_normals.py``, the only normal generator of the kernels.
"""
from __future__ import annotations

import numba as nb
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@nb.njit(inline="always", cache=True)
def mix64(z: np.uint64) -> np.uint64:
    """SplitMix64's output function (a bijection of 64-bit words)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@nb.njit(inline="always", cache=True)
def splitmix64_next(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    """Advance a SplitMix64 state; returns (new_state, 64-bit output)."""
    state = state + _GOLDEN
    return state, mix64(state)


@nb.njit(inline="always", cache=True)
def counter_word(state0: np.uint64, word: np.uint64) -> np.uint64:
    """Output ``word`` (uint64, from 0) of the SplitMix64 stream that starts at ``state0``:
    mix(state0 + (word + 1) golden), drawn without the outputs before it."""
    return mix64(state0 + (word + np.uint64(1)) * _GOLDEN)


@nb.njit(inline="always", cache=True)
def block_state(seed: np.uint64, block: np.int64) -> np.uint64:
    """Initial state of the stream of ``block`` under ``seed`` (decorrelated by one mix)."""
    _, z = splitmix64_next(seed ^ (np.uint64(block) * _MIX2))
    return z


def counter_word_int(state0: int, word: int) -> int:
    """:func:`counter_word` on Python ints (mod 2^64), for deriving seeds in Python at about a
    microsecond each."""
    mask = 0xFFFFFFFFFFFFFFFF
    z = (state0 + (word + 1) * int(_GOLDEN)) & mask
    z = ((z ^ (z >> 30)) * int(_MIX1)) & mask
    z = ((z ^ (z >> 27)) * int(_MIX2)) & mask
    return z ^ (z >> 31)


def seed_from(rng: np.random.Generator) -> int:
    """Draw a 64-bit kernel seed from a numpy Generator (keeps runs reproducible)."""
    return int(rng.integers(0, 2**63 - 1, dtype=np.int64))
