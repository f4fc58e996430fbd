"""Numba kernels of the device layer: read a whole programmed PCM array at time t in one pass.

``read_drifted`` fuses, per device i (physics.md sections 3-4; units µS, seconds):

    G_drift = G_prog * exp(-nu * L),                      L = ln((t + t0) / t0)
    G_read  = max(0, G_drift + |G_drift| * Q_s * a * xi),  a = sqrt(ln((t + t0 + t_read) /
                                                                (2 t_read))) * read_noise_scale

``xi`` is the table normal of element i of stream ``seed`` (``kernels/rng.py``): element i lives
in block ``i // BLOCK``, word ``(i % BLOCK) // 4``, lane ``i % 4``, exactly as in
``rng.fill_standard_normal``. So ``read_drifted`` equals the numpy reference fed with
``rng.standard_normal(n, seed)``, and the result depends only on the seed and the device index,
never on the thread count.

There is no drift-only kernel: numpy's SIMD ``exp`` computes G_drift alone faster than a Numba
loop (no SVML), see benchmarks/README.md ("Device reads"), so ``PCMDevice.drifted`` stays numpy.

The plain numpy references are ``aimcsim.devices.PCMDevice.drifted`` and
``PCMDevice.read(..., fast=False)`` / ``PCMDevice.read_given_normals``.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .rng import BLOCK, block_state, splitmix64_next
from .twins import serial_twin


@nb.njit(parallel=True, cache=True)
def read_drifted(g_prog: np.ndarray, nu: np.ndarray, q: np.ndarray, active: np.ndarray,
                 log_ratio: float, amplitude: float, seed: np.uint64, table: np.ndarray,
                 out: np.ndarray) -> None:
    """One noisy read of every device, into ``out``.

    Args:
        g_prog: (n,) float32 programmed conductances, µS (>= 0).
        nu: (n,) float32 drift exponents.
        q: (n,) float32 relative read-noise amplitudes Q_s.
        active: (n,) bool; idle devices (False) get no read noise.
        log_ratio: L = ln((t + t0) / t0).
        amplitude: a = read-noise time factor x read_noise_scale (0: no read noise).
        seed: stream of the table normals.
        table: ``rng.NORMAL_TABLE``.
        out: (n,) float32 output, µS.
    """
    n = g_prog.shape[0]
    n_blocks = (n + BLOCK - 1) // BLOCK
    amp = np.float32(amplitude)
    lr = np.float32(log_ratio)
    zero = np.float32(0.0)
    for b in nb.prange(n_blocks):
        start = b * BLOCK
        m = min(BLOCK, n - start)
        # pass 1: this block's normals (4 per 64-bit word)
        xs = np.empty(BLOCK, np.float32)
        state = block_state(seed, b)
        for w in range(0, m, 4):
            state, word = splitmix64_next(state)
            for k in range(4):
                xs[w + k] = table[np.int64((word >> np.uint64(16 * k)) & np.uint64(0xFFFF))]
        # pass 2: drift, read noise and clamp, branch-free
        for j in range(m):
            i = start + j
            d = g_prog[i] * np.exp(-nu[i] * lr)
            s = q[i] * amp if active[i] else zero
            out[i] = max(d + abs(d) * s * xs[j], zero)



#: Below this many devices the single-threaded variant is faster: a tile's read then does not
#: wake (and leave spinning) the thread pool between the many small reads of ``set_time``.
PARALLEL_MIN_DEVICES = 1 << 18
read_drifted_serial = serial_twin(read_drifted, cache=True)


def read_devices(g_prog: np.ndarray, *args) -> None:
    """:func:`read_drifted`, single-threaded for arrays below ``PARALLEL_MIN_DEVICES``."""
    kernel = read_drifted if g_prog.size >= PARALLEL_MIN_DEVICES else read_drifted_serial
    kernel(g_prog, *args)
