"""The interface every device model implements: program once, then drift and read at any time.

Device models are small array-in, array-out classes. They know nothing of tiles, layers or torch:
a tile hands them an array of target conductances (µS) and a numpy ``Generator``, keeps the
returned :class:`DeviceState`, and later asks for the conductances at time ``t`` (seconds since
programming ended).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields

import numpy as np

from aimcsim.validation import check_time


@dataclass
class DeviceState:
    """Programmed state of an array of devices (any shape, all arrays the same shape).

    Attributes:
        g_target: target conductances, µS (float32).
        g_prog: conductances right after programming (t = 0), µS (float32).
        nu: the per-device parameter of the conductance's evolution in time, drawn once at
            programming (float32; 0 for devices that do not change): the drift exponent of a
            PCM device (dimensionless), the standard-normal relaxation draw of an RRAM device.
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

    ``time_range`` is the span of read times, in seconds since programming, the model was
    characterised for; :meth:`check_read_time` raises a ValueError for any other time except
    t = 0, the end of programming (the read a tile takes for its drift-compensation
    reference), which every model accepts. Models without such limits keep (0, inf).
    """

    config: object
    #: (earliest, latest) read time in seconds that the model's data cover.
    time_range: tuple[float, float] = (0.0, math.inf)

    @property
    def label(self) -> str:
        """A short human-readable name for tables and plots."""
        return type(self).__name__

    def check_read_time(self, t: float, name: str = "t") -> float:
        """``t`` as a float: finite, >= 0 and 0 or within :attr:`time_range`, else ValueError."""
        t = check_time(t, name)
        lo, hi = self.time_range
        if t != 0 and not lo <= t <= hi:
            raise ValueError(
                f"{name} = {t:g} s is outside the read times {type(self).__name__} was "
                f"characterised for: t = 0 (end of programming) or {lo:g} s <= t <= {hi:g} s")
        return t

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


def build_config(config_cls: type, config, overrides: dict):
    """The config of a device constructor ``Device(config=None, **overrides)``: ``config`` (an
    instance of ``config_cls`` or None for the defaults) with ``overrides`` applied. A config
    of another type or an unknown field raises ValueError naming the known fields."""
    if config is not None and not isinstance(config, config_cls):
        raise ValueError(f"config must be a {config_cls.__name__}, got {type(config).__name__}")
    if overrides:
        known = {f.name for f in fields(config_cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown {config_cls.__name__} fields {sorted(unknown)}; known: "
                             f"{sorted(known)}")
        config = config_cls(**{**asdict(config or config_cls()), **overrides})
    return config or config_cls()
