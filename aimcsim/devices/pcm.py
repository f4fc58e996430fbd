"""The PCM device model of Nandakumar et al. (ICECS 2019), as used by Joshi et al. (Nat. Commun.
2020) and Le Gallo et al. (Nat. Electron. 2023): programming noise, per-device drift and 1/f
read noise.

Units: conductance in µS, time in seconds since programming ended. The equations are in the
docstrings of :mod:`~aimcsim.devices.programming_noise`, :mod:`~aimcsim.devices.drift` and
:mod:`~aimcsim.devices.read_noise` (and in docs/physics.md); every constant is a field of
:class:`PCMConfig`.

The numpy methods of :class:`PCMDevice` are the reference implementation. ``read`` goes through
the fused Numba kernel ``aimcsim.kernels.devices.read_drifted`` when ``fast`` (default: the
config's ``fast_read``); it then draws table normals (kernels/rng.py) instead of numpy's exact
Gaussians, and is about 3x faster (benchmarks/README_devices.md).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from aimcsim.devices.base import DeviceModel, DeviceState
from aimcsim.devices.drift import (draw_drift_exponents, drift_factor, drift_log_ratio,
                                   drift_nu_mean, drift_nu_std)
from aimcsim.devices.programming_noise import program_conductances, programming_sigma
from aimcsim.devices.read_noise import add_read_noise, read_noise_q, read_time_factor
from aimcsim.devices.validation import (as_number_tuple, check_config_flags,
                                        check_config_numbers, check_state, check_targets)
from aimcsim.validation import check_time


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
        fast_read: ``read`` uses the fused Numba kernel (table normals, kernels/rng.py) unless
            told otherwise; False uses numpy's exact Gaussian draws.
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
        self.prog_coefficients = as_number_tuple(self, "prog_coefficients", 3)
        self.nu_mean_params = as_number_tuple(self, "nu_mean_params", 4)
        self.nu_std_params = as_number_tuple(self, "nu_std_params", 4)
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


class PCMDevice(DeviceModel):
    """PCM devices: programming noise, drift with a per-device exponent, 1/f read noise.

    ``PCMDevice()`` has the published defaults; ``PCMDevice(config)`` or
    ``PCMDevice(drift_scale=0)`` (keyword overrides of :class:`PCMConfig` fields) change them.
    """

    def __init__(self, config: PCMConfig | None = None, **overrides) -> None:
        if config is not None and not isinstance(config, PCMConfig):
            raise ValueError(f"config must be a PCMConfig, got {type(config).__name__}")
        if overrides:
            known = {f.name for f in fields(PCMConfig)}
            unknown = set(overrides) - known
            if unknown:
                raise ValueError(f"unknown PCMConfig fields {sorted(unknown)}; known: "
                                 f"{sorted(known)}")
            config = PCMConfig(**{**asdict(config or PCMConfig()), **overrides})
        self.config = config or PCMConfig()

    def __repr__(self) -> str:
        return f"PCMDevice({self.config!r})"

    @property
    def g_max(self) -> float:
        return float(self.config.g_max)

    # ------------------------------------------------------------------ programming
    def program(self, g_target: np.ndarray, rng: np.random.Generator) -> DeviceState:
        """Program devices to ``g_target`` (µS, any shape): draws the programming noise, the
        drift exponents and precomputes Q_s (``DeviceState.read_q``). Draws the same random
        numbers for every device whether or not it is idle, so the idle-device option changes
        nothing else."""
        c = self.config
        g = check_targets(g_target, self.g_max)
        active = np.ones(g.shape, bool) if c.noise_idle_devices else g > 0
        x = g / np.float32(c.g_max)
        sigma = programming_sigma(x, c.prog_coefficients, c.g_max) * np.float32(
            c.prog_noise_scale)
        g_prog = np.where(active, program_conductances(g, sigma, rng), np.float32(0.0))
        nu = draw_drift_exponents(drift_nu_mean(x, *c.nu_mean_params),
                                  drift_nu_std(x, *c.nu_std_params), rng)
        nu = np.where(active, nu * np.float32(c.drift_scale), np.float32(0.0))
        q = self.q_s(g_prog)
        return DeviceState(g_target=g, g_prog=np.asarray(g_prog, np.float32),
                           nu=np.asarray(nu, np.float32), active=active,
                           read_q=np.asarray(np.where(active, q, np.float32(0.0)), np.float32))

    def q_s(self, g_prog: np.ndarray) -> np.ndarray:
        """Q_s(x), x = G_prog / g_max (float32, dimensionless)."""
        c = self.config
        return read_noise_q(np.asarray(g_prog, np.float32) / np.float32(c.g_max), c.read_q0,
                            c.read_exponent, c.read_floor, c.read_cap)

    def _q(self, state: DeviceState) -> np.ndarray:
        if state.read_q is not None:
            return np.asarray(state.read_q, np.float32)
        return np.where(state.active, self.q_s(state.g_prog), np.float32(0.0))

    # ------------------------------------------------------------------ reading
    def drifted(self, state: DeviceState, t: float) -> np.ndarray:
        """G_drift(t) = G_prog * ((t + t0) / t0)^(-nu), µS (float32), numpy."""
        t = check_time(t)
        check_state(state)
        return np.asarray(state.g_prog * drift_factor(state.nu, t, self.config.t0), np.float32)

    def read_noise_amplitude(self, t: float) -> float:
        """sqrt(ln((t + t0 + t_read) / (2 t_read))) x read_noise_scale: sigma_read / (|G| Q_s)."""
        c = self.config
        return read_time_factor(t, c.t0, c.t_read) * c.read_noise_scale

    def read_noise_std(self, state: DeviceState, t: float) -> np.ndarray:
        """sigma_read(t) = |G_drift(t)| * Q_s * time factor, µS (float32; 0 for idle devices)."""
        t = check_time(t)
        std = (np.abs(self.drifted(state, t)) * self._q(state)
               * np.float32(self.read_noise_amplitude(t)))
        return np.asarray(np.where(state.active, std, np.float32(0.0)), np.float32)

    def read_given_normals(self, state: DeviceState, t: float, xi: np.ndarray) -> np.ndarray:
        """G_read at ``t`` for given standard-normal draws ``xi`` (one per device), µS float32:
        the deterministic part of :meth:`read` (common random numbers, tests)."""
        xi = np.asarray(xi, np.float32)
        if xi.shape != np.shape(state.g_prog):
            raise ValueError(f"xi must have the devices' shape {np.shape(state.g_prog)}, "
                             f"got {xi.shape}")
        return add_read_noise(self.drifted(state, t), self.read_noise_std(state, t), xi,
                              state.active)

    def read(self, state: DeviceState, t: float, rng: np.random.Generator,
             fast: bool | None = None) -> np.ndarray:
        """One noisy read of every device at ``t`` seconds after programming, µS (float32).

        ``fast`` (default ``config.fast_read``): True runs the fused Numba kernel with table
        normals of a stream seeded from ``rng``; False is the numpy reference with
        ``rng.standard_normal``. Both consume ``rng`` and are reproducible from it.
        """
        t = check_time(t)
        check_state(state)
        if not (self.config.fast_read if fast is None else fast):
            xi = rng.standard_normal(np.shape(state.g_prog), dtype=np.float32)
            return self.read_given_normals(state, t, xi)
        from aimcsim.kernels.devices import read_devices
        from aimcsim.kernels.rng import NORMAL_TABLE, seed_from
        shape = np.shape(state.g_prog)
        out = np.empty(shape, np.float32)
        read_devices(np.ascontiguousarray(state.g_prog, np.float32).reshape(-1),
                     np.ascontiguousarray(state.nu, np.float32).reshape(-1),
                     np.ascontiguousarray(self._q(state), np.float32).reshape(-1),
                     np.ascontiguousarray(state.active, np.bool_).reshape(-1),
                     drift_log_ratio(t, self.config.t0), self.read_noise_amplitude(t),
                     np.uint64(seed_from(rng)), NORMAL_TABLE, out.reshape(-1))
        return out
