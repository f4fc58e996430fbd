"""The PCM device model of Nandakumar et al. (ICECS 2019), as used by Joshi et al. (Nat. Commun.
2020) and Le Gallo et al. (Nat. Electron. 2023): programming noise, per-device drift and 1/f
read noise.

Units: conductance in µS, time in seconds since programming ended. The equations are in the
docstrings of :mod:`~aimcsim.devices.programming_noise`, :mod:`~aimcsim.devices.drift` and
:mod:`~aimcsim.devices.read_noise` (and in docs/physics.md); every constant is a field of
:class:`PCMConfig`.

The numpy methods (shared with the Hermes model in :mod:`~aimcsim.devices.pcm_like`) are the
reference implementation. ``read`` goes through the fused Numba kernel
``aimcsim.kernels.devices.read_drifted`` when ``fast`` (default: the config's ``fast_read``); it
then draws the kernels' table normals with exact tails (kernels/table_normals.py: exactly
normal beyond +-2.998 sigma, the normal quantised to 65,536 equiprobable levels inside) instead of
numpy's exact Gaussians. Its speed against the numpy reference is measured in
benchmarks/README.md ("Device reads").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aimcsim.devices.drift import drift_nu_mean, drift_nu_std
from aimcsim.devices.pcm_like import PCMLikeDevice
from aimcsim.devices.programming_noise import programming_sigma
from aimcsim.devices.read_noise import read_noise_q
from aimcsim.devices.validation import (MAX_DEVICE_VALUE, as_number_tuple, check_config_flags,
                                        check_config_numbers)


@dataclass
class PCMConfig:
    """Constants of the PCM model (defaults: docs/physics.md sections 1-4).

    Attributes:
        g_max: conductance of the largest weight magnitude, µS.
        prog_coefficients: sigma_prog polynomial (c0, c1, c2), µS, fitted at g_max = 25 µS and
            scaled by g_max / 25.
        nu_mean_params: (a, b, lo, hi) of nu_mean(x) = clip(a ln x + b, lo, hi).
        nu_std_params: (a, b, lo, hi) of nu_std(x) = clip(a ln x + b, lo, hi).
        t0: drift reference time, s.
        read_q0, read_exponent, read_floor, read_cap: Q_s(x) = min(q0 / max(x^e, floor), cap).
        t_read: read duration in the 1/f integral, s (250 ns).
        prog_noise_scale: multiplies sigma_prog (0 turns programming noise off).
        drift_scale: multiplies every nu (0 turns drift off).
        read_noise_scale: multiplies sigma_read (0 turns read noise off).
        noise_idle_devices: False (default): a device whose target is exactly 0 µS is idle: it
            is not programmed and stays at 0 µS forever (no programming noise, drift or read
            noise). True: the reference toolkit's behaviour, which programs, drifts and
            read-noises it too and clamps it at 0, biasing every weight towards 0 by about
            0.4% of w_max.
        fast_read: ``read`` uses the fused Numba kernel (table normals with exact tails,
            kernels/table_normals.py) unless told otherwise; False uses numpy's exact
            Gaussian draws.
    """

    g_max: float = 25.0
    prog_coefficients: tuple[float, float, float] = (0.26348, 1.9650, -1.1731)
    nu_mean_params: tuple[float, float, float, float] = (-0.0155, 0.0244, 0.049, 0.1)
    nu_std_params: tuple[float, float, float, float] = (-0.0125, -0.0059, 0.008, 0.045)
    t0: float = 20.0
    read_q0: float = 0.0088
    read_exponent: float = 0.65
    read_floor: float = 1e-3
    read_cap: float = 0.2
    t_read: float = 250e-9
    prog_noise_scale: float = 1.0
    drift_scale: float = 1.0
    read_noise_scale: float = 1.0
    noise_idle_devices: bool = False
    fast_read: bool = True

    def __post_init__(self) -> None:
        self.prog_coefficients = as_number_tuple(self, "prog_coefficients", 3, MAX_DEVICE_VALUE)
        self.nu_mean_params = as_number_tuple(self, "nu_mean_params", 4, MAX_DEVICE_VALUE)
        self.nu_std_params = as_number_tuple(self, "nu_std_params", 4, MAX_DEVICE_VALUE)
        for name in ("nu_mean_params", "nu_std_params"):
            lo, hi = getattr(self, name)[2:]
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} clip bounds must satisfy 0 <= lo <= hi, got "
                                 f"lo={lo}, hi={hi}")
        check_config_numbers(self, positive=("g_max", "t0", "read_floor", "t_read"),
                             non_negative=("read_q0", "read_exponent", "read_cap",
                                           "prog_noise_scale", "drift_scale",
                                           "read_noise_scale"))
        if self.t0 <= self.t_read:
            raise ValueError(f"t0 ({self.t0} s) must exceed t_read ({self.t_read} s)")
        check_config_flags(self, ("noise_idle_devices", "fast_read"))


class PCMDevice(PCMLikeDevice):
    """PCM devices: programming noise, drift with a per-device exponent, 1/f read noise.

    ``PCMDevice()`` has the published defaults; ``PCMDevice(config)`` or
    ``PCMDevice(drift_scale=0)`` (keyword overrides of :class:`PCMConfig` fields) change them.
    Programming, drift and reads are those of :class:`~aimcsim.devices.pcm_like.PCMLikeDevice`.
    """

    config_class = PCMConfig

    @property
    def label(self) -> str:
        return "PCM (Nandakumar 2019)"

    @property
    def g_max(self) -> float:
        return float(self.config.g_max)

    @property
    def t0(self) -> float:
        return self.config.t0

    @property
    def t_read(self) -> float:
        return self.config.t_read

    def programming_sigma(self, g_target: np.ndarray) -> np.ndarray:
        """sigma_prog(x) = (c0 + c1 x + c2 x^2) g_max / 25 µS, x = G_target / g_max."""
        c = self.config
        return programming_sigma(g_target / np.float32(c.g_max), c.prog_coefficients, c.g_max)

    def drift_statistics(self, g_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(nu_mean(x), nu_std(x)), the clipped log-linear fits, x = G_target / g_max."""
        c = self.config
        x = g_target / np.float32(c.g_max)
        return drift_nu_mean(x, *c.nu_mean_params), drift_nu_std(x, *c.nu_std_params)

    def q_s(self, g_prog: np.ndarray) -> np.ndarray:
        """Q_s(x), x = G_prog / g_max (float32, dimensionless)."""
        c = self.config
        return read_noise_q(np.asarray(g_prog, np.float32) / np.float32(c.g_max), c.read_q0,
                            c.read_exponent, c.read_floor, c.read_cap)
