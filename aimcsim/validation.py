"""Argument checks shared by every layer of the library: clear ValueErrors that name the
argument, never a silent NaN.

The scalar checks (:func:`check_int`, :func:`check_float`, :func:`check_bool`,
:func:`check_choice`, :func:`check_seed`) are what every config dataclass runs in its
``__post_init__``. They refuse bools where numbers are expected, strings such as ``"512"``,
floats where integers are expected (also ``512.0``: a config field that is an integer is written
as one), NaN and inf, and values outside ``[low, high]``. They return the value normalised to a
plain Python ``int`` / ``float`` / ``bool`` (numpy scalars are accepted), so configs stay JSON
serialisable.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

#: Converter resolutions above this are refused: a float32 value has a 24-bit significand, so a
#: finer converter step is not representable in the float32 periphery (and 2^bits overflows
#: float32 from 128 bits on).
MAX_CONVERTER_BITS = 24
#: Largest tile side (rows or columns) and largest calibration batch accepted.
MAX_TILE_SIDE = 1 << 16


def is_number(value) -> bool:
    """A finite real number (Python or numpy), not a bool."""
    return (isinstance(value, Real) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(value))


def all_finite(values) -> bool:
    """True when the array ``values`` (numpy or torch) holds no NaN or inf.

    Dense float32 CPU tensors and float32 arrays are checked on their bits in one integer
    max reduction (``kernels/finite.py``); other torch tensors with one ``aminmax`` reduction
    (NaN propagates to the min and the max, inf is the max or the min). Neither makes a
    boolean temporary or a sum that could overflow, so a finite 1e37 is finite.
    """
    if hasattr(values, "detach"):  # torch tensor, without importing torch here
        import torch
        t = values.detach()
        if t.numel() == 0 or not (t.is_floating_point() or t.is_complex()):
            return True
        if t.is_complex():
            return bool(torch.isfinite(t).all())
        flat = _flat(t)
        if flat.dtype == torch.float32 and flat.device.type == "cpu" and flat.dim() == 1:
            from aimcsim.kernels.finite import all_finite_float32
            return all_finite_float32(flat.numpy())
        lo, hi = torch.aminmax(flat)
        return bool(torch.isfinite(lo) & torch.isfinite(hi))
    values = np.asarray(values)
    if values.dtype == np.float32:
        from aimcsim.kernels.finite import all_finite_float32
        return all_finite_float32(values)
    return bool(np.isfinite(values).all())


def _flat(t):
    """A 1-D view of a tensor that is dense in some dimension order (e.g. channels_last), so
    reductions run over contiguous memory; ``t`` itself otherwise."""
    order = sorted(range(t.dim()), key=lambda d: -t.stride(d))
    dense = t.permute(order)
    return dense.view(-1) if dense.is_contiguous() else t


def check_finite(values, name: str) -> None:
    """Raise ValueError if the array ``values`` (numpy or torch) holds NaN or inf."""
    if not all_finite(values):
        raise ValueError(f"{name} contains NaN or inf values")


def check_time(t: float, name: str = "t") -> float:
    """Time since programming in seconds: finite and >= 0."""
    if isinstance(t, (bool, np.bool_, str, bytes)):
        raise ValueError(f"{name} must be a number of seconds, got {t!r}")
    try:
        value = float(t)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of seconds, got {t!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0 seconds, got {t!r}")
    return value


def check_choice(value: str, choices, name: str) -> str:
    """``value`` must be one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def _range_text(low, high, low_open: bool = False, high_open: bool = False) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    return " and ".join(parts)


def _wanted(kind: str, limits: str, allow_none: bool) -> str:
    return " ".join(p for p in (kind, limits, "(or None)" if allow_none else "") if p)


def check_int(value, name: str, low: int | None = None, high: int | None = None, *,
              allow_none: bool = False) -> int | None:
    """An integer (Python or numpy, not a bool, not a float) within ``[low, high]``.

    Returns it as a Python ``int`` (or None when ``allow_none`` and ``value`` is None).
    """
    if value is None and allow_none:
        return None
    wanted = _wanted("an integer", _range_text(low, high), allow_none)
    if not isinstance(value, Integral) or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be {wanted}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {wanted}, got {value}")
    return value


def check_float(value, name: str, low: float | None = None, high: float | None = None, *,
                low_open: bool = False, high_open: bool = False,
                allow_none: bool = False) -> float | None:
    """A finite real number (int or float, Python or numpy; not a bool or a string) within
    ``[low, high]`` (``low_open`` / ``high_open`` exclude the end).

    Returns it as a Python ``float`` (or None when ``allow_none`` and ``value`` is None).
    """
    if value is None and allow_none:
        return None
    wanted = _wanted("a finite number", _range_text(low, high, low_open, high_open), allow_none)
    if not is_number(value):
        raise ValueError(f"{name} must be {wanted}, got {value!r} ({type(value).__name__})")
    value = float(value)
    if ((low is not None and (value <= low if low_open else value < low))
            or (high is not None and (value >= high if high_open else value > high))):
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return value


def check_bool(value, name: str) -> bool:
    """True or False (numpy bools accepted; not 0 / 1 or strings)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_bits(value, name: str) -> int | None:
    """A converter resolution: None (ideal) or an integer in [2, :data:`MAX_CONVERTER_BITS`]."""
    return check_int(value, name, 2, MAX_CONVERTER_BITS, allow_none=True)


def check_seed(seed, name: str = "seed", allow_none: bool = False):
    """A seed: a non-negative integer (Python or numpy) or a ``numpy.random.SeedSequence``."""
    if seed is None and allow_none:
        return None
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if not isinstance(seed, Integral) or isinstance(seed, (bool, np.bool_)) or seed < 0:
        raise ValueError(f"{name} must be a non-negative integer or a numpy SeedSequence"
                         f"{' or None' if allow_none else ''}, got {seed!r}")
    return int(seed)
