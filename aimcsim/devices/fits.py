"""Functional forms of published device fits: polynomials and "clipped log, then polynomial"
piecewise functions of the normalised conductance u (dimensionless)."""
from __future__ import annotations

import numpy as np

from aimcsim.devices.drift import log_clamped


def polynomial(u: np.ndarray, coefficients) -> np.ndarray:
    """c0 + c1 u + c2 u^2 + ... (Horner), in the dtype of ``u``."""
    u = np.asarray(u)
    out = np.zeros_like(u) + np.asarray(coefficients[-1], u.dtype)
    for c in reversed(coefficients[:-1]):
        out = out * u + np.asarray(c, u.dtype)
    return out


def log_then_polynomial(u: np.ndarray, params) -> np.ndarray:
    """clip(a ln u + b, lo, hi) below u_split, polynomial c0 + c1 u + ... at and above it;
    ``params`` = (u_split, a, b, lo, hi, c0, c1, ...). At u = 0 (ln u = -inf) the clip bound."""
    u = np.asarray(u)
    split, a, b, lo, hi, *poly = params
    low = np.clip(np.asarray(a, u.dtype) * log_clamped(u) + np.asarray(b, u.dtype), lo, hi)
    return np.where(u < split, low, polynomial(u, poly)).astype(u.dtype)
