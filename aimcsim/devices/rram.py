"""RRAM of the NeuRRAM chip (Wan et al., "A compute-in-memory chip based on resistive
random-access memory", Nature 608:504, 2022): state-dependent programming noise and conductance
relaxation, characterised from 1 s to 2 days after iterative write-verify programming.

The characterisation gives, at each measured time t_k (1 s, 1 day, 2 days), the standard
deviation of a device's conductance around its target as a polynomial in u = G_target / g_char
(g_char = 40 µS, the top of the characterised range; the mean stays on the target):

    sigma_k(u) = c_k0 + c_k1 u + c_k2 u^2 + c_k3 u^3 + c_k4 u^4                       [µS]

Model (per device; t in seconds since programming ended):

    G_prog = max(0, G_target + s_p sigma_1(u) xi)                         programming, once
    v(u, t) = sigma_k(u)^2 interpolated linearly in ln t between the measured times
    r(u, t) = s_rel sqrt(max(v(u, t) - sigma_1(u)^2, 0))                  relaxation spread
    G_drift(t) = max(0, G_prog + r(u, t) xi_rel)                          xi_rel once per device
    G_read = max(0, G_drift(t) + s_r read_sigma xi')                      fresh at every read

So at each measured time the spread around the target is sigma_k(u) (programming and
relaxation are independent), and a device relaxes in one direction, its own xi_rel, kept in
``DeviceState.nu``. t = 0 is the programmed state (the 1 s distribution). The published
spread does not cover earlier or later times: :meth:`check_read_time` raises a ValueError for
0 < t < 1 s and for t > 2 days. The characterisation has no separate read noise; ``read_sigma``
(default 1% of g_char, 0.4 µS) is this library's choice (docs/physics.md).

Reads use numpy (no fused kernel: the PCM kernel's multiplicative drift and noise do not apply).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aimcsim.devices.base import DeviceModel, DeviceState, build_config
from aimcsim.devices.fits import polynomial
from aimcsim.devices.programming_noise import program_conductances
from aimcsim.devices.read_noise import add_read_noise
from aimcsim.devices.validation import (MAX_DEVICE_VALUE, as_number_tuple, check_config_flags,
                                        check_config_numbers, check_state, check_targets,
                                        number_tuple)
from aimcsim.validation import check_float

#: Top of the characterised conductance range, µS: the fits' u = 1.
WAN_G_CHAR = 40.0
DAY = 86400.0


@dataclass
class WanRRAMConfig:
    """Constants of :class:`WanRRAMDevice` (defaults: Wan et al. 2022, docs/physics.md).

    Attributes:
        g_max: conductance of the largest weight magnitude, µS, at most g_char = 40 µS.
        sigma_times: the measured times t_k, s, strictly increasing (1 s, 1 day, 2 days);
            reads are valid at t = 0 and from the first to the last.
        sigma_coefficients: one polynomial (c0, c1, ...) of sigma_k(u) in µS per time.
        read_sigma: standard deviation of one read, µS (not part of the characterisation).
        prog_noise_scale, relaxation_scale, read_noise_scale: multiply sigma_1, r and
            read_sigma (0 switches a mechanism off).
        noise_idle_devices: as in :class:`~aimcsim.devices.pcm.PCMConfig`.
    """

    g_max: float = WAN_G_CHAR
    sigma_times: tuple[float, ...] = (1.0, DAY, 2 * DAY)
    sigma_coefficients: tuple[tuple[float, ...], ...] = (
        (0.348, 16.030, -43.853, 45.393, -16.815),
        (0.701, 22.086, -50.773, 47.095, -16.458),
        (0.782, 20.274, -43.507, 37.062, -11.934))
    read_sigma: float = 0.01 * WAN_G_CHAR
    prog_noise_scale: float = 1.0
    relaxation_scale: float = 1.0
    read_noise_scale: float = 1.0
    noise_idle_devices: bool = False

    def __post_init__(self) -> None:
        self.g_max = check_float(self.g_max, "g_max", 0, WAN_G_CHAR, low_open=True)
        self.sigma_times = as_number_tuple(self, "sigma_times", (1, 16))
        times = self.sigma_times
        if times[0] <= 0 or times[-1] > MAX_DEVICE_VALUE or any(
                b <= a for a, b in zip(times, times[1:])):
            raise ValueError(f"sigma_times must be strictly increasing seconds in (0, "
                             f"{MAX_DEVICE_VALUE:g}], got {times}")
        rows = self.sigma_coefficients
        if isinstance(rows, (str, bytes)) or not hasattr(rows, "__len__") \
                or len(rows) != len(times):
            raise ValueError(f"sigma_coefficients must hold one polynomial per time of "
                             f"sigma_times ({len(times)}), got {rows!r}")
        self.sigma_coefficients = tuple(number_tuple(row, f"sigma_coefficients[{k}]", (1, 8),
                                                     MAX_DEVICE_VALUE)
                                        for k, row in enumerate(rows))
        u = np.linspace(0.0, self.g_max / WAN_G_CHAR, 1001)
        for t, row in zip(times, self.sigma_coefficients):
            if polynomial(u, row).min() < 0:
                raise ValueError(f"sigma_coefficients at {t:g} s give a negative standard "
                                 f"deviation within [0, g_max]: {row}")
        check_config_numbers(self, non_negative=("read_sigma", "prog_noise_scale",
                                                 "relaxation_scale", "read_noise_scale"))
        check_config_flags(self, ("noise_idle_devices",))


class WanRRAMDevice(DeviceModel):
    """RRAM devices with state-dependent programming noise and relaxation (module docstring).

    ``WanRRAMDevice()`` has the published constants; keyword overrides change
    :class:`WanRRAMConfig` fields. Reads outside the characterised times raise ValueError.
    """

    def __init__(self, config: WanRRAMConfig | None = None, **overrides) -> None:
        self.config = build_config(WanRRAMConfig, config, overrides)

    def __repr__(self) -> str:
        return f"WanRRAMDevice({self.config!r})"

    @property
    def label(self) -> str:
        return "RRAM (Wan 2022)"

    @property
    def g_max(self) -> float:
        return float(self.config.g_max)

    @property
    def time_range(self) -> tuple[float, float]:
        """(first, last) characterised time, s: (1 s, 2 days) by default."""
        return self.config.sigma_times[0], self.config.sigma_times[-1]

    # ------------------------------------------------------------------ the fit
    def sigma(self, g_target: np.ndarray, k: int) -> np.ndarray:
        """sigma_k(u), µS (float32): spread around the target at the k-th measured time."""
        u = np.asarray(g_target, np.float32) / np.float32(WAN_G_CHAR)
        return polynomial(u, self.config.sigma_coefficients[k])

    def variance(self, g_target: np.ndarray, t: float) -> np.ndarray:
        """v(u, t): sigma_k(u)^2 interpolated linearly in ln t between the measured times
        (held at the ends), µS^2 (float32)."""
        times = self.config.sigma_times
        if len(times) == 1 or t <= times[0]:
            return self.sigma(g_target, 0) ** 2
        if t >= times[-1]:
            return self.sigma(g_target, len(times) - 1) ** 2
        k = int(np.searchsorted(times, t, side="right")) - 1
        w = np.float32((math.log(t) - math.log(times[k]))
                       / (math.log(times[k + 1]) - math.log(times[k])))
        lo, hi = self.sigma(g_target, k) ** 2, self.sigma(g_target, k + 1) ** 2
        return (lo + w * (hi - lo)).astype(np.float32)

    def relaxation_std(self, g_target: np.ndarray, t: float) -> np.ndarray:
        """r(u, t) = relaxation_scale sqrt(max(v(u, t) - sigma_1(u)^2, 0)), µS (float32)."""
        t = self.check_read_time(t)
        extra = self.variance(g_target, t) - self.sigma(g_target, 0) ** 2
        return (np.sqrt(np.maximum(extra, np.float32(0.0)))
                * np.float32(self.config.relaxation_scale)).astype(np.float32)

    # ------------------------------------------------------------------ the device
    def program(self, g_target: np.ndarray, rng: np.random.Generator) -> DeviceState:
        """G_prog = max(0, G_target + s_p sigma_1(u) xi); the relaxation draw xi_rel goes to
        ``DeviceState.nu``. Idle devices (target 0, unless ``noise_idle_devices``) stay at 0;
        every device draws the same random numbers either way."""
        c = self.config
        g = check_targets(g_target, self.g_max)
        active = np.ones(g.shape, bool) if c.noise_idle_devices else g > 0
        sigma = self.sigma(g, 0) * np.float32(c.prog_noise_scale)
        g_prog = np.where(active, program_conductances(g, sigma, rng), np.float32(0.0))
        xi_rel = rng.standard_normal(g.shape, dtype=np.float32)
        return DeviceState(g_target=g, g_prog=np.asarray(g_prog, np.float32),
                           nu=np.asarray(np.where(active, xi_rel, np.float32(0.0)), np.float32),
                           active=active)

    def drifted(self, state: DeviceState, t: float) -> np.ndarray:
        """G_drift(t) = max(0, G_prog + r(u, t) xi_rel) for active devices, µS (float32)."""
        t = self.check_read_time(t)
        check_state(state)
        relaxed = np.maximum(state.g_prog + self.relaxation_std(state.g_target, t) * state.nu,
                             np.float32(0.0))
        return np.asarray(np.where(state.active, relaxed, state.g_prog), np.float32)

    def read_noise_std(self, state: DeviceState, t: float) -> np.ndarray:
        """read_sigma x read_noise_scale for active devices, 0 for idle ones, µS (float32)."""
        self.check_read_time(t)
        check_state(state)
        std = np.float32(self.config.read_sigma * self.config.read_noise_scale)
        return np.asarray(np.where(state.active, std, np.float32(0.0)), np.float32)

    def read(self, state: DeviceState, t: float, rng: np.random.Generator) -> np.ndarray:
        """max(0, G_drift(t) + sigma_read xi) for active devices, µS (float32)."""
        drift = self.drifted(state, t)
        xi = rng.standard_normal(drift.shape, dtype=np.float32)
        return add_read_noise(drift, self.read_noise_std(state, t), xi, state.active)
