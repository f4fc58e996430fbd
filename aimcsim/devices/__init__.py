"""Device physics: conductance devices as small array-in, array-out models (numpy, no torch).

- :mod:`~aimcsim.devices.base`: the :class:`DeviceModel` interface and :class:`DeviceState`;
- :mod:`~aimcsim.devices.programming_noise`, :mod:`~aimcsim.devices.drift`,
  :mod:`~aimcsim.devices.read_noise`: the three PCM mechanisms, one file each;
- :class:`PCMDevice` (:mod:`~aimcsim.devices.pcm`, Nandakumar et al. 2019) composes them;
  :class:`HermesPCMDevice` (:mod:`~aimcsim.devices.hermes`, Le Gallo et al. 2023) is the PCM of
  the Hermes chip, one or two devices per weight sign; both share
  :mod:`~aimcsim.devices.pcm_like`;
- :class:`WanRRAMDevice` (:mod:`~aimcsim.devices.rram`, Wan et al. 2022) is an RRAM with
  state-dependent programming noise and relaxation, valid from 1 s to 2 days;
- :class:`GaussianDevice` (:mod:`~aimcsim.devices.gaussian`) is the simplest alternative and a
  template;
- :func:`make_device` builds a device by name, :func:`device_from_dict` inverts
  ``DeviceModel.to_dict()`` (JSON round trip), :func:`register_device` adds a user model.

Units everywhere: conductance in µS, time in seconds since programming ended.
"""
from __future__ import annotations

import dataclasses
from dataclasses import fields

from aimcsim.devices.base import DeviceModel, DeviceState
from aimcsim.devices.gaussian import GaussianDevice, GaussianDeviceConfig, ideal_device
from aimcsim.devices.hermes import HERMES_FITS, HermesPCMConfig, HermesPCMDevice
from aimcsim.devices.pcm import PCMConfig, PCMDevice
from aimcsim.devices.rram import WanRRAMConfig, WanRRAMDevice

#: class name -> (device class, config dataclass); extended by :func:`register_device`.
DEVICE_REGISTRY: dict[str, tuple[type, type]] = {
    "PCMDevice": (PCMDevice, PCMConfig),
    "HermesPCMDevice": (HermesPCMDevice, HermesPCMConfig),
    "WanRRAMDevice": (WanRRAMDevice, WanRRAMConfig),
    "GaussianDevice": (GaussianDevice, GaussianDeviceConfig),
}
#: short names accepted by :func:`make_device` ("ideal" is a GaussianDevice without noise).
SHORT_NAMES: dict[str, str] = {"pcm": "PCMDevice", "hermes": "HermesPCMDevice",
                               "rram": "WanRRAMDevice", "gaussian": "GaussianDevice"}
#: preset names: a registered class with some config fields fixed (overridable).
PRESETS: dict[str, tuple[str, dict]] = {
    "hermes-1": ("HermesPCMDevice", {"devices_per_sign": 1}),
    "hermes-2": ("HermesPCMDevice", {"devices_per_sign": 2}),
}


def register_device(device_cls: type, config_cls: type, short_name: str | None = None) -> None:
    """Make a user device model known to :func:`device_from_dict` and :func:`make_device`.

    ``device_cls`` must subclass :class:`DeviceModel` and accept ``device_cls(config)``;
    ``config_cls`` is its config dataclass (JSON-serialisable fields).
    """
    if not (isinstance(device_cls, type) and issubclass(device_cls, DeviceModel)):
        raise ValueError(f"device_cls must subclass DeviceModel, got {device_cls!r}")
    if not dataclasses.is_dataclass(config_cls):
        raise ValueError(f"config_cls must be a dataclass, got {config_cls!r}")
    DEVICE_REGISTRY[device_cls.__name__] = (device_cls, config_cls)
    if short_name is not None:
        SHORT_NAMES[short_name.lower()] = device_cls.__name__


def known_device_names() -> list[str]:
    """Every name :func:`make_device` accepts."""
    return sorted(SHORT_NAMES) + sorted(PRESETS) + ["ideal"] + sorted(DEVICE_REGISTRY)


def device_from_dict(data: dict) -> DeviceModel:
    """Inverse of ``DeviceModel.to_dict()``: ``{"model": class name, "config": {...}}``."""
    if not isinstance(data, dict):
        raise ValueError(f"data must be a dict from DeviceModel.to_dict(), got "
                         f"{type(data).__name__}")
    name = data.get("model")
    if not isinstance(name, str) or name not in DEVICE_REGISTRY:
        raise ValueError(f"unknown device model {name!r}; known: {sorted(DEVICE_REGISTRY)}")
    device_cls, config_cls = DEVICE_REGISTRY[name]
    config = data.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"config of {name} must be a dict, got {type(config).__name__}")
    unknown = set(config) - {f.name for f in fields(config_cls)}
    if unknown:
        raise ValueError(f"unknown {config_cls.__name__} fields {sorted(unknown)}; known: "
                         f"{sorted(f.name for f in fields(config_cls))}")
    return device_cls(config_cls(**config))


def make_device(name_or_model: str | DeviceModel = "pcm", **overrides) -> DeviceModel:
    """A device by name (a short name ``"pcm"``, ``"hermes"``, ``"rram"``, ``"gaussian"``, a
    preset ``"hermes-1"`` / ``"hermes-2"``, ``"ideal"`` or a registered class name,
    case-insensitive) or a copy of a device model, with config fields overridden.

    ``make_device("pcm", drift_scale=0)``; ``make_device(device, read_noise_scale=0.5)``;
    ``make_device("hermes-1")`` is ``make_device("hermes", devices_per_sign=1)``.
    Unknown names or fields raise ValueError listing the known ones.
    """
    if isinstance(name_or_model, DeviceModel):
        model = name_or_model
        known = {f.name for f in fields(model.config)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown {type(model.config).__name__} fields {sorted(unknown)}; "
                             f"known: {sorted(known)}")
        return type(model)(dataclasses.replace(model.config, **overrides))
    if not isinstance(name_or_model, str):
        raise ValueError(f"name_or_model must be a device name or a DeviceModel, got "
                         f"{type(name_or_model).__name__}")
    key = name_or_model.lower()
    if key == "ideal":
        return make_device(ideal_device(), **overrides)
    if key in PRESETS:
        full, fixed = PRESETS[key]
        return device_from_dict({"model": full, "config": {**fixed, **overrides}})
    by_lower = {n.lower(): n for n in DEVICE_REGISTRY}
    full = SHORT_NAMES.get(key) or by_lower.get(key)
    if full is None:
        raise ValueError(f"unknown device {name_or_model!r}; known: {known_device_names()}")
    return device_from_dict({"model": full, "config": overrides})


__all__ = ["DEVICE_REGISTRY", "HERMES_FITS", "PRESETS", "SHORT_NAMES", "DeviceModel",
           "DeviceState", "GaussianDevice", "GaussianDeviceConfig", "HermesPCMConfig",
           "HermesPCMDevice", "PCMConfig", "PCMDevice", "WanRRAMConfig", "WanRRAMDevice",
           "device_from_dict", "ideal_device", "known_device_names", "make_device",
           "register_device"]
