"""Moments and standard errors for the statistical device tests (shared by tests/test_devices_*).

Every expectation is written here from the textbook formulas, independently of the library;
the one library helper is :func:`read_kernel_normals`, the normals the fused read kernel draws
(for comparisons with common random numbers)."""
from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from aimcsim.kernels.rng import block_state
from aimcsim.kernels.table_normals import table_normal


def phi(z):
    """Standard normal density."""
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def read_kernel_normals(n: int, seed: int) -> np.ndarray:
    """The n normals the fused device-read kernel draws under ``seed`` (device i gets draw i
    of the table-normal stream with key ``block_state(seed, 0)``, kernels/devices.py)."""
    return table_normal(n, int(block_state(np.uint64(seed), np.int64(0))))


def censored_normal(mu, s):
    """Mean and standard deviation of max(0, N(mu, s^2))."""
    a = mu / s
    mean = mu * ndtr(a) + s * phi(a)
    second = (mu * mu + s * s) * ndtr(a) + mu * s * phi(a)
    return mean, math.sqrt(second - mean * mean)


def censored_normal_moments(mu, s):
    """E[max(0, X)] and E[max(0, X)^2] for X ~ N(mu, s^2), elementwise (s > 0 arrays)."""
    mu, s = np.asarray(mu, np.float64), np.asarray(s, np.float64)
    a = mu / s
    mean = mu * ndtr(a) + s * phi(a)
    second = (mu * mu + s * s) * ndtr(a) + mu * s * phi(a)
    return mean, second


def folded_normal(mu, s):
    """Mean and standard deviation of |N(mu, s^2)|."""
    mean = (s * math.sqrt(2 / math.pi) * math.exp(-mu * mu / (2 * s * s))
            + mu * (1 - 2 * ndtr(-mu / s)))
    return mean, math.sqrt(mu * mu + s * s - mean * mean)


def mean_se(x):
    return float(np.std(x) / math.sqrt(x.size))


def std_se(x):
    """SE of the sample standard deviation (delta method: sqrt(m4 - s^4) / (2 s sqrt(n));
    s / sqrt(2n) for a normal sample, also right for clamped or folded ones)."""
    x = np.asarray(x, np.float64)
    d = x - x.mean()
    s2 = np.mean(d * d)
    m4 = np.mean(d ** 4)
    return float(math.sqrt(max(m4 - s2 * s2, 0.0) / x.size) / (2 * math.sqrt(s2)))


def assert_within(value, expected, se, k=3.0, what=""):
    assert abs(value - expected) <= k * se, (
        f"{what}: {value:.6g} vs expected {expected:.6g} (|diff| = "
        f"{abs(value - expected) / se:.2f} SE, SE = {se:.3g})")
