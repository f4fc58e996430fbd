"""PCM conductance drift (Nandakumar et al. 2019; Joshi et al. 2020; physics.md section 3).

Each device draws its drift exponent once, at programming, from its normalised target
x = G_target / g_max:

    nu_mean(x) = clip(a_mean ln x + b_mean, lo_mean, hi_mean),  (-0.0155, 0.0244, 0.049, 0.1)
    nu_std(x)  = clip(a_std ln x + b_std, lo_std, hi_std),      (-0.0125, -0.0059, 0.008, 0.045)
    nu = |nu_mean(x) + nu_std(x) * xi|,  xi ~ N(0, 1)

and its conductance then decays as a straight line in log G vs log(t + t0):

    G_drift(t) = G_prog * ((t + t0) / t0) ^ (-nu) = G_prog * exp(-nu L),  L = ln((t + t0) / t0)

with t the time since programming ended (s) and t0 = 20 s. At x = 0 (ln x = -inf) both clips
take their upper bound.
"""
from __future__ import annotations

import math

import numpy as np


def log_clamped(x: np.ndarray) -> np.ndarray:
    """ln(max(x, 1e-30)): -69 instead of -inf at x = 0, so clipped fits take their bound."""
    with np.errstate(divide="ignore"):
        return np.log(np.maximum(x, 1e-30))


def drift_nu_mean(x: np.ndarray, a: float, b: float, lo: float, hi: float) -> np.ndarray:
    """Mean drift exponent at normalised target ``x`` (dimensionless)."""
    return np.clip(a * log_clamped(x) + b, lo, hi)


def drift_nu_std(x: np.ndarray, a: float, b: float, lo: float, hi: float) -> np.ndarray:
    """Device-to-device spread (standard deviation before folding) of the drift exponent."""
    return np.clip(a * log_clamped(x) + b, lo, hi)


def draw_drift_exponents(nu_mean: np.ndarray, nu_std: np.ndarray,
                         rng: np.random.Generator) -> np.ndarray:
    """nu = |nu_mean + nu_std * xi| per device (float32), one draw per device."""
    xi = rng.standard_normal(np.shape(nu_mean), dtype=np.float32)
    return np.asarray(np.abs(nu_mean + nu_std * xi), dtype=np.float32)


def drift_log_ratio(t: float, t0: float) -> float:
    """L = ln((t + t0) / t0), computed in float64 (t, t0 in seconds)."""
    return math.log1p(t / t0)


def drift_factor(nu: np.ndarray, t: float, t0: float) -> np.ndarray:
    """G_drift(t) / G_prog = exp(-nu L) (float32; the operation order of the Numba kernel)."""
    lr = np.float32(drift_log_ratio(t, t0))
    return np.asarray(np.exp(-np.asarray(nu, np.float32) * lr), dtype=np.float32)
