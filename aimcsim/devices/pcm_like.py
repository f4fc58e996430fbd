"""What the PCM device models share: state-dependent programming noise, power-law drift with a
per-device exponent, and 1/f read noise whose relative amplitude is fixed at programming.

Per device, with G_target in µS and t in seconds since programming ended:

    G_prog = max(0, G_target + s_p sigma_prog(G_target) xi)                  once
    nu = s_d |nu_mean(G_target) + nu_std(G_target) xi'|                      once
    G_drift(t) = G_prog ((t + t0) / t0)^(-nu)
    sigma_read(t) = s_r |G_drift(t)| Q_s(G_prog) sqrt(ln((t + t0 + t_read) / (2 t_read)))
    G_read = max(0, G_drift(t) + sigma_read(t) xi'')                         fresh at every read

(s_p, s_d, s_r: the config's ``prog_noise_scale``, ``drift_scale``, ``read_noise_scale``.)
A subclass supplies the fitted functions sigma_prog, (nu_mean, nu_std) and Q_s and the
constants t0 and t_read: :class:`~aimcsim.devices.pcm.PCMDevice` (Nandakumar et al. 2019) and
:class:`~aimcsim.devices.hermes.HermesPCMDevice` (Le Gallo et al. 2023). Programming, drift, the
numpy reads and the fused Numba read kernel (``aimcsim.kernels.devices``) are shared here, so
both models get the fast read.

Config fields every subclass's config has: ``prog_noise_scale``, ``drift_scale``,
``read_noise_scale``, ``noise_idle_devices``, ``fast_read`` (see
:class:`~aimcsim.devices.pcm.PCMConfig`).
"""
from __future__ import annotations

from abc import abstractmethod

import numpy as np

from aimcsim.devices.base import DeviceModel, DeviceState, build_config
from aimcsim.devices.drift import draw_drift_exponents, drift_factor, drift_log_ratio
from aimcsim.devices.programming_noise import program_conductances
from aimcsim.devices.read_noise import add_read_noise, read_time_factor
from aimcsim.devices.validation import check_state, check_targets


class PCMLikeDevice(DeviceModel):
    """Programming noise, drift with a per-device exponent, 1/f read noise (see the module).

    ``Device()`` has the published defaults; ``Device(config)`` or ``Device(drift_scale=0)``
    (keyword overrides of the config's fields) change them.
    """

    #: The config dataclass of the subclass.
    config_class: type

    def __init__(self, config=None, **overrides) -> None:
        self.config = build_config(self.config_class, config, overrides)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    # ------------------------------------------------------------------ the fitted model
    @property
    @abstractmethod
    def t0(self) -> float:
        """Drift reference time, s."""

    @property
    @abstractmethod
    def t_read(self) -> float:
        """Read duration of the 1/f noise integral, s."""

    @abstractmethod
    def programming_sigma(self, g_target: np.ndarray) -> np.ndarray:
        """Standard deviation of the programming error at targets ``g_target`` (µS), µS
        (before ``prog_noise_scale``)."""

    @abstractmethod
    def drift_statistics(self, g_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(nu_mean, nu_std) of the drift exponent at targets ``g_target`` (µS), before the
        folding nu = |nu_mean + nu_std xi| and before ``drift_scale``."""

    @abstractmethod
    def q_s(self, g_prog: np.ndarray) -> np.ndarray:
        """Relative 1/f read-noise amplitude Q_s at programmed conductances ``g_prog`` (µS),
        float32, dimensionless."""

    # ------------------------------------------------------------------ programming
    def program(self, g_target: np.ndarray, rng: np.random.Generator) -> DeviceState:
        """Program devices to ``g_target`` (µS, any shape): draws the programming noise, the
        drift exponents and precomputes Q_s (``DeviceState.read_q``). Draws the same random
        numbers for every device whether or not it is idle, so the idle-device option changes
        nothing else."""
        c = self.config
        g = check_targets(g_target, self.g_max)
        active = np.ones(g.shape, bool) if c.noise_idle_devices else g > 0
        sigma = self.programming_sigma(g) * np.float32(c.prog_noise_scale)
        g_prog = np.where(active, program_conductances(g, sigma, rng), np.float32(0.0))
        nu = draw_drift_exponents(*self.drift_statistics(g), rng)
        nu = np.where(active, nu * np.float32(c.drift_scale), np.float32(0.0))
        q = self.q_s(g_prog)
        return DeviceState(g_target=g, g_prog=np.asarray(g_prog, np.float32),
                           nu=np.asarray(nu, np.float32), active=active,
                           read_q=np.asarray(np.where(active, q, np.float32(0.0)), np.float32))

    def _q(self, state: DeviceState) -> np.ndarray:
        if state.read_q is not None:
            return np.asarray(state.read_q, np.float32)
        return np.where(state.active, self.q_s(state.g_prog), np.float32(0.0))

    # ------------------------------------------------------------------ reading
    def drifted(self, state: DeviceState, t: float) -> np.ndarray:
        """G_drift(t) = G_prog * ((t + t0) / t0)^(-nu), µS (float32), numpy."""
        t = self.check_read_time(t)
        check_state(state)
        return np.asarray(state.g_prog * drift_factor(state.nu, t, self.t0), np.float32)

    def read_noise_amplitude(self, t: float) -> float:
        """sqrt(ln((t + t0 + t_read) / (2 t_read))) x read_noise_scale: sigma_read / (|G| Q_s)."""
        return read_time_factor(t, self.t0, self.t_read) * self.config.read_noise_scale

    def read_noise_std(self, state: DeviceState, t: float) -> np.ndarray:
        """sigma_read(t) = |G_drift(t)| * Q_s * time factor, µS (float32; 0 for idle devices)."""
        t = self.check_read_time(t)
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

        ``fast`` (default ``config.fast_read``): True runs the fused Numba kernel with the
        table normals with exact tails (``kernels/table_normals.py``) of a stream seeded from
        ``rng``; False is the numpy reference with ``rng.standard_normal``. Both consume
        ``rng`` and are reproducible from it.
        """
        t = self.check_read_time(t)
        check_state(state)
        if not (self.config.fast_read if fast is None else fast):
            xi = rng.standard_normal(np.shape(state.g_prog), dtype=np.float32)
            return self.read_given_normals(state, t, xi)
        from aimcsim.kernels.devices import read_devices
        from aimcsim.kernels.rng import seed_from
        shape = np.shape(state.g_prog)
        out = np.empty(shape, np.float32)
        read_devices(np.ascontiguousarray(state.g_prog, np.float32).reshape(-1),
                     np.ascontiguousarray(state.nu, np.float32).reshape(-1),
                     np.ascontiguousarray(self._q(state), np.float32).reshape(-1),
                     np.ascontiguousarray(state.active, np.bool_).reshape(-1),
                     drift_log_ratio(t, self.t0), self.read_noise_amplitude(t),
                     np.uint64(seed_from(rng)), out.reshape(-1))
        return out
