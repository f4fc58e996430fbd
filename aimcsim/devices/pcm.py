"""The PCM device model of Nandakumar et al. (ICECS 2019), as used by Joshi et al. (Nat. Commun.
2020) and IBM's aihwkit: programming noise, per-device drift and 1/f read noise.

Units: conductance in µS, time in seconds since programming ended. The equations are in the
docstrings of :mod:`programming_noise`, :mod:`drift` and :mod:`read_noise`; every constant is a
field of :class:`PCMConfig`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aimcsim.devices.base import DeviceModel, DeviceState
from aimcsim.devices.drift import draw_drift_exponents, drift_factor, drift_nu_mean, drift_nu_std
from aimcsim.devices.programming_noise import program_conductances, programming_sigma
from aimcsim.devices.read_noise import read_noise_q, read_time_factor
from aimcsim.devices.validation import check_config_numbers, check_targets
from aimcsim.validation import check_time


@dataclass
class PCMConfig:
    """Constants of the PCM model (defaults: physics.md sections 1-4).

    Attributes:
        g_max: conductance of the largest weight magnitude, µS.
        prog_coefficients: sigma_prog polynomial (c0, c1, c2) in µS at g_max = 25 µS.
        nu_mean_params: (a, b, lo, hi) of nu_mean = clip(a ln x + b, lo, hi).
        nu_std_params: (a, b, lo, hi) of nu_std = clip(a ln x + b, lo, hi).
        t0: drift reference time, s.
        read_q0, read_exponent, read_floor, read_cap: Q_s = min(q0 / max(x^e, floor), cap).
        t_read: read duration of the 1/f integral, s (250 ns).
        prog_noise_scale: multiplies sigma_prog (0 turns programming noise off).
        drift_scale: multiplies every nu (0 turns drift off).
        read_noise_scale: multiplies sigma_read (0 turns read noise off).
        noise_idle_devices: False (default): a device whose target is exactly 0 µS is idle, is
            not programmed and keeps 0 µS forever. True: the reference toolkit's behaviour, which
            programs, drifts and read-noises it too and clamps it at 0, biasing every weight
            towards 0 by about 0.4% of w_max.
        fast_read: read through the fused Numba kernel (table normals, see kernels/rng.py);
            False uses numpy's exact Gaussian draws.
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
        self.prog_coefficients = tuple(float(v) for v in self.prog_coefficients)
        self.nu_mean_params = tuple(float(v) for v in self.nu_mean_params)
        self.nu_std_params = tuple(float(v) for v in self.nu_std_params)
        for name, size in (("prog_coefficients", 3), ("nu_mean_params", 4),
                           ("nu_std_params", 4)):
            if len(getattr(self, name)) != size:
                raise ValueError(f"{name} must have {size} numbers, got {getattr(self, name)}")
        check_config_numbers(self, positive=("g_max", "t0", "read_q0", "read_floor", "read_cap",
                                             "t_read"),
                             non_negative=("read_exponent", "prog_noise_scale", "drift_scale",
                                           "read_noise_scale"))


class PCMDevice(DeviceModel):
    """PCM devices: programming noise, drift with a per-device exponent, 1/f read noise."""

    def __init__(self, config: PCMConfig | None = None, **overrides) -> None:
        if config is not None and not isinstance(config, PCMConfig):
            raise ValueError(f"config must be a PCMConfig, got {type(config).__name__}")
        if overrides:
            from dataclasses import asdict, fields
            known = {f.name for f in fields(PCMConfig)}
            unknown = set(overrides) - known
            if unknown:
                raise ValueError(f"unknown PCMConfig fields {sorted(unknown)}; known: "
                                 f"{sorted(known)}")
            config = PCMConfig(**{**asdict(config or PCMConfig()), **overrides})
        self.config = config or PCMConfig()

    @property
    def g_max(self) -> float:
        return float(self.config.g_max)

    def program(self, g_target: np.ndarray, rng: np.random.Generator) -> DeviceState:
        c = self.config
        g = check_targets(g_target, self.g_max)
        active = np.ones(g.shape, bool) if c.noise_idle_devices else g > 0
        x = g / np.float32(c.g_max)
        sigma = programming_sigma(x, c.prog_coefficients, c.g_max) * c.prog_noise_scale
        g_prog = np.where(active, program_conductances(g, sigma.astype(np.float32), rng), 0.0)
        nu = draw_drift_exponents(drift_nu_mean(x, *c.nu_mean_params).astype(np.float32),
                                  drift_nu_std(x, *c.nu_std_params).astype(np.float32), rng)
        nu = np.where(active, nu * np.float32(c.drift_scale), 0.0).astype(np.float32)
        q = read_noise_q(g_prog / np.float32(c.g_max), c.read_q0, c.read_exponent, c.read_floor,
                         c.read_cap)
        return DeviceState(g_target=g, g_prog=g_prog.astype(np.float32), nu=nu, active=active,
                           read_q=np.where(active, q, 0.0).astype(np.float32))

    def _q(self, state: DeviceState) -> np.ndarray:
        if state.read_q is not None:
            return state.read_q
        c = self.config
        return read_noise_q(state.g_prog / np.float32(c.g_max), c.read_q0, c.read_exponent,
                            c.read_floor, c.read_cap) * state.active

    def drifted(self, state: DeviceState, t: float) -> np.ndarray:
        t = check_time(t)
        return (state.g_prog * drift_factor(state.nu, t, self.config.t0)).astype(np.float32)

    def read_noise_std(self, state: DeviceState, t: float) -> np.ndarray:
        t = check_time(t)
        c = self.config
        factor = read_time_factor(t, c.t0, c.t_read) * c.read_noise_scale
        std = np.abs(self.drifted(state, t)) * self._q(state) * np.float32(factor)
        return np.where(state.active, std, 0.0).astype(np.float32)

    def read(self, state: DeviceState, t: float, rng: np.random.Generator,
             fast: bool | None = None) -> np.ndarray:
        t = check_time(t)
        c = self.config
        if fast if fast is not None else c.fast_read:
            from aimcsim.kernels.devices import read as read_drifted
            from aimcsim.kernels.rng import NORMAL_TABLE, seed_from
            out = np.empty(state.g_prog.size, np.float32)
            read_drifted(state.g_prog.reshape(-1), state.nu.reshape(-1),
                         np.ascontiguousarray(self._q(state), np.float32).reshape(-1),
                         state.active.reshape(-1), float(np.log((t + c.t0) / c.t0)),
                         read_time_factor(t, c.t0, c.t_read), float(c.read_noise_scale),
                         np.uint64(seed_from(rng)), NORMAL_TABLE, out)
            return out.reshape(state.g_prog.shape)
        drift = self.drifted(state, t)
        std = self.read_noise_std(state, t)
        noisy = drift + std * rng.standard_normal(drift.shape, dtype=np.float32)
        return np.where(state.active, np.maximum(noisy, 0.0), drift).astype(np.float32)
