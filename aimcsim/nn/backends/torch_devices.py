"""The device models' sampling in torch ops, on the tensors' device: the device-model noise of
hardware-aware training (``HardwareAwareConfig(noise_model="device")``) when the torch backend
runs without CPU kernels (on a GPU, or forced with ``set_backend(model, "torch")``).

The numpy device models of :mod:`aimcsim.devices` are the reference; each sampler here computes
the same equations (docs/physics.md, units µS and seconds) with torch's generator, reading
every constant from the numpy model's config (so a changed config changes both alike):

- PCM-like (:class:`TorchPCMLike`; :class:`TorchPCM` for :class:`~aimcsim.devices.PCMDevice`,
  :class:`TorchHermes` for :class:`~aimcsim.devices.HermesPCMDevice`):
  ``G_prog = max(0, G_T + s_p sigma_prog(G_T) xi)``, ``nu = s_d |nu_mean(G_T) + nu_std(G_T) xi'|``,
  ``G(t) = G_prog ((t + t0) / t0)^-nu``, ``G_read = max(0, G(t) + |G(t)| Q_s(G_prog) a(t) xi'')``
  with ``a(t) = s_r sqrt(ln((t + t0 + t_read) / (2 t_read)))``;
- RRAM (:class:`TorchRRAM` for :class:`~aimcsim.devices.WanRRAMDevice`):
  ``G_prog = max(0, G_T + s_p sigma_1(u) xi)``, ``G(t) = max(0, G_prog + r(u, t) xi_rel)``,
  ``G_read = max(0, G(t) + s_r read_sigma xi')``, r the relaxation spread;
- Gaussian (:class:`TorchGaussian`): ``G_prog = max(0, G_T + sigma_p xi)``,
  ``G_read = max(0, G_prog ((t + t0) / t0)^-nu + sigma_r xi')``.

Idle devices (target 0 µS) stay at 0 unless the config's ``noise_idle_devices``. Read times
are checked by the numpy model (``check_read_time``: e.g. the RRAM's 1 s to 2 days). A device
model without a sampler (:func:`register_torch_sampler` adds one) raises a ValueError naming
it: the torch path never copies to the CPU behind the user's back.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from aimcsim.devices import (DeviceModel, GaussianDevice, HermesPCMDevice, PCMDevice,
                             WanRRAMDevice)
from aimcsim.devices.drift import drift_log_ratio
from aimcsim.devices.programming_noise import REFERENCE_G_MAX
from aimcsim.devices.rram import WAN_G_CHAR

#: ln(1e-30): the clamped logarithm of the fits at G = 0 (as ``devices.drift.log_clamped``).
_LOG_FLOOR = 1e-30


@dataclass
class TorchDeviceState:
    """Programmed devices as tensors (µS; all the same shape, on one device).

    Attributes:
        g_target: target conductances, µS.
        g_prog: programmed conductances, µS.
        nu: the per-device random constant of the time dependence (PCM: drift exponent;
            RRAM: the relaxation draw xi_rel).
        active: devices with a non-zero target (or all, with ``noise_idle_devices``).
        read_q: PCM-like models: Q_s of each device (0 for idle ones), else None.
    """

    g_target: torch.Tensor
    g_prog: torch.Tensor
    nu: torch.Tensor
    active: torch.Tensor
    read_q: torch.Tensor | None = None


class TorchDeviceSampler(ABC):
    """The torch twin of one :class:`~aimcsim.devices.DeviceModel` instance."""

    def __init__(self, model: DeviceModel) -> None:
        self.model = model
        self.config = model.config

    @property
    def g_max(self) -> float:
        return float(self.model.g_max)

    @abstractmethod
    def program(self, g_target: torch.Tensor) -> TorchDeviceState:
        """Program devices to ``g_target`` (µS, in [0, g_max]); draws every random constant."""

    @abstractmethod
    def drifted(self, state: TorchDeviceState, t: float) -> torch.Tensor:
        """Noise-free conductance at ``t`` seconds after programming, µS."""

    @abstractmethod
    def read(self, state: TorchDeviceState, t: float) -> torch.Tensor:
        """One noisy read at ``t`` seconds after programming, µS, >= 0."""

    def _active(self, g: torch.Tensor) -> torch.Tensor:
        if self.config.noise_idle_devices:
            return torch.ones_like(g, dtype=torch.bool)
        return g > 0


def _with_read_noise(drift: torch.Tensor, std: torch.Tensor | float,
                     active: torch.Tensor) -> torch.Tensor:
    """max(0, G_drift + std xi) for active devices, G_drift for idle ones (µS)."""
    noisy = torch.clamp_min(drift + std * torch.randn_like(drift), 0)
    return torch.where(active, noisy, drift)


def torch_polynomial(u: torch.Tensor, coefficients) -> torch.Tensor:
    """c0 + c1 u + c2 u^2 + ... (Horner), as :func:`aimcsim.devices.fits.polynomial`."""
    out = torch.full_like(u, float(coefficients[-1]))
    for c in reversed(coefficients[:-1]):
        out = out * u + float(c)
    return out


def torch_clipped_log(u: torch.Tensor, a: float, b: float, lo: float, hi: float
                      ) -> torch.Tensor:
    """clip(a ln u + b, lo, hi) with ln 0 taken at 1e-30 (``devices.drift.log_clamped``)."""
    return torch.clamp(a * torch.log(torch.clamp_min(u, _LOG_FLOOR)) + b, lo, hi)


def torch_log_then_polynomial(u: torch.Tensor, params) -> torch.Tensor:
    """:func:`aimcsim.devices.fits.log_then_polynomial`: clip(a ln u + b, lo, hi) below
    u_split, c0 + c1 u + ... from it; ``params`` = (u_split, a, b, lo, hi, c0, c1, ...)."""
    split, a, b, lo, hi, *poly = params
    return torch.where(u < split, torch_clipped_log(u, a, b, lo, hi), torch_polynomial(u, poly))


class TorchPCMLike(TorchDeviceSampler):
    """:class:`~aimcsim.devices.pcm_like.PCMLikeDevice` in torch ops: programming, drift and
    1/f read noise shared; a subclass gives the fitted sigma_prog, (nu_mean, nu_std) and Q_s."""

    @abstractmethod
    def programming_sigma(self, g_target: torch.Tensor) -> torch.Tensor:
        """sigma_prog at targets ``g_target`` (µS), µS, before ``prog_noise_scale``."""

    @abstractmethod
    def drift_statistics(self, g_target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(nu_mean, nu_std) at targets ``g_target`` (µS), before folding and ``drift_scale``."""

    @abstractmethod
    def q_s(self, g_prog: torch.Tensor) -> torch.Tensor:
        """Relative read-noise amplitude Q_s at programmed conductances ``g_prog`` (µS)."""

    def program(self, g_target: torch.Tensor) -> TorchDeviceState:
        c = self.config
        g = torch.clamp(g_target, 0.0, self.g_max)
        active = self._active(g)
        zero = torch.zeros((), dtype=g.dtype, device=g.device)
        sigma = self.programming_sigma(g) * c.prog_noise_scale
        g_prog = torch.where(active, torch.clamp_min(g + sigma * torch.randn_like(g), 0), zero)
        nu_mean, nu_std = self.drift_statistics(g)
        nu = torch.abs(nu_mean + nu_std * torch.randn_like(g))
        nu = torch.where(active, nu * c.drift_scale, zero)
        q = torch.where(active, self.q_s(g_prog), zero)
        return TorchDeviceState(g, g_prog, nu, active, q)

    def drifted(self, state: TorchDeviceState, t: float) -> torch.Tensor:
        t = self.model.check_read_time(t)
        return state.g_prog * torch.exp(-state.nu * drift_log_ratio(t, self.model.t0))

    def read(self, state: TorchDeviceState, t: float) -> torch.Tensor:
        d = self.drifted(state, t)
        return _with_read_noise(d, d.abs() * state.read_q * self.model.read_noise_amplitude(t),
                                state.active)


class TorchPCM(TorchPCMLike):
    """:class:`~aimcsim.devices.PCMDevice` (Nandakumar et al. 2019), x = G / g_max:
    sigma_prog = (c0 + c1 x + c2 x^2) g_max / 25, nu fits clip(a ln x + b, lo, hi),
    Q_s(x) = min(q0 / max(x^e, floor), cap)."""

    def programming_sigma(self, g_target: torch.Tensor) -> torch.Tensor:
        c = self.config
        return torch_polynomial(g_target / c.g_max, c.prog_coefficients) * (
            c.g_max / REFERENCE_G_MAX)

    def drift_statistics(self, g_target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        x = g_target / c.g_max
        return torch_clipped_log(x, *c.nu_mean_params), torch_clipped_log(x, *c.nu_std_params)

    def q_s(self, g_prog: torch.Tensor) -> torch.Tensor:
        c = self.config
        x = torch.clamp_min(g_prog / c.g_max, 0)
        return torch.clamp(c.read_q0 / torch.clamp_min(x ** c.read_exponent, c.read_floor),
                           max=c.read_cap)


class TorchHermes(TorchPCMLike):
    """:class:`~aimcsim.devices.HermesPCMDevice` (Le Gallo et al. 2023), u = G / g_char:
    sigma_prog a cubic, nu_mean, nu_std and Q_s clipped-log-then-polynomial fits."""

    def _u(self, g: torch.Tensor) -> torch.Tensor:
        return g / self.model.g_char

    def programming_sigma(self, g_target: torch.Tensor) -> torch.Tensor:
        return torch_polynomial(self._u(g_target), self.config.fit().prog_coefficients)

    def drift_statistics(self, g_target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fit, u = self.config.fit(), self._u(g_target)
        return (torch_log_then_polynomial(u, fit.nu_mean_params),
                torch_log_then_polynomial(u, fit.nu_std_params))

    def q_s(self, g_prog: torch.Tensor) -> torch.Tensor:
        u = torch.clamp_min(self._u(g_prog), 0)
        return torch_log_then_polynomial(u, self.config.fit().read_q_params)


class TorchRRAM(TorchDeviceSampler):
    """:class:`~aimcsim.devices.WanRRAMDevice` (Wan et al. 2022), u = G_target / 40 µS:
    sigma_k(u) polynomials at the measured times, relaxation r(u, t) =
    s_rel sqrt(max(v(u, t) - sigma_1(u)^2, 0)) with v interpolated linearly in ln t."""

    def _sigma(self, g_target: torch.Tensor, k: int) -> torch.Tensor:
        return torch_polynomial(g_target / WAN_G_CHAR, self.config.sigma_coefficients[k])

    def _variance(self, g_target: torch.Tensor, t: float) -> torch.Tensor:
        times = self.config.sigma_times
        if len(times) == 1 or t <= times[0]:
            return self._sigma(g_target, 0) ** 2
        if t >= times[-1]:
            return self._sigma(g_target, len(times) - 1) ** 2
        k = max(i for i, tk in enumerate(times) if tk <= t)
        w = ((math.log(t) - math.log(times[k]))
             / (math.log(times[k + 1]) - math.log(times[k])))
        lo, hi = self._sigma(g_target, k) ** 2, self._sigma(g_target, k + 1) ** 2
        return lo + w * (hi - lo)

    def relaxation_std(self, g_target: torch.Tensor, t: float) -> torch.Tensor:
        """r(u, t), µS."""
        t = self.model.check_read_time(t)
        extra = self._variance(g_target, t) - self._sigma(g_target, 0) ** 2
        return torch.sqrt(torch.clamp_min(extra, 0)) * self.config.relaxation_scale

    def program(self, g_target: torch.Tensor) -> TorchDeviceState:
        c = self.config
        g = torch.clamp(g_target, 0.0, self.g_max)
        active = self._active(g)
        zero = torch.zeros((), dtype=g.dtype, device=g.device)
        sigma = self._sigma(g, 0) * c.prog_noise_scale
        g_prog = torch.where(active, torch.clamp_min(g + sigma * torch.randn_like(g), 0), zero)
        xi_rel = torch.where(active, torch.randn_like(g), zero)
        return TorchDeviceState(g, g_prog, xi_rel, active)

    def drifted(self, state: TorchDeviceState, t: float) -> torch.Tensor:
        relaxed = torch.clamp_min(
            state.g_prog + self.relaxation_std(state.g_target, t) * state.nu, 0)
        return torch.where(state.active, relaxed, state.g_prog)

    def read(self, state: TorchDeviceState, t: float) -> torch.Tensor:
        d = self.drifted(state, t)
        return _with_read_noise(d, self.config.read_sigma * self.config.read_noise_scale,
                                state.active)


class TorchGaussian(TorchDeviceSampler):
    """:class:`~aimcsim.devices.GaussianDevice` in torch ops."""

    def program(self, g_target: torch.Tensor) -> TorchDeviceState:
        c = self.config
        g = torch.clamp(g_target, 0.0, c.g_max)
        active = self._active(g)
        zero = torch.zeros((), dtype=g.dtype, device=g.device)
        g_prog = torch.where(active, torch.clamp_min(g + c.prog_sigma * torch.randn_like(g), 0),
                             zero)
        nu = torch.where(active, torch.full_like(g, c.nu), zero)
        return TorchDeviceState(g, g_prog, nu, active)

    def drifted(self, state: TorchDeviceState, t: float) -> torch.Tensor:
        t = self.model.check_read_time(t)
        return state.g_prog * torch.exp(-state.nu * drift_log_ratio(t, self.config.t0))

    def read(self, state: TorchDeviceState, t: float) -> torch.Tensor:
        d = self.drifted(state, t)
        if self.config.read_sigma == 0:
            return d
        return _with_read_noise(d, self.config.read_sigma, state.active)


#: device model class -> its torch sampler class; extended by :func:`register_torch_sampler`.
TORCH_SAMPLERS: dict[type, type[TorchDeviceSampler]] = {
    PCMDevice: TorchPCM, HermesPCMDevice: TorchHermes, WanRRAMDevice: TorchRRAM,
    GaussianDevice: TorchGaussian}


def register_torch_sampler(device_cls: type, sampler_cls: type[TorchDeviceSampler]) -> None:
    """Let hardware-aware training sample ``device_cls`` in torch ops on any device."""
    if not (isinstance(device_cls, type) and issubclass(device_cls, DeviceModel)):
        raise ValueError(f"device_cls must subclass DeviceModel, got {device_cls!r}")
    if not (isinstance(sampler_cls, type) and issubclass(sampler_cls, TorchDeviceSampler)):
        raise ValueError(f"sampler_cls must subclass TorchDeviceSampler, got {sampler_cls!r}")
    TORCH_SAMPLERS[device_cls] = sampler_cls


def torch_sampler(model: DeviceModel) -> TorchDeviceSampler:
    """The torch sampler of ``model``; a ValueError naming the model's class when it has none
    (register one, or train on CPU tensors with the default backend, which samples the numpy
    model)."""
    sampler_cls = TORCH_SAMPLERS.get(type(model))
    if sampler_cls is None:
        raise ValueError(
            f"{type(model).__name__} has no torch sampler, so the torch backend cannot sample "
            f"it on the tensors' device; register one with aimcsim.nn.backends.torch_devices."
            f"register_torch_sampler, or train on CPU tensors with the 'auto' backend (numpy "
            f"device model); known: {sorted(c.__name__ for c in TORCH_SAMPLERS)}")
    return sampler_cls(model)
