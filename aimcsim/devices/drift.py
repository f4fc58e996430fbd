"""PCM conductance drift (Nandakumar et al. 2019; Joshi et al. 2020; physics.md section 3).

Each device draws its drift exponent once, at programming:
    nu_mean(x) = clip(a_mean ln x + b_mean, lo_mean, hi_mean),  (-0.0155, 0.0244, 0.049, 0.1)
    nu_std(x)  = clip(a_std ln x + b_std, lo_std, hi_std),      (-0.0125, -0.0059, 0.008, 0.045)
    nu = |nu_mean(x) + nu_std(x) * xi|,  x = G_target / g_max
and its conductance then decays as a straight line in log-log time:
    G_drift(t) = G_prog * ((t + t0) / t0) ^ (-nu),  t0 = 20 s, t in seconds after programming.
"""
from __future__ import annotations

import numpy as np


def _log_x(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(np.maximum(x, 1e-30))


def drift_nu_mean(x: np.ndarray, a: float, b: float, lo: float, hi: float) -> np.ndarray:
    """Mean drift exponent at normalised target x (dimensionless)."""
    return np.clip(a * _log_x(x) + b, lo, hi)


def drift_nu_std(x: np.ndarray, a: float, b: float, lo: float, hi: float) -> np.ndarray:
    """Device-to-device spread of the drift exponent at normalised target x."""
    return np.clip(a * _log_x(x) + b, lo, hi)


def draw_drift_exponents(nu_mean: np.ndarray, nu_std: np.ndarray,
                         rng: np.random.Generator) -> np.ndarray:
    """nu = |nu_mean + nu_std * xi| per device (float32)."""
    xi = rng.standard_normal(nu_mean.shape, dtype=np.float32)
    return np.abs(nu_mean + nu_std * xi).astype(np.float32)


def drift_factor(nu: np.ndarray, t: float, t0: float) -> np.ndarray:
    """((t + t0) / t0) ^ (-nu): the factor G_drift(t) / G_prog."""
    return np.power(np.float32((t + t0) / t0), -nu).astype(np.float32)
