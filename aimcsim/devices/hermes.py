"""The PCM of IBM's Hermes 64-core chip (Le Gallo et al., Nat. Electron. 6:680, 2023): the
statistical model of Nandakumar et al. (2019) refitted on the chip's own devices, for a weight
sign stored on one PCM device or on two (G+ = G+_1 + G+_2, the chip's unit cell).

The fits are functions of u = G / g_char, the conductance relative to the largest one
characterised (g_char = 10.35 µS for one device, 20.7 µS for the sum of two). The published
constants, per variant, are in :data:`HERMES_FITS`; with ``g_max`` below g_char a weight uses
only part of the characterised range, and the fits are evaluated at the physical conductance.

    sigma_prog(u) = p0 + p1 u + p2 u^2 + p3 u^3                                      [µS]
    nu_mean(u)  = clip(a ln u + b, lo, hi) for u < u_split, else c0 + c1 u + c2 u^2
    nu_std(u)   = the same form with its own constants
    Q_s(u)      = clip(a ln u + b, lo, hi) for u < u_split, else c0 + c1 u + c2 u^2 + c3 u^3

with u = G_target / g_char for sigma_prog, nu_mean and nu_std and u = G_prog / g_char for Q_s.
Programming, drift (t0 = 200 s for one device, 300 s for two: the first read after
programming) and the 1/f read noise (t_read = 512 ns) are those of
:class:`~aimcsim.devices.pcm_like.PCMLikeDevice`, including the fused Numba read.

Two devices per sign: the published two-device fits describe the *sum* of the pair as the chip
programs it (jointly, with the method of Vasilopoulos et al., IEEE TED 2023), so its programming
error (1.09 µS at u = 1) is well below that of two independently programmed devices
(sqrt(2) x 1.01 = 1.42 µS), and its drift-exponent spread is 0.71 to 0.87 of one device's.
The model treats the pair as one conductance of range 20.7 µS: the tile maps the largest
weight to g_max = 20.7 µS and needs nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from aimcsim.devices.fits import log_then_polynomial, polynomial
from aimcsim.devices.pcm_like import PCMLikeDevice
from aimcsim.devices.validation import (MAX_DEVICE_VALUE, as_number_tuple, check_config_flags,
                                        check_config_numbers)
from aimcsim.validation import check_float, check_int

#: Largest conductance characterised for one device per sign, µS.
SINGLE_DEVICE_G_CHAR = 10.35


@dataclass(frozen=True)
class HermesFit:
    """The published constants of one variant (docs/physics.md, "Hermes PCM").

    Attributes:
        g_char: largest characterised conductance of a sign, µS (the fits' u = 1).
        t0: drift reference time (first read after programming), s.
        prog_coefficients: (p0, p1, p2, p3) of sigma_prog(u), µS.
        nu_mean_params, nu_std_params: (u_split, a, b, lo, hi, c0, c1, c2).
        read_q_params: (u_split, a, b, lo, hi, c0, c1, c2, c3).
    """

    g_char: float
    t0: float
    prog_coefficients: tuple[float, ...]
    nu_mean_params: tuple[float, ...]
    nu_std_params: tuple[float, ...]
    read_q_params: tuple[float, ...]


_NU_MEAN = (0.0945, -0.0387, -0.0182, 0.0720, 0.13, 0.0736, -0.0126, -0.0436)
#: devices per sign -> published fit (Le Gallo et al. 2023, as fitted in aihwkit's
#: HermesNoiseModel documentation; the mean drift exponent is the same for both variants).
HERMES_FITS: dict[int, HermesFit] = {
    1: HermesFit(g_char=SINGLE_DEVICE_G_CHAR, t0=200.0,
                 prog_coefficients=(0.15781817, 2.32443916, -2.16310839, 0.68841818),
                 nu_mean_params=_NU_MEAN,
                 nu_std_params=(0.3039, -0.0120, -0.0023, 0.0124, 0.04, 0.0104, 0.0116,
                                -0.0165),
                 read_q_params=(0.1591, -0.0078, 0.0038, 0.0179, 0.04, 0.0088, 0.0768,
                                -0.1352, 0.0664)),
    2: HermesFit(g_char=2 * SINGLE_DEVICE_G_CHAR, t0=300.0,
                 prog_coefficients=(0.16603222, 4.71806468, -8.48101252, 4.68961419),
                 nu_mean_params=_NU_MEAN,
                 nu_std_params=(0.3055, -0.0117, -0.0057, 0.0091, 0.04, 0.0073, 0.0093,
                                -0.0118),
                 read_q_params=(0.16, -0.0117, -0.0069, 0.015, 0.04, 0.0123, 0.0211, -0.0280,
                                0.0069)),
}
#: Length of each piecewise parameter tuple.
_PARAM_LENGTHS = {"nu_mean_params": 8, "nu_std_params": 8, "read_q_params": 9}


@dataclass
class HermesPCMConfig:
    """Constants of :class:`HermesPCMDevice`; None takes the published value of the variant.

    Attributes:
        devices_per_sign: 1 or 2 PCM devices per weight sign (the chip's unit cell has 2).
        g_max: conductance of the largest weight magnitude, µS, at most the characterised
            maximum g_char (10.35 µS x devices_per_sign); None: g_char.
        t0: drift reference time, s; None: 200 s (one device) or 300 s (two).
        t_read: read duration in the 1/f integral, s (512 ns).
        prog_coefficients: (p0, p1, ...) of sigma_prog(u), µS; None: published.
        nu_mean_params, nu_std_params: (u_split, a, b, lo, hi, c0, c1, c2); None: published.
        read_q_params: (u_split, a, b, lo, hi, c0, c1, c2, c3); None: published.
        prog_noise_scale, drift_scale, read_noise_scale: multiply sigma_prog, nu and
            sigma_read (0 switches a mechanism off).
        noise_idle_devices, fast_read: as in :class:`~aimcsim.devices.pcm.PCMConfig`.
    """

    devices_per_sign: int = 2
    g_max: float | None = None
    t0: float | None = None
    t_read: float = 512e-9
    prog_coefficients: tuple[float, ...] | None = None
    nu_mean_params: tuple[float, ...] | None = None
    nu_std_params: tuple[float, ...] | None = None
    read_q_params: tuple[float, ...] | None = None
    prog_noise_scale: float = 1.0
    drift_scale: float = 1.0
    read_noise_scale: float = 1.0
    noise_idle_devices: bool = False
    fast_read: bool = True

    def __post_init__(self) -> None:
        self.devices_per_sign = check_int(self.devices_per_sign, "devices_per_sign", 1, 2)
        g_char = HERMES_FITS[self.devices_per_sign].g_char
        self.g_max = check_float(self.g_max, "g_max", 0, g_char, low_open=True,
                                 allow_none=True)
        self.t0 = check_float(self.t0, "t0", 0, MAX_DEVICE_VALUE, low_open=True,
                              allow_none=True)
        if self.prog_coefficients is not None:
            self.prog_coefficients = as_number_tuple(self, "prog_coefficients", (1, 8),
                                                     MAX_DEVICE_VALUE)
        for name, size in _PARAM_LENGTHS.items():
            if getattr(self, name) is not None:
                setattr(self, name, as_number_tuple(self, name, size, MAX_DEVICE_VALUE))
                lo, hi = getattr(self, name)[3:5]
                if not 0 <= lo <= hi:
                    raise ValueError(f"{name} clip bounds must satisfy 0 <= lo <= hi, got "
                                     f"lo={lo}, hi={hi}")
        check_config_numbers(self, positive=("t_read",),
                             non_negative=("prog_noise_scale", "drift_scale",
                                           "read_noise_scale"))
        if self.fit().t0 <= self.t_read:
            raise ValueError(f"t0 ({self.fit().t0} s) must exceed t_read ({self.t_read} s)")
        check_config_flags(self, ("noise_idle_devices", "fast_read"))

    def fit(self) -> HermesFit:
        """The published fit of ``devices_per_sign`` with this config's explicit values."""
        published = HERMES_FITS[self.devices_per_sign]
        explicit = {f.name: getattr(self, f.name) for f in fields(HermesFit)
                    if f.name != "g_char" and getattr(self, f.name) is not None}
        return replace(published, **explicit)


class HermesPCMDevice(PCMLikeDevice):
    """PCM devices of the Hermes chip, one or two per weight sign (see the module docstring).

    ``HermesPCMDevice()`` is the chip's two-device unit cell with the published constants;
    ``HermesPCMDevice(devices_per_sign=1)`` one device per sign. A ``g_max`` above the
    characterised range raises ValueError.
    """

    config_class = HermesPCMConfig

    @property
    def label(self) -> str:
        n = self.config.devices_per_sign
        return f"Hermes PCM, {n} device{'s' if n > 1 else ''} per sign"

    @property
    def g_char(self) -> float:
        """Largest characterised conductance of a sign, µS (u = 1 of the fits)."""
        return HERMES_FITS[self.config.devices_per_sign].g_char

    @property
    def g_max(self) -> float:
        return float(self.config.g_max if self.config.g_max is not None else self.g_char)

    @property
    def t0(self) -> float:
        return self.config.fit().t0

    @property
    def t_read(self) -> float:
        return self.config.t_read

    def _u(self, g: np.ndarray) -> np.ndarray:
        return np.asarray(g, np.float32) / np.float32(self.g_char)

    def programming_sigma(self, g_target: np.ndarray) -> np.ndarray:
        """sigma_prog(u) = p0 + p1 u + p2 u^2 + p3 u^3 µS, u = G_target / g_char."""
        return polynomial(self._u(g_target), self.config.fit().prog_coefficients)

    def drift_statistics(self, g_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(nu_mean(u), nu_std(u)), the piecewise fits, u = G_target / g_char."""
        fit, u = self.config.fit(), self._u(g_target)
        return (log_then_polynomial(u, fit.nu_mean_params),
                log_then_polynomial(u, fit.nu_std_params))

    def q_s(self, g_prog: np.ndarray) -> np.ndarray:
        """Q_s(u), u = G_prog / g_char (float32, dimensionless)."""
        u = np.maximum(self._u(g_prog), np.float32(0.0))
        return log_then_polynomial(u, self.config.fit().read_q_params).astype(np.float32)

