"""A state-independent Gaussian device: the simplest model behind the :class:`DeviceModel`
interface, and the template for users' own models.

    G_prog = max(0, G_target + prog_sigma * xi)                 [µS], once per device
    G_drift(t) = G_prog * ((t + t0) / t0) ^ (-nu)                (one nu for every device; 0: none)
    G_read = max(0, G_drift(t) + read_sigma * xi')              [µS], xi' fresh at every read

Idle devices (target exactly 0 µS) stay at 0 unless ``noise_idle_devices``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aimcsim.devices.base import DeviceModel, DeviceState, build_config
from aimcsim.devices.drift import drift_factor
from aimcsim.devices.read_noise import add_read_noise
from aimcsim.devices.validation import (check_config_flags, check_config_numbers, check_state,
                                        check_targets)


@dataclass
class GaussianDeviceConfig:
    """Constants of :class:`GaussianDevice`.

    Attributes:
        g_max: conductance of the largest weight magnitude, µS.
        prog_sigma: programming-noise standard deviation, µS (>= 0).
        read_sigma: read-noise standard deviation, µS (>= 0).
        nu: drift exponent shared by every device (>= 0; 0: no drift).
        t0: drift reference time, s.
        noise_idle_devices: as in :class:`~aimcsim.devices.pcm.PCMConfig`: False leaves devices
            with target 0 µS at exactly 0 forever; True programs and noises them too.
    """

    g_max: float = 25.0
    prog_sigma: float = 0.5
    read_sigma: float = 0.2
    nu: float = 0.0
    t0: float = 20.0
    noise_idle_devices: bool = False

    def __post_init__(self) -> None:
        check_config_numbers(self, positive=("g_max", "t0"),
                             non_negative=("prog_sigma", "read_sigma", "nu"))
        check_config_flags(self, ("noise_idle_devices",))


class GaussianDevice(DeviceModel):
    """Devices with state-independent Gaussian programming and read noise (σ in µS)."""

    def __init__(self, config: GaussianDeviceConfig | None = None, **overrides) -> None:
        self.config = build_config(GaussianDeviceConfig, config, overrides)

    def __repr__(self) -> str:
        return f"GaussianDevice({self.config!r})"

    @property
    def g_max(self) -> float:
        return float(self.config.g_max)

    def program(self, g_target: np.ndarray, rng: np.random.Generator) -> DeviceState:
        """G_prog = max(0, G_target + prog_sigma * xi); nu = config.nu for active devices."""
        c = self.config
        g = check_targets(g_target, self.g_max)
        active = np.ones(g.shape, bool) if c.noise_idle_devices else g > 0
        xi = rng.standard_normal(g.shape, dtype=np.float32)
        g_prog = np.where(active, np.maximum(g + np.float32(c.prog_sigma) * xi, 0), 0)
        nu = np.where(active, np.float32(c.nu), np.float32(0.0))
        return DeviceState(g_target=g, g_prog=np.asarray(g_prog, np.float32),
                           nu=np.asarray(nu, np.float32), active=active)

    def drifted(self, state: DeviceState, t: float) -> np.ndarray:
        """G_prog * ((t + t0) / t0)^(-nu), µS (float32)."""
        t = self.check_read_time(t)
        check_state(state)
        return np.asarray(state.g_prog * drift_factor(state.nu, t, self.config.t0), np.float32)

    def read_noise_std(self, state: DeviceState, t: float) -> np.ndarray:
        """read_sigma for active devices, 0 for idle ones, µS (float32)."""
        self.check_read_time(t)
        check_state(state)
        return np.asarray(np.where(state.active, np.float32(self.config.read_sigma),
                                   np.float32(0.0)), np.float32)

    def read(self, state: DeviceState, t: float, rng: np.random.Generator) -> np.ndarray:
        """max(0, G_drift(t) + read_sigma * xi) for active devices, µS (float32)."""
        drift = self.drifted(state, t)
        if self.config.read_sigma == 0:
            return drift  # noiseless: no draw needed
        xi = rng.standard_normal(drift.shape, dtype=np.float32)
        return add_read_noise(drift, self.read_noise_std(state, t), xi, state.active)


def ideal_device(g_max: float = 25.0) -> GaussianDevice:
    """A device with no programming noise, no drift and no read noise."""
    return GaussianDevice(GaussianDeviceConfig(g_max=g_max, prog_sigma=0.0, read_sigma=0.0,
                                               nu=0.0))
