"""Numba kernel: read a whole programmed PCM array at time t in one fused pass.

Per device (physics.md sections 3-4), with L = ln((t + t0) / t0) and f = the read-noise time
factor sqrt(ln((t + t0 + t_read) / (2 t_read))):
    G_drift = G_prog * exp(-nu * L)
    G_read  = max(0, G_drift + |G_drift| * Q_s * f * xi)   (active devices; idle ones stay put)
xi are table normals (see ``kernels/rng.py``) from per-block streams, so the result depends only
on the seed and the device index, not on the thread count. The plain numpy reference is
``aimcsim.devices.PCMDevice.read(..., fast=False)``.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .rng import BLOCK, block_state, splitmix64_next


@nb.njit(parallel=True, cache=True)
def read_drifted(g_prog: np.ndarray, nu: np.ndarray, q: np.ndarray, active: np.ndarray,
                 log_ratio: float, time_factor: float, noise_scale: float, seed: np.uint64,
                 table: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` (1-D float32) with one noisy read of every device (1-D arrays, µS)."""
    n = g_prog.shape[0]
    n_blocks = (n + BLOCK - 1) // BLOCK
    amp = np.float32(time_factor * noise_scale)
    lr = np.float32(log_ratio)
    noisy = noise_scale > 0.0
    for b in nb.prange(n_blocks):
        state = block_state(seed, b)
        word = np.uint64(0)
        start = b * BLOCK
        stop = min(start + BLOCK, n)
        k = 0
        for i in range(start, stop):
            if k == 0:
                state, word = splitmix64_next(state)
            xi = table[np.int64((word >> np.uint64(16 * k)) & np.uint64(0xFFFF))]
            k = (k + 1) & 3
            d = g_prog[i] * np.exp(-nu[i] * lr)
            if active[i] and noisy:
                v = d + abs(d) * q[i] * amp * xi
                out[i] = v if v > 0.0 else np.float32(0.0)
            else:
                out[i] = d


@nb.njit(parallel=True, cache=True)
def drift_only(g_prog: np.ndarray, nu: np.ndarray, log_ratio: float, out: np.ndarray) -> None:
    """Fill ``out`` with G_prog * exp(-nu * ln((t + t0) / t0)) (1-D float32, µS)."""
    lr = np.float32(log_ratio)
    for i in nb.prange(g_prog.shape[0]):
        out[i] = g_prog[i] * np.exp(-nu[i] * lr)
