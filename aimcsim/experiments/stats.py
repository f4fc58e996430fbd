"""Means over programmings with their standard errors, and paired differences.

An accuracy measured over ``n`` programmings is reported as the mean with the standard error
of the mean, ``SE = std(ddof=1) / sqrt(n)`` (0 for one programming: no spread is known). Two
configurations read on the same seeds (programming ``r`` of one paired with programming ``r``
of the other) are compared by the mean of the per-programming differences and its standard
error, which removes the spread the two share.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mean_and_se(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(mean, standard error of the mean) of ``values`` (SE 0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("mean_and_se needs at least one value")
    se = v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else 0.0
    return float(v.mean()), float(se)


def paired_difference(values: Sequence[float] | np.ndarray,
                      reference: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(mean, standard error) of ``values[r] - reference[r]`` over paired programmings r."""
    a = np.asarray(values, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values need one shape, got {a.shape} and {b.shape}")
    return mean_and_se(a - b)
