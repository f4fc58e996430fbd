"""The interface every device model implements: program once, then drift and read at any time.

Device models are small array-in, array-out classes. They know nothing of tiles, layers or torch:
a tile hands them an array of target conductances (µS) and a numpy ``Generator``, keeps the
returned :class:`DeviceState`, and later asks for the conductances at time ``t`` (seconds since
programming ended).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass
class DeviceState:
    """Programmed state of an array of devices (any shape, all arrays the same shape).

    Attributes:
        g_target: target conductances, µS (float32).
        g_prog: conductances right after programming (t = 0), µS (float32).
        nu: drift exponent of each device, dimensionless (float32; 0 for non-drifting devices).
        active: True where the device was programmed; False for an idle device left reset at
            0 µS (it then has no programming noise, no drift and no read noise).
        read_q: optional per-device read-noise amplitude (model-specific, e.g. PCM's Q_s),
            precomputed at programming so that reads are fast; None if the model has none.
    """

    g_target: np.ndarray
    g_prog: np.ndarray
    nu: np.ndarray
    active: np.ndarray
    read_q: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.g_prog.shape)


class DeviceModel(ABC):
    """A conductance device: programming noise, drift and read noise.

    Subclasses hold a dataclass config (every constant a field) in ``self.config`` and expose
    ``g_max`` (µS), the conductance that represents the largest weight magnitude.
    """

    config: object

    @property
    @abstractmethod
    def g_max(self) -> float:
        """Maximum target conductance, µS."""

    @abstractmethod
    def program(self, g_target: np.ndarray, rng: np.random.Generator) -> DeviceState:
        """Program devices to ``g_target`` (µS, finite, in [0, g_max]) once; draws the
        programming noise and every per-device constant (e.g. the drift exponent)."""

    @abstractmethod
    def drifted(self, state: DeviceState, t: float) -> np.ndarray:
        """Noise-free conductance at ``t`` >= 0 seconds after programming, µS (float32)."""

    @abstractmethod
    def read_noise_std(self, state: DeviceState, t: float) -> np.ndarray:
        """Standard deviation of one read at time ``t``, µS (float32; 0 for idle devices)."""

    @abstractmethod
    def read(self, state: DeviceState, t: float, rng: np.random.Generator) -> np.ndarray:
        """One noisy read of every device at time ``t``, µS (float32), clamped at >= 0."""

    def to_dict(self) -> dict:
        """JSON-serialisable description (``{"model": name, "config": {...}}``)."""
        from dataclasses import asdict
        return {"model": type(self).__name__, "config": asdict(self.config)}
