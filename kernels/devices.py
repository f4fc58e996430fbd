"""Numba kernels of the device layer: read a whole programmed PCM array at time t in one pass.

``read_drifted`` fuses, per device i (physics.md sections 3-4; units µS, seconds):

    G_drift = G_prog * exp(-nu * L),                      L = ln((t + t0) / t0)
    G_read  = max(0, G_drift + |G_drift| * Q_s * a * xi),  a = sqrt(ln((t + t0 + t_read) /
                                                                (2 t_read))) * read_noise_scale

``xi`` is draw i of the table-normal stream with key ``block_state(seed, 0)``
(``kernels/table_normals.py``: the exact normal beyond +-2.998 sigma, inside it the medians
of its 65,536-level equiprobable quantisation). The devices are split into chunks of
``table_normals.CHUNK`` (one ``prange`` iteration each) whose draws are made in one vectorised
run, so ``read_drifted`` equals the numpy reference fed with
``table_normal(n, key=block_state(seed, 0))`` and depends only on the seed and the device
index, never on the thread count.

There is no drift-only kernel: numpy's SIMD ``exp`` computes G_drift alone faster than a Numba
loop (no SVML), see benchmarks/README.md ("Device reads"), so ``PCMDevice.drifted`` stays numpy.

The plain numpy references are ``aimcsim.devices.PCMDevice.drifted`` and
``PCMDevice.read(..., fast=False)`` / ``PCMDevice.read_given_normals``.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .rng import block_state
from .table_normals import CHUNK, chunk_count, fill_chunk, mark_scratch
from .twins import serial_twin


@nb.njit(inline="always", cache=True)
def read_key(seed: np.uint64) -> np.uint64:
    """The key of the read-noise stream of ``seed`` (stream 0 of the seed)."""
    return block_state(seed, np.int64(0))


@nb.njit(parallel=True, cache=True)
def read_drifted(g_prog: np.ndarray, nu: np.ndarray, q: np.ndarray, active: np.ndarray,
                 log_ratio: float, amplitude: float, seed: np.uint64, out: np.ndarray) -> None:
    """One noisy read of every device, into ``out``:
    ``out = max(0, G_drift + |G_drift| Q_s a xi)``, ``G_drift = G_prog exp(-nu L)``.

    Args:
        g_prog: (n,) float32 programmed conductances, µS (>= 0).
        nu: (n,) float32 drift exponents.
        q: (n,) float32 relative read-noise amplitudes Q_s.
        active: (n,) bool; idle devices (False) get no read noise.
        log_ratio: L = ln((t + t0) / t0).
        amplitude: a = read-noise time factor x read_noise_scale (0: no read noise).
        seed: xi_i is draw i of the table-normal stream ``read_key(seed)``.
        out: (n,) float32 output, µS.
    """
    n = g_prog.shape[0]
    key = read_key(seed)
    amp = np.float32(amplitude)
    lr = np.float32(log_ratio)
    zero = np.float32(0.0)
    for chunk in nb.prange(chunk_count(n)):
        # pass 1: this chunk's normals, one vectorised run
        xs = np.empty(CHUNK, np.float32)
        start, stop = fill_chunk(xs, mark_scratch(CHUNK), key, np.uint64(0), chunk, n)
        # pass 2: drift, read noise and clamp, branch-free
        for j in range(stop - start):
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
