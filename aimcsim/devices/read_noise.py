"""PCM 1/f read noise (Nandakumar et al. 2019; Joshi et al. 2020; physics.md section 4).

    Q_s(x) = min(q0 / max(x^e, x_floor), q_max),
             (q0, e, x_floor, q_max) = (0.0088, 0.65, 1e-3, 0.2)
    sigma_read(t) = |G_drift(t)| * Q_s(x) * sqrt(ln((t + t0 + t_read) / (2 t_read)))   [µS]
    G_read = max(0, G_drift(t) + sigma_read(t) * xi),  xi ~ N(0, 1), fresh at every read

with x = max(G_prog, 0) / g_max, t0 = 20 s and t_read = 250 ns. The square-root factor is 4.19 at
t = 1 s, 4.76 at 1 h, 5.09 at 1 day and 5.64 at 1 year.
"""
from __future__ import annotations

import math

import numpy as np


def read_noise_q(x: np.ndarray, q0: float, exponent: float, floor: float,
                 cap: float) -> np.ndarray:
    """Relative 1/f noise amplitude Q_s at normalised programmed conductance ``x`` (float32)."""
    x = np.maximum(x, 0.0)
    return np.asarray(np.minimum(q0 / np.maximum(np.power(x, exponent), floor), cap),
                      dtype=np.float32)


def read_time_factor(t: float, t0: float, t_read: float) -> float:
    """sqrt(ln((t + t0 + t_read) / (2 t_read))), dimensionless (t, t0, t_read in seconds)."""
    return math.sqrt(math.log((t + t0 + t_read) / (2.0 * t_read)))


def add_read_noise(g_drift: np.ndarray, sigma: np.ndarray, xi: np.ndarray,
                   active: np.ndarray) -> np.ndarray:
    """G_read = max(0, G_drift + sigma * xi) for active devices; idle ones keep G_drift (µS)."""
    noisy = np.maximum(g_drift + sigma * xi, np.float32(0.0))
    return np.asarray(np.where(active, noisy, g_drift), dtype=np.float32)
