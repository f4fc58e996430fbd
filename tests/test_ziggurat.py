"""The Ziggurat normals of kernels/ziggurat.py: the published constants, moments, a
Kolmogorov-Smirnov test, a chi-square over 200 equiprobable bins, tail probabilities out to
5 sigma, and reproducibility (random access, thread count). Every statistical bound is a few
standard errors, so a wrong layer, wedge or tail would fail."""
from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import stats

from aimcsim.kernels import ziggurat as zg
from aimcsim.kernels.rng import block_state

CHUNK = 1 << 22


def draws(n: int, key: int, first: int = 0) -> np.ndarray:
    return zg.ziggurat_normal(n, key, first).astype(np.float64)


def test_the_solver_gives_marsaglia_and_tsangs_256_layers_and_every_layer_has_area_v():
    assert zg.solve_base_edge(256) == pytest.approx(3.6541528853610088, abs=1e-12)
    e, f = zg.EDGES, zg.DENSITY_AT_EDGES
    assert e.size == zg.LAYERS + 1
    assert np.all(np.diff(e) < 0) and e[-1] == 0.0 and f[-1] == 1.0
    areas = e[1:-1] * (f[2:] - f[1:-1])  # boxes 1 .. N - 1
    np.testing.assert_allclose(areas, zg.LAYER_AREA, rtol=1e-9)
    # base strip: box [0, r] x [0, f(r)] plus the tail, as one box of width e_0
    tail = np.sqrt(2 * np.pi) * stats.norm.sf(zg.BASE_EDGE)
    assert e[0] * f[1] == pytest.approx(zg.BASE_EDGE * f[1] + tail, rel=1e-12)
    assert zg.LAYER_AREA == pytest.approx(e[0] * f[1], rel=1e-12)


def test_moments():
    z = draws(1 << 23, key=11)
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    assert abs(stats.skew(z)) < 4 * np.sqrt(6 / n)
    assert abs(stats.kurtosis(z)) < 4 * np.sqrt(24 / n)  # excess kurtosis 0


def test_kolmogorov_smirnov_and_chi_square():
    z = draws(1 << 20, key=12)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    z = draws(1 << 24, key=13)
    edges = stats.norm.ppf(np.linspace(0, 1, 201))
    counts = np.histogram(z, bins=edges)[0]
    chi2 = stats.chisquare(counts)
    assert chi2.pvalue > 1e-3


def test_tail_probabilities_out_to_five_sigma():
    """P(|z| > k) for k = 1 .. 5 within 4 standard errors over 2^27 draws (about 77 beyond
    5 sigma); a generator cut off at 4.3 sigma (a 65,536-level table) fails from 4.5 on."""
    levels = np.array([1.0, 2.0, 3.0, 4.0, 4.5, 5.0])
    counts = np.zeros(levels.size, np.int64)
    total = 1 << 27
    for start in range(0, total, CHUNK):
        a = np.abs(zg.ziggurat_normal(CHUNK, 14, start))
        counts += [np.count_nonzero(a > k) for k in levels]
    p = 2 * stats.norm.sf(levels)
    se = np.sqrt(total * p * (1 - p))
    assert np.all(np.abs(counts - total * p) < 4 * se), (counts, total * p)
    # and the sign of the tails is symmetric
    tail = zg.ziggurat_normal(CHUNK, 15)
    far = tail[np.abs(tail) > 3]
    assert abs(np.mean(far > 0) - 0.5) < 4 * 0.5 / np.sqrt(far.size)


def test_neighbours_and_streams_are_uncorrelated():
    n = 1 << 22
    z = draws(n, key=int(block_state(np.uint64(5), 0)))
    other = draws(n, key=int(block_state(np.uint64(5), 1)))
    bound = 4 / np.sqrt(n)
    assert abs(np.mean(z[1:] * z[:-1])) < bound
    assert abs(np.mean(z * other)) < bound
    assert abs(np.mean(z ** 2 * other ** 2) - 1) < 4 * np.sqrt(8 / n)


def test_random_access_and_thread_count_give_the_same_values():
    whole = zg.ziggurat_normal(100_000, 99)
    np.testing.assert_array_equal(zg.ziggurat_normal(30_000, 99, first=50_000),
                                  whole[50_000:80_000])
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = zg.ziggurat_normal(100_000, 99)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(single, whole)
    assert not np.array_equal(zg.ziggurat_normal(1000, 98), whole[:1000])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n must be"):
        zg.ziggurat_normal(-1, 0)
    with pytest.raises(ValueError, match="first must be"):
        zg.ziggurat_normal(3, 0, first=-2)


def test_odd_starts_and_single_draws_equal_the_run():
    """A run that starts or ends inside a word, and single draws, give the run's values."""
    whole = zg.ziggurat_normal(4099, 77)
    for first, n in [(1, 4098), (3, 17), (4097, 2), (4098, 1), (0, 1)]:
        np.testing.assert_array_equal(zg.ziggurat_normal(n, 77, first), whole[first:first + n])
    key = np.uint64(77)
    singles = [zg.normal_at_counter(key, np.uint64(i)) for i in range(0, 4099, 97)]
    np.testing.assert_array_equal(np.array(singles, np.float32), whole[::97])


def test_the_two_halves_of_a_word_are_independent():
    """Draws 2k and 2k + 1 share a 64-bit word: no correlation of values, squares or signs,
    and their layers (the low 11 bits of each half) are uncorrelated too (through |z|)."""
    z = draws(1 << 22, key=16).reshape(-1, 2)
    n = z.shape[0]
    bound = 4 / np.sqrt(n)
    assert abs(np.mean(z[:, 0] * z[:, 1])) < bound
    assert abs(np.mean(z[:, 0] ** 2 * z[:, 1] ** 2) - 1) < 4 * np.sqrt(8 / n)
    assert abs(np.mean(np.sign(z[:, 0]) * np.sign(z[:, 1]))) < bound
    a = np.abs(z) - np.sqrt(2 / np.pi)
    assert abs(np.mean(a[:, 0] * a[:, 1])) < 4 * np.mean(a[:, 0] ** 2) / np.sqrt(n)
    # both halves rejected by the fast path (about 5e-6 of words) still give independent tails
    far = z[(np.abs(z[:, 0]) > 3.5) & (np.abs(z[:, 1]) > 3.5)]
    assert far.shape[0] < 20  # 2^21 pairs x (4.7e-4)^2 = 0.5 expected
