"""Argument checks shared by every layer of the library: clear ValueErrors that name the
argument, never a silent NaN."""
from __future__ import annotations

import math

import numpy as np


def check_finite(values, name: str) -> None:
    """Raise ValueError if the array ``values`` (numpy or torch) holds NaN or inf."""
    if hasattr(values, "detach"):  # torch tensor, without importing torch here
        import torch
        bad = not bool(torch.isfinite(values).all())
    else:
        bad = not bool(np.isfinite(np.asarray(values)).all())
    if bad:
        raise ValueError(f"{name} contains NaN or inf values")


def check_time(t: float, name: str = "t") -> float:
    """Time since programming in seconds: finite and >= 0."""
    try:
        value = float(t)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of seconds, got {t!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0 seconds, got {t!r}")
    return value


def check_choice(value: str, choices, name: str) -> str:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value
