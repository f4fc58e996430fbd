"""PCM programming noise (Nandakumar et al., ICECS 2019; physics.md section 2).

With x = G_target / g_max in [0, 1]:

    sigma_prog(x) = (c0 + c1 x + c2 x^2) * g_max / 25   [µS],  c = (0.26348, 1.9650, -1.1731)
    G_prog = max(0, G_target + sigma_prog(x) * xi),      xi ~ N(0, 1), once per device.

sigma_prog is 0.263 µS at x = 0, peaks at about 1.09 µS near x = 0.84 and is 1.055 µS at x = 1.
"""
from __future__ import annotations

import numpy as np

#: g_max (µS) at which the polynomial was fitted; other g_max scale sigma linearly.
REFERENCE_G_MAX = 25.0


def programming_sigma(x: np.ndarray, coefficients: tuple[float, float, float],
                      g_max: float, reference_g_max: float = REFERENCE_G_MAX) -> np.ndarray:
    """sigma_prog in µS at normalised targets ``x`` = G_target / g_max."""
    c0, c1, c2 = coefficients
    return (c0 + c1 * x + c2 * x * x) * (g_max / reference_g_max)


def program_conductances(g_target: np.ndarray, sigma: np.ndarray,
                         rng: np.random.Generator) -> np.ndarray:
    """G_prog = max(0, G_target + sigma * xi) in µS (float32); one draw per device."""
    xi = rng.standard_normal(np.shape(g_target), dtype=np.float32)
    return np.asarray(np.maximum(g_target + sigma * xi, 0.0), dtype=np.float32)
