"""A state-independent Gaussian device: the simplest model behind the same interface, and the
template for users' own models.

    G_prog = max(0, G_target + prog_sigma * xi)                     [µS]
    G_drift(t) = G_prog * ((t + t0) / t0) ^ (-nu)                   (one nu for every device)
    G_read = max(0, G_drift(t) + read_sigma * xi')                  [µS]
Idle devices (target exactly 0 µS) stay at 0 unless ``noise_idle_devices``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aimcsim.devices.base import DeviceModel, DeviceState
from aimcsim.devices.drift import drift_factor
from aimcsim.devices.validation import check_config_numbers, check_targets
from aimcsim.validation import check_time


@dataclass
class GaussianDeviceConfig:
    """Attributes: g_max (µS); prog_sigma, read_sigma (µS, >= 0); nu (drift exponent, >= 0);
    t0 (s); noise_idle_devices (see PCMConfig)."""

    g_max: float = 25.0
    prog_sigma: float = 0.5
    read_sigma: float = 0.2
    nu: float = 0.0
    t0: float = 20.0
    noise_idle_devices: bool = False

    def __post_init__(self) -> None:
        check_config_numbers(self, positive=("g_max", "t0"),
                             non_negative=("prog_sigma", "read_sigma", "nu"))


class GaussianDevice(DeviceModel):
    """Devices with state-independent Gaussian programming and read noise."""

    def __init__(self, config: GaussianDeviceConfig | None = None) -> None:
        if config is not None and not isinstance(config, GaussianDeviceConfig):
            raise ValueError(f"config must be a GaussianDeviceConfig, got "
                             f"{type(config).__name__}")
        self.config = config or GaussianDeviceConfig()

    @property
    def g_max(self) -> float:
        return float(self.config.g_max)

    def program(self, g_target: np.ndarray, rng: np.random.Generator) -> DeviceState:
        c = self.config
        g = check_targets(g_target, self.g_max)
        active = np.ones(g.shape, bool) if c.noise_idle_devices else g > 0
        noise = rng.standard_normal(g.shape, dtype=np.float32) * np.float32(c.prog_sigma)
        g_prog = np.where(active, np.maximum(g + noise, 0), 0).astype(np.float32)
        nu = np.where(active, np.float32(c.nu), 0).astype(np.float32)
        return DeviceState(g_target=g, g_prog=g_prog, nu=nu, active=active)

    def drifted(self, state: DeviceState, t: float) -> np.ndarray:
        t = check_time(t)
        return (state.g_prog * drift_factor(state.nu, t, self.config.t0)).astype(np.float32)

    def read_noise_std(self, state: DeviceState, t: float) -> np.ndarray:
        check_time(t)
        return np.where(state.active, np.float32(self.config.read_sigma), 0).astype(np.float32)

    def read(self, state: DeviceState, t: float, rng: np.random.Generator) -> np.ndarray:
        drift = self.drifted(state, t)
        if self.config.read_sigma == 0:
            return drift
        noisy = drift + self.config.read_sigma * rng.standard_normal(drift.shape,
                                                                     dtype=np.float32)
        return np.where(state.active, np.maximum(noisy, 0), drift).astype(np.float32)


def ideal_device(g_max: float = 25.0) -> GaussianDevice:
    """A device with no programming noise, no drift and no read noise."""
    return GaussianDevice(GaussianDeviceConfig(g_max=g_max, prog_sigma=0.0, read_sigma=0.0,
                                               nu=0.0))
