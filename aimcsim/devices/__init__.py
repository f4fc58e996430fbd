"""Device physics: conductance devices as small array-in, array-out models (numpy, no torch).

- :mod:`aimcsim.devices.programming_noise`, :mod:`aimcsim.devices.drift`,
  :mod:`aimcsim.devices.read_noise`: the three PCM mechanisms, one file each;
- :class:`PCMDevice` composes them; :class:`GaussianDevice` is the simplest alternative;
- :func:`register_device` adds a user model to the JSON registry.
"""
from __future__ import annotations

from dataclasses import fields

from aimcsim.devices.base import DeviceModel, DeviceState
from aimcsim.devices.gaussian import GaussianDevice, GaussianDeviceConfig, ideal_device
from aimcsim.devices.pcm import PCMConfig, PCMDevice

#: class name -> (device class, config dataclass); extended by :func:`register_device`.
DEVICE_REGISTRY: dict[str, tuple[type, type]] = {
    "PCMDevice": (PCMDevice, PCMConfig),
    "GaussianDevice": (GaussianDevice, GaussianDeviceConfig),
}
_SHORT_NAMES = {"pcm": "PCMDevice", "gaussian": "GaussianDevice"}


def register_device(device_cls: type, config_cls: type) -> None:
    """Make a user device model known to :func:`device_from_dict` (JSON round trip)."""
    if not issubclass(device_cls, DeviceModel):
        raise ValueError(f"{device_cls.__name__} must subclass DeviceModel")
    DEVICE_REGISTRY[device_cls.__name__] = (device_cls, config_cls)


def device_from_dict(data: dict) -> DeviceModel:
    """Inverse of ``DeviceModel.to_dict()``."""
    name = data.get("model")
    if name not in DEVICE_REGISTRY:
        raise ValueError(f"unknown device model {name!r}; known: {sorted(DEVICE_REGISTRY)}")
    device_cls, config_cls = DEVICE_REGISTRY[name]
    config = dict(data.get("config", {}))
    known = {f.name for f in fields(config_cls)}
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"unknown {config_cls.__name__} fields {sorted(unknown)}")
    return device_cls(config_cls(**config))


def make_device(name: str = "pcm", **overrides) -> DeviceModel:
    """A device by short name (``pcm``, ``gaussian``, ``ideal``) with config overrides."""
    if name == "ideal":
        return ideal_device(**overrides)
    full = _SHORT_NAMES.get(name, name)
    if full not in DEVICE_REGISTRY:
        raise ValueError(f"unknown device {name!r}; known: {sorted(_SHORT_NAMES) + ['ideal']}")
    return device_from_dict({"model": full, "config": overrides})


__all__ = ["DeviceModel", "DeviceState", "GaussianDevice", "GaussianDeviceConfig", "PCMConfig",
           "PCMDevice", "DEVICE_REGISTRY", "device_from_dict", "ideal_device", "make_device",
           "register_device"]
