"""The table normals with exact tails of kernels/table_normals.py, against the exact normal:
the body's CDF error (computed from the table), moments, a Kolmogorov-Smirnov test, a
chi-square over 200 equiprobable bins, tail probabilities out to 5 sigma, the tails'
conditional distribution, the four draws of a word, and reproducibility (random access, odd
starts, thread count). Every statistical bound is a few standard errors, so a wrong table,
tail or field would fail."""
from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtr

from aimcsim.kernels import table_normals as tn
from aimcsim.kernels.rng import block_state

CHUNK = 1 << 22


def draws(n: int, key: int, first: int = 0) -> np.ndarray:
    return tn.table_normal(n, key, first).astype(np.float64)


def test_the_body_is_the_level_medians_and_its_cdf_is_within_half_a_level_of_phi():
    levels = np.arange(tn.LEVELS)
    body = (levels >= tn.TAIL_LEVELS) & (levels < tn.LEVELS - tn.TAIL_LEVELS)
    medians = stats.norm.ppf((levels + 0.5) / tn.LEVELS).astype(np.float32)
    np.testing.assert_array_equal(tn.TABLE[body], medians[body])
    assert np.all(np.abs(tn.TABLE[~body]) == tn.TAIL_MARK)
    assert np.all(np.sign(tn.TABLE[~body]) == np.sign(levels[~body] - tn.LEVELS / 2))
    assert tn.TAIL_EDGE == pytest.approx(-stats.norm.ppf(tn.TAIL_LEVELS / tn.LEVELS), rel=1e-12)
    assert 2.99 < tn.TAIL_EDGE < 3.0  # every tail probability from 3 sigma out is exact
    # the draws' CDF F jumps by 1 / L at each body level; beyond +-r it is Phi itself. So
    # max |F - Phi| is at the jumps: Phi(level k) against k / L and (k + 1) / L.
    k = levels[body]
    phi = ndtr(tn.TABLE[body].astype(np.float64))
    error = np.maximum(np.abs(phi - k / tn.LEVELS), np.abs(phi - (k + 1) / tn.LEVELS))
    assert error.max() < 0.5 / tn.LEVELS + 1e-7  # 7.6e-6 plus float32 rounding of the table


def test_moments():
    z = draws(1 << 23, key=11)
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    assert abs(stats.skew(z)) < 4 * np.sqrt(6 / n)
    assert abs(stats.kurtosis(z)) < 4 * np.sqrt(24 / n)  # excess kurtosis 0


def test_kolmogorov_smirnov_and_chi_square():
    """KS with 2^20 draws; chi-square over 200 equiprobable bins with 2^22 draws (the body's
    quantisation adds a non-centrality of 34 at 2^24 draws, 8.5 at 2^22: the statistic's mean
    goes from 199 to about 208, its standard deviation is 20)."""
    z = draws(1 << 20, key=12)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    z = draws(1 << 22, key=13)
    edges = stats.norm.ppf(np.linspace(0, 1, 201))
    counts = np.histogram(z, bins=edges)[0]
    assert stats.chisquare(counts).pvalue > 1e-3


def test_tail_probabilities_out_to_five_sigma():
    """P(|z| > k) for k = 1 .. 5 within 4 standard errors over 2^27 draws (about 77 beyond
    5 sigma); the plain 65,536-level table (cut at 4.32 sigma) fails from 4.5 on, and its
    level medians alone would put P(|z| > 3) 3.2 standard errors low."""
    levels = np.array([1.0, 2.0, 3.0, 4.0, 4.5, 5.0])
    counts = np.zeros(levels.size, np.int64)
    total = 1 << 27
    for start in range(0, total, CHUNK):
        a = np.abs(tn.table_normal(CHUNK, 14, start))
        counts += [np.count_nonzero(a > k) for k in levels]
    p = 2 * stats.norm.sf(levels)
    se = np.sqrt(total * p * (1 - p))
    assert np.all(np.abs(counts - total * p) < 4 * se), (counts, total * p)
    tail = tn.table_normal(CHUNK, 15)
    far = tail[np.abs(tail) > 3]
    assert abs(np.mean(far > 0) - 0.5) < 4 * 0.5 / np.sqrt(far.size)


def test_the_tails_are_the_normal_beyond_r_and_no_mark_leaks():
    z = draws(1 << 24, key=21)
    assert np.all(np.abs(z) < 10)  # a mark is 1e30
    r = tn.TAIL_EDGE
    beyond = np.abs(z[np.abs(z) > r])
    expected = (1 << 24) * 2 * stats.norm.sf(r)
    assert abs(beyond.size - expected) < 4 * np.sqrt(expected)
    # |z| given |z| > r: CDF (Phi(x) - Phi(r)) / (1 - Phi(r)), i.e. sf(x) / sf(r)
    result = stats.kstest(beyond, lambda x: 1 - stats.norm.sf(x) / stats.norm.sf(r))
    assert result.pvalue > 1e-3
    # and nothing lies between the outermost body level and r but the tails' own draws
    outer = float(tn.TABLE[tn.LEVELS - tn.TAIL_LEVELS - 1])
    assert not np.any((np.abs(z) > outer) & (np.abs(z) <= r))


def test_neighbours_streams_and_the_four_fields_of_a_word_are_uncorrelated():
    n = 1 << 22
    z = draws(n, key=int(block_state(np.uint64(5), 0)))
    other = draws(n, key=int(block_state(np.uint64(5), 1)))
    bound = 4 / np.sqrt(n)
    assert abs(np.mean(z[1:] * z[:-1])) < bound
    assert abs(np.mean(z * other)) < bound
    assert abs(np.mean(z ** 2 * other ** 2) - 1) < 4 * np.sqrt(8 / n)
    fields = z.reshape(-1, 4)  # the four 16-bit fields of each word
    m = fields.shape[0]
    for a, b in [(0, 1), (1, 2), (2, 3), (0, 3)]:
        assert abs(np.mean(fields[:, a] * fields[:, b])) < 4 / np.sqrt(m)
        assert abs(np.mean(fields[:, a] ** 2 * fields[:, b] ** 2) - 1) < 4 * np.sqrt(8 / m)
        assert abs(np.mean(np.sign(fields[:, a]) * np.sign(fields[:, b]))) < 4 / np.sqrt(m)


def test_random_access_odd_starts_and_thread_count_give_the_same_values():
    whole = tn.table_normal(100_000, 99)
    np.testing.assert_array_equal(tn.table_normal(30_000, 99, first=50_001),
                                  whole[50_001:80_001])
    for first, n in [(1, 4098), (3, 17), (4097, 2), (4098, 1), (0, 1), (2, 1), (5, 3)]:
        np.testing.assert_array_equal(tn.table_normal(n, 99, first), whole[first:first + n])
    key = np.uint64(99)
    singles = [tn.normal_at_counter(key, np.uint64(i)) for i in range(0, 100_000, 97)]
    np.testing.assert_array_equal(np.array(singles, np.float32), whole[::97])
    tails = np.flatnonzero(np.abs(whole) > tn.TAIL_EDGE)[:20]  # random access to tail draws
    assert tails.size == 20
    np.testing.assert_array_equal([tn.normal_at_counter(key, np.uint64(i)) for i in tails],
                                  whole[tails])
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = tn.table_normal(100_000, 99)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(single, whole)
    assert not np.array_equal(tn.table_normal(1000, 98), whole[:1000])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n must be"):
        tn.table_normal(-1, 0)
    with pytest.raises(ValueError, match="first must be"):
        tn.table_normal(3, 0, first=-2)
    assert tn.table_normal(0, 1).shape == (0,)
