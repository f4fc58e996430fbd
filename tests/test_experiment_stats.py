"""aimcsim.experiments.stats: means with standard errors, paired differences."""
from __future__ import annotations

import numpy as np
import pytest

from aimcsim.experiments.stats import mean_and_se, paired_difference


def test_mean_and_se_match_the_textbook_formula():
    values = np.array([90.1, 89.5, 90.9, 89.9])
    mean, se = mean_and_se(values)
    assert mean == pytest.approx(values.mean())
    assert se == pytest.approx(values.std(ddof=1) / 2.0)
    assert mean_and_se([91.0]) == (91.0, 0.0)
    with pytest.raises(ValueError, match="at least one"):
        mean_and_se([])


def test_paired_difference_removes_the_shared_spread():
    reference = np.array([85.0, 90.0, 95.0])
    mean, se = paired_difference(reference + 1.0, reference)
    assert mean == pytest.approx(1.0) and se == pytest.approx(0.0)
    with pytest.raises(ValueError, match="one shape"):
        paired_difference([1.0, 2.0], [1.0])


def test_the_t_test_uses_students_quantiles_and_welch_satterthwaite():
    from scipy.stats import t as student_t
    from aimcsim.experiments.stats import (resolved, satterthwaite_dof, t_critical,
                                           welch_dof)
    assert t_critical(2) == pytest.approx(4.302653) and t_critical(7) == pytest.approx(2.364624)
    assert t_critical(1e9) == pytest.approx(1.959964, abs=1e-5)
    assert welch_dof(0.1, 5, 0.1, 5) == pytest.approx(8.0)
    assert welch_dof(0.3, 3, 0.1, 8) == pytest.approx((0.09 + 0.01) ** 2
                                                      / (0.3 ** 4 / 2 + 0.1 ** 4 / 7))
    assert satterthwaite_dof([(0.2, 4.0), (0.0, 1.0)]) == pytest.approx(4.0)
    for bad in ([(None, 3)], [(0.1, 0)], [(0.1, None)], [(0.0, 3), (0.0, 3)],
                [(float("nan"), 3)]):
        assert satterthwaite_dof(bad) is None
    edge = student_t.ppf(0.975, 3) * 0.1
    assert resolved(edge * 1.001, 0.1, 3) and not resolved(edge * 0.999, 0.1, 3)
    assert resolved(-edge * 1.001, 0.1, 3)
    assert resolved(1.0, None, 3) is None and resolved(1.0, 0.1, None) is None
