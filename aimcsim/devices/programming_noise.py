"""PCM programming noise (Nandakumar et al., ICECS 2019; physics.md section 2).

With x = G_target / g_max in [0, 1]:
    sigma_prog(x) = (c0 + c1 x + c2 x^2) * g_max / 25   [µS],  c = (0.26348, 1.9650, -1.1731)
    G_prog = max(0, G_target + sigma_prog(x) * xi),  xi ~ N(0, 1), once per device.
"""
from __future__ import annotations

import numpy as np


def programming_sigma(x: np.ndarray, coefficients: tuple[float, float, float],
                      g_max: float, reference_g_max: float = 25.0) -> np.ndarray:
    """sigma_prog in µS for normalised targets ``x`` (polynomial fitted at g_max = 25 µS,
    scaled linearly with g_max)."""
    c0, c1, c2 = coefficients
    return (c0 + c1 * x + c2 * x * x) * (g_max / reference_g_max)


def program_conductances(g_target: np.ndarray, sigma: np.ndarray,
                         rng: np.random.Generator) -> np.ndarray:
    """G_prog = max(0, G_target + sigma * xi) in µS (float32)."""
    noise = rng.standard_normal(g_target.shape, dtype=np.float32)
    return np.maximum(g_target + sigma * noise, 0.0).astype(np.float32)
