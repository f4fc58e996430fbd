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
