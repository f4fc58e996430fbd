"""Input checks of the device models."""
from __future__ import annotations

import math

import numpy as np


def check_targets(g_target, g_max: float, tolerance: float = 1e-4) -> np.ndarray:
    """Target conductances as float32: finite and within [0, g_max] µS, else ValueError."""
    g = np.asarray(g_target, dtype=np.float32)
    if not np.isfinite(g).all():
        raise ValueError("g_target contains NaN or inf values")
    if g.size and (g.min() < 0 or g.max() > g_max * (1 + tolerance)):
        raise ValueError(f"g_target must lie in [0, g_max = {g_max}] µS, got values in "
                         f"[{g.min():.4g}, {g.max():.4g}]")
    return np.minimum(g, np.float32(g_max))


def check_config_numbers(config, positive=(), non_negative=()) -> None:
    """Config fields must be finite numbers, > 0 or >= 0 as listed."""
    for name in positive:
        v = getattr(config, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    for name in non_negative:
        v = getattr(config, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
