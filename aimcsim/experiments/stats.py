"""Means over programmings with their standard errors, and paired differences.

An accuracy measured over ``n`` programmings is reported as the mean with the standard error
of the mean, ``SE = std(ddof=1) / sqrt(n)`` (0 for one programming: no spread is known). Two
configurations read on the same seeds (programming ``r`` of one paired with programming ``r``
of the other) are compared by the mean of the per-programming differences and its standard
error, which removes the spread the two share. A difference counts as resolved (a
measured effect) only by a two-sided t-test at 95% on its degrees of freedom (:func:`resolved`:
N - 1 for paired programmings, Welch-Satterthwaite otherwise): with the few programmings an
accuracy point affords, "two standard errors" would be a much weaker test (an 82% one at 3
programmings, 91% at 8).
"""
from __future__ import annotations

import math
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


#: Two-sided confidence of :func:`resolved`.
CONFIDENCE = 0.95


def satterthwaite_dof(parts: Sequence[tuple[float | None, float | None]]) -> float | None:
    """Degrees of freedom of a sum or difference of independent estimates, each given as
    (standard error, its degrees of freedom): ``nu = (sum SE_i^2)^2 / sum(SE_i^4 / nu_i)``
    (Welch-Satterthwaite). None when an error or a dof is unknown, a dof is not positive, or
    every error is 0."""
    if any(se is None or nu is None or not math.isfinite(se) or not nu > 0 for se, nu in parts):
        return None
    denominator = sum(se ** 4 / nu for se, nu in parts)
    return sum(se ** 2 for se, _ in parts) ** 2 / denominator if denominator > 0 else None


def welch_dof(se_a: float | None, n_a: int, se_b: float | None, n_b: int) -> float | None:
    """Welch's degrees of freedom of the difference of two means with standard errors
    ``se_a``, ``se_b`` over ``n_a``, ``n_b`` values: :func:`satterthwaite_dof` with
    ``n - 1`` each."""
    return satterthwaite_dof([(se_a, n_a - 1), (se_b, n_b - 1)])


def t_critical(dof: float) -> float:
    """The two-sided :data:`CONFIDENCE` quantile of Student's t with ``dof`` degrees of
    freedom (4.30 at 2, 2.36 at 7, 1.96 in the limit)."""
    from scipy.stats import t as student_t
    return float(student_t.ppf(0.5 + CONFIDENCE / 2, dof))


def resolved(difference: float, standard_error: float | None, dof: float | None) -> bool | None:
    """Whether ``difference`` is resolved from 0 by a two-sided t-test at
    :data:`CONFIDENCE`: ``|difference| > t_critical(dof) * standard_error``. None when the
    error or the degrees of freedom are unknown (no spread measured)."""
    if standard_error is None or dof is None or not math.isfinite(standard_error) \
            or not dof > 0:
        return None
    return bool(abs(difference) > t_critical(dof) * standard_error)
