"""Input checks of the device models: clear ValueErrors that name the argument or config field."""
from __future__ import annotations

import numpy as np

from aimcsim.validation import check_bool, check_float, is_number

#: Relative tolerance on the target range: values up to g_max * (1 + TOL) are clipped to g_max,
#: values down to -g_max * TOL are clipped to 0 (float rounding of w / w_max * g_max).
TARGET_TOLERANCE = 1e-4
#: Upper limit of every numeric device constant (µS, seconds or dimensionless): far beyond any
#: physical device, and it keeps products of constants within float32.
MAX_DEVICE_VALUE = 1e6


def check_targets(g_target, g_max: float, name: str = "g_target") -> np.ndarray:
    """Target conductances as a float32 array: finite and within [0, g_max] µS, else ValueError.

    Values within ``TARGET_TOLERANCE * g_max`` outside the range are clipped into it.
    """
    try:
        g = np.asarray(g_target, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers (µS), got "
                         f"{type(g_target).__name__}") from None
    if not np.isfinite(g).all():
        raise ValueError(f"{name} contains NaN or inf values")
    slack = g_max * TARGET_TOLERANCE
    if g.size and (g.min() < -slack or g.max() > g_max + slack):
        raise ValueError(f"{name} must lie in [0, g_max = {g_max}] µS, got values in "
                         f"[{g.min():.4g}, {g.max():.4g}]")
    return np.asarray(np.clip(g, 0.0, g_max), dtype=np.float32)


def check_config_numbers(config, positive=(), non_negative=()) -> None:
    """Config fields must be finite numbers, > 0 or >= 0 as listed, and <= MAX_DEVICE_VALUE;
    ValueError names the field. The fields are normalised to Python floats (JSON-serialisable)."""
    for names, low_open in ((positive, True), (non_negative, False)):
        for name in names:
            setattr(config, name, check_float(getattr(config, name), name, 0,
                                              MAX_DEVICE_VALUE, low_open=low_open))


def check_config_flags(config, names) -> None:
    """Config fields that must be bools (normalised to Python bools)."""
    for name in names:
        setattr(config, name, check_bool(getattr(config, name), name))


def number_tuple(value, name: str, size: int | tuple[int, int],
                 bound: float | None = None) -> tuple[float, ...]:
    """``value`` as a tuple of finite floats (lists from JSON are accepted): exactly ``size``
    of them, or between ``size[0]`` and ``size[1]`` when a pair is given, each of magnitude
    at most ``bound`` when given; else ValueError naming ``name``."""
    lo, hi = (size, size) if isinstance(size, int) else size
    wanted = f"{lo}" if lo == hi else f"{lo} to {hi}"
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be {wanted} finite numbers, got {value!r}")
    try:
        values = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be {wanted} numbers, got {value!r}") from None
    if not lo <= len(values) <= hi or not all(is_number(x) for x in values):
        raise ValueError(f"{name} must be {wanted} finite numbers, got {value!r}")
    if bound is not None and any(abs(x) > bound for x in values):
        raise ValueError(f"{name} must be {wanted} numbers of magnitude <= {bound:g}, got "
                         f"{value!r}")
    return tuple(float(x) for x in values)


def as_number_tuple(config, name: str, size: int | tuple[int, int],
                    bound: float | None = None) -> tuple[float, ...]:
    """Config field ``name`` as :func:`number_tuple`."""
    return number_tuple(getattr(config, name), name, size, bound)


def check_state(state, name: str = "state") -> None:
    """A DeviceState whose arrays all have the same shape."""
    from aimcsim.devices.base import DeviceState
    if not isinstance(state, DeviceState):
        raise ValueError(f"{name} must be a DeviceState (from program()), got "
                         f"{type(state).__name__}")
    shape = np.shape(state.g_prog)
    for field in ("g_target", "nu", "active", "read_q"):
        value = getattr(state, field)
        if value is not None and np.shape(value) != shape:
            raise ValueError(f"{name}.{field} has shape {np.shape(value)}, "
                             f"g_prog has {shape}")
