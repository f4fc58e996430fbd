"""The device models' sampling in torch ops, on the tensors' device: the device-model noise of
hardware-aware training (``HardwareAwareConfig(noise_model="device")``) when the torch backend
runs without CPU kernels (on a GPU, or forced with ``set_backend(model, "torch")``).

The numpy device models of :mod:`aimcsim.devices` are the reference; the samplers here compute
the same equations (physics.md sections 2-4, units µS and seconds) with torch's generator:

- PCM (:class:`TorchPCM`): ``G_prog = max(0, G_T + sigma_prog(x) xi)``,
  ``nu = |nu_mean(x) + nu_std(x) xi'|``, ``G(t) = G_prog ((t + t0) / t0)^-nu``,
  ``G_read = max(0, G(t) + |G(t)| Q_s(x_prog) a(t) xi'')``;
- Gaussian (:class:`TorchGaussian`): ``G_prog = max(0, G_T + sigma_p xi)``,
  ``G_read = max(0, G_prog ((t + t0) / t0)^-nu + sigma_r xi')``.

Idle devices (target 0 µS) stay at 0 unless the config's ``noise_idle_devices``.
:func:`read_tile` maps a tile's weights onto differential pairs exactly as
:class:`~aimcsim.tiles.tile.AnalogTile` does, programs them, reads them at t and measures the
global drift compensation through the torch periphery. A device model without a sampler here
(:func:`register_torch_sampler` adds one) is sampled with its numpy model on the CPU, with a
warning, never silently.
"""
from __future__ import annotations

import functools
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from aimcsim.devices import DeviceModel, GaussianDevice, PCMDevice
from aimcsim.devices.drift import drift_log_ratio
from aimcsim.devices.programming_noise import REFERENCE_G_MAX
from aimcsim.devices.read_noise import read_time_factor
from aimcsim.nn.backends.torch_periphery import torch_analog_pass
from aimcsim.tiles.config import AnalogConfig
from aimcsim.tiles.tile import CALIBRATION_SEED


@dataclass
class TorchDeviceState:
    """Programmed devices as tensors (µS; all the same shape, on one device)."""

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


def _clip_log(x: torch.Tensor, a: float, b: float, lo: float, hi: float) -> torch.Tensor:
    """clip(a ln x + b, lo, hi) with ln 0 taken at 1e-30 (both clips at their upper bound)."""
    return torch.clamp(a * torch.log(torch.clamp_min(x, 1e-30)) + b, lo, hi)


class TorchPCM(TorchDeviceSampler):
    """:class:`~aimcsim.devices.PCMDevice` in torch ops (equations in the module docstring)."""

    def program(self, g_target: torch.Tensor) -> TorchDeviceState:
        c = self.config
        g = torch.clamp(g_target, 0.0, c.g_max)
        active = self._active(g)
        x = g / c.g_max
        c0, c1, c2 = c.prog_coefficients
        sigma = (c0 + c1 * x + c2 * x * x) * (c.g_max / REFERENCE_G_MAX) * c.prog_noise_scale
        zero = torch.zeros((), dtype=g.dtype, device=g.device)
        g_prog = torch.where(active, torch.clamp_min(g + sigma * torch.randn_like(g), 0), zero)
        nu = torch.abs(_clip_log(x, *c.nu_mean_params)
                       + _clip_log(x, *c.nu_std_params) * torch.randn_like(g))
        nu = torch.where(active, nu * c.drift_scale, zero)
        x_prog = torch.clamp_min(g_prog / c.g_max, 0)
        q = torch.clamp(c.read_q0 / torch.clamp_min(x_prog ** c.read_exponent, c.read_floor),
                        max=c.read_cap)
        return TorchDeviceState(g_prog, nu, active, torch.where(active, q, zero))

    def drifted(self, state: TorchDeviceState, t: float) -> torch.Tensor:
        return state.g_prog * torch.exp(-state.nu * drift_log_ratio(t, self.config.t0))

    def read(self, state: TorchDeviceState, t: float) -> torch.Tensor:
        c = self.config
        d = self.drifted(state, t)
        amplitude = read_time_factor(t, c.t0, c.t_read) * c.read_noise_scale
        noisy = torch.clamp_min(d + d.abs() * state.read_q * amplitude * torch.randn_like(d), 0)
        return torch.where(state.active, noisy, d)


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
        return TorchDeviceState(g_prog, nu, active)

    def drifted(self, state: TorchDeviceState, t: float) -> torch.Tensor:
        return state.g_prog * torch.exp(-state.nu * drift_log_ratio(t, self.config.t0))

    def read(self, state: TorchDeviceState, t: float) -> torch.Tensor:
        d = self.drifted(state, t)
        if self.config.read_sigma == 0:
            return d
        noisy = torch.clamp_min(d + self.config.read_sigma * torch.randn_like(d), 0)
        return torch.where(state.active, noisy, d)


#: device model class -> its torch sampler class; extended by :func:`register_torch_sampler`.
TORCH_SAMPLERS: dict[type, type[TorchDeviceSampler]] = {PCMDevice: TorchPCM,
                                                        GaussianDevice: TorchGaussian}
_WARNED: set[type] = set()


def register_torch_sampler(device_cls: type, sampler_cls: type[TorchDeviceSampler]) -> None:
    """Let hardware-aware training sample ``device_cls`` in torch ops on any device."""
    if not (isinstance(device_cls, type) and issubclass(device_cls, DeviceModel)):
        raise ValueError(f"device_cls must subclass DeviceModel, got {device_cls!r}")
    if not (isinstance(sampler_cls, type) and issubclass(sampler_cls, TorchDeviceSampler)):
        raise ValueError(f"sampler_cls must subclass TorchDeviceSampler, got {sampler_cls!r}")
    TORCH_SAMPLERS[device_cls] = sampler_cls


def torch_sampler(model: DeviceModel) -> TorchDeviceSampler | None:
    """The torch sampler of ``model``, or None (after one warning per device class) when its
    class has none: the caller then samples with the numpy model on the CPU."""
    sampler_cls = TORCH_SAMPLERS.get(type(model))
    if sampler_cls is None:
        if type(model) not in _WARNED:
            _WARNED.add(type(model))
            warnings.warn(f"{type(model).__name__} has no torch sampler (aimcsim.nn.backends."
                          f"torch_devices.register_torch_sampler); hardware-aware training "
                          f"samples it with its numpy model on the CPU", UserWarning,
                          stacklevel=3)
        return None
    return sampler_cls(model)


def calibration_inputs(config: AnalogConfig, in_size: int, device: torch.device
                       ) -> torch.Tensor:
    """The fixed calibration batch of drift compensation (as ``AnalogTile`` uses), made once
    per device and shape."""
    gdc = config.drift_compensation
    return _calibration_batch(gdc.calibration, gdc.calibration_vectors, in_size, str(device))


@functools.lru_cache(maxsize=64)
def _calibration_batch(calibration: str, vectors: int, in_size: int, device: str
                       ) -> torch.Tensor:
    if calibration == "one_hot":
        return torch.eye(in_size, dtype=torch.float32, device=device)
    rng = np.random.default_rng(CALIBRATION_SEED)
    x = rng.uniform(-1, 1, (vectors, in_size)).astype(np.float32)
    return torch.from_numpy(x).to(device)


def _calibration_readout(w_n: torch.Tensor, config: AnalogConfig) -> torch.Tensor:
    """Mean |y| of the calibration batch through the periphery, in ADC units: one value per
    output column (the tile's mean repeated, or each column's own)."""
    groups, rows, cols = w_n.shape
    x = calibration_inputs(config, groups * rows, w_n.device)

    def gemm(v: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ngr,grc->ngc", v.reshape(v.shape[0], groups, rows),
                            w_n).reshape(v.shape[0], groups * cols)
    y = torch_analog_pass(x, gemm, torch.ones(groups * cols, device=w_n.device),
                          config.periphery).abs()
    if config.drift_compensation.granularity == "tile":
        return y.mean().expand(groups * cols)
    return y.mean(dim=0)


def read_tile(weights: torch.Tensor, config: AnalogConfig, sampler: TorchDeviceSampler,
              t: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Program a tile's weights (G, r, c) and read it at ``t`` seconds, in torch ops.

    Returns:
        (W_n(t) (G, r, c): the read normalised weights (drifted only, for per-MVM read noise),
        w_max (G * c,), output scale w_max x alpha (G * c,)).
    """
    w = weights.detach().to(torch.float32)
    if config.mapping.weight_scaling == "tile":
        w_max = w.abs().max().expand(w.shape[0], 1, w.shape[2])
    else:
        w_max = w.abs().amax(dim=1, keepdim=True)
    divisor = torch.where(w_max > 0, w_max, torch.ones_like(w_max))
    g_max = sampler.g_max
    targets = torch.stack([torch.clamp_min(w, 0), torch.clamp_min(-w, 0)]) / divisor * g_max
    state = sampler.program(torch.clamp(targets, max=g_max))

    def normalised(at: float) -> torch.Tensor:
        if config.read_noise_sampling == "per_mvm":
            g = sampler.drifted(state, at)
        else:
            g = sampler.read(state, at)
        return (g[0] - g[1]) / g_max

    scale = w_max.reshape(-1)
    if config.drift_compensation.enabled:
        s0 = _calibration_readout(normalised(0.0), config)
        w_n = normalised(t)
        s_t = _calibration_readout(w_n, config)
        alpha = torch.where(s_t > 0, s0 / torch.where(s_t > 0, s_t, torch.ones_like(s_t)),
                            torch.ones_like(s_t))
        return w_n, scale, scale * alpha
    w_n = normalised(t)
    return w_n, scale, scale.clone()

