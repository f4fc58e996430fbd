"""Tile state in a ``state_dict``: programmed conductances, drift exponents, weight scales,
drift-compensation references, random-stream positions and the current read, as tensors and
JSON strings only, so ``torch.load(..., weights_only=True)`` loads it."""
from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import torch

from aimcsim.devices import DeviceState
from aimcsim.nn.hwa_config import HardwareAwareConfig
from aimcsim.tiles.config import AnalogConfig
from aimcsim.tiles.tile import AnalogTile
from aimcsim.validation import check_finite, check_int, check_time

_ARRAYS = ("_w_max", "_resplit_scale", "_w_n", "_var_n", "_alpha", "_s0", "_g_read")


def _tensor(a: np.ndarray | None):
    return None if a is None else torch.from_numpy(np.ascontiguousarray(a).copy())


def tiles_to_state(tiles: list[AnalogTile]) -> dict:
    """Everything needed to restore ``tiles`` bit for bit."""
    out: dict = {"n_tiles": len(tiles)}
    for i, tile in enumerate(tiles):
        prefix = f"tile{i}."
        for f in fields(tile._state):
            value = getattr(tile._state, f.name)
            out[prefix + "state." + f.name] = None if value is None else _tensor(np.asarray(value))
        for name in _ARRAYS:
            out[prefix + name] = _tensor(getattr(tile, name))
        seq = tile._read_seq
        out[prefix + "meta"] = json.dumps({
            "t": tile.t,
            "read_seq": {"entropy": str(seq.entropy), "spawn_key": list(seq.spawn_key),
                         "n_children_spawned": seq.n_children_spawned},
            "mvm_rng": tile._mvm_rng.bit_generator.state,
        })
    return out


def read_extra_state(state, layer: str):
    """The saved config, hardware-aware config and "programmed" flag of a layer's extra state,
    checked: ValueError naming ``layer`` and the key for a missing key, a string that is not
    JSON, or JSON that is not a valid config."""
    if not isinstance(state, dict):
        raise ValueError(f"{layer}: the analog layer state must be a dict, got "
                         f"{type(state).__name__}")
    config = _config_from_json(state, "config", layer, AnalogConfig.from_stored)
    hwa = _config_from_json(state, "hwa", layer, lambda d: HardwareAwareConfig(**d))
    programmed = _required(state, "programmed", layer)
    if not isinstance(programmed, (bool, np.bool_)):
        raise ValueError(f"{layer}: state key 'programmed' must be True or False, got "
                         f"{programmed!r}")
    return config, hwa, bool(programmed)


def read_input_range(state: dict, layer: str) -> float | None:
    """The saved static input range (None when never calibrated), checked: finite and > 0."""
    value = state.get("input_range")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            np.isfinite(value) and value > 0):
        raise ValueError(f"{layer}: state key 'input_range' must be a finite number > 0 or "
                         f"None, got {value!r}")
    return float(value)


def read_noise_keys(state: dict, layer: str) -> tuple[tuple[int, ...], tuple[int, int], int] | None:
    """The saved noise-stream names (programming key, read key, reads), or None when absent
    (a state saved before they existed)."""
    if "noise_keys" not in state:
        return None
    try:
        program_key, read_key, reads = json.loads(state["noise_keys"])
        program_key = tuple(int(v) for v in program_key)
        read_key = tuple(int(v) for v in read_key)
        reads = int(reads)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{layer}: state key 'noise_keys' is damaged ({err})") from None
    if len(read_key) != 2 or min(program_key + read_key + (reads,), default=0) < 0:
        raise ValueError(f"{layer}: state key 'noise_keys' is damaged")
    return program_key, read_key, reads


def _required(state: dict, key: str, layer: str):
    if key not in state:
        raise ValueError(f"{layer}: the analog layer state has no key {key!r} (not saved by "
                         f"this version of aimcsim, or damaged)")
    return state[key]


def _config_from_json(state: dict, key: str, layer: str, build):
    text = _required(state, key, layer)
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{layer}: state key {key!r} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{layer}: state key {key!r} must hold a JSON object, got "
                         f"{type(data).__name__}")
    try:
        return build(data)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{layer}: state key {key!r} is not a valid config: {err}") from None


def _expected_arrays(tile: AnalogTile) -> dict[str, tuple[tuple[int, ...] | None, torch.dtype]]:
    """key -> (shape, dtype) of a tile's saved arrays; shape None: must be absent (None)."""
    groups, rows, cols = tile.weights.shape
    cells = (2, groups, rows, cols)
    config = tile.config
    per_mvm = config.read_noise_sampling == "per_mvm"
    gdc = config.drift_compensation.enabled
    out = {f"state.{name}": (cells, torch.float32) for name in ("g_target", "g_prog", "nu")}
    out["state.active"] = (cells, torch.bool)
    out["_w_max"] = ((groups, 1, cols), torch.float32)
    net = config.mapping.pair_drift == "net"
    out["_resplit_scale"] = ((groups, 1, cols) if net else None, torch.float32)
    out["_w_n"] = ((groups, rows, cols), torch.float32)
    out["_var_n"] = ((groups, rows, cols) if per_mvm else None, torch.float32)
    for name in ("_alpha", "_s0"):
        out[name] = ((groups * cols,) if gdc else None, torch.float32)
    out["_g_read"] = (cells if config.ir_drop.enabled else None, torch.float32)
    return out


def _checked_array(state: dict, key: str, shape, dtype, layer: str) -> np.ndarray | None:
    value = state.get(key)
    if shape is None:
        if value is not None:
            raise ValueError(f"{layer}: state key {key!r} must be None for this config, got "
                             f"{type(value).__name__}")
        return None
    if value is None:
        _required(state, key, layer)
        raise ValueError(f"{layer}: state key {key!r} is None, a {dtype} tensor of shape "
                         f"{shape} is needed")
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{layer}: state key {key!r} must be a tensor, got "
                         f"{type(value).__name__}")
    if value.dtype != dtype or tuple(value.shape) != tuple(shape):
        raise ValueError(f"{layer}: state key {key!r} must be a {dtype} tensor of shape "
                         f"{tuple(shape)}, got {value.dtype} {tuple(value.shape)}")
    if value.dtype.is_floating_point:
        check_finite(value, f"{layer}: state key {key!r}")
    return value.detach().cpu().numpy().copy()


def _read_meta(state: dict, key: str, layer: str) -> tuple[float, np.random.SeedSequence,
                                                            np.random.Generator]:
    """(t, read seed sequence, MVM generator) of a tile's JSON meta entry."""
    text = _required(state, key, layer)
    try:
        meta = json.loads(text)
        t = check_time(meta["t"], "t")
        rs = meta["read_seq"]
        spawn_key = tuple(check_int(k, "spawn_key", 0) for k in rs["spawn_key"])
        read_seq = np.random.SeedSequence(
            check_int(int(rs["entropy"]), "entropy", 0), spawn_key=spawn_key,
            n_children_spawned=check_int(rs["n_children_spawned"], "n_children_spawned", 0))
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = meta["mvm_rng"]
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as err:
        raise ValueError(f"{layer}: state key {key!r} is not a valid tile record "
                         f"({type(err).__name__}: {err})") from None
    return t, read_seq, rng


def tiles_from_state(tiles: list[AnalogTile], state: dict, layer: str = "layer") -> None:
    """Inverse of :func:`tiles_to_state` for freshly built (unprogrammed) tiles.

    Every key is checked first (present, tensor dtype and shape, finite values, valid JSON
    records); a bad one raises ValueError naming ``layer`` and the key, and leaves ``tiles``
    unprogrammed."""
    n_tiles = _required(state, "n_tiles", layer)
    if not isinstance(n_tiles, (int, np.integer)) or isinstance(n_tiles, bool) \
            or n_tiles != len(tiles):
        raise ValueError(f"{layer}: state key 'n_tiles' is {n_tiles!r}, the layer has "
                         f"{len(tiles)} tiles")
    restored = []
    for i, tile in enumerate(tiles):
        prefix = f"tile{i}."
        arrays = {name: _checked_array(state, prefix + name, shape, dtype, layer)
                  for name, (shape, dtype) in _expected_arrays(tile).items()}
        read_q = state.get(prefix + "state.read_q")
        if read_q is not None:
            arrays["state.read_q"] = _checked_array(state, prefix + "state.read_q",
                                                    arrays["state.g_prog"].shape,
                                                    torch.float32, layer)
        restored.append((arrays, _read_meta(state, prefix + "meta", layer)))
    for tile, (arrays, (t, read_seq, rng)) in zip(tiles, restored):
        tile._state = DeviceState(**{f.name: arrays.get("state." + f.name)
                                     for f in fields(DeviceState)})
        for name in _ARRAYS:
            setattr(tile, name, arrays[name])
        tile.t = t
        tile._read_seq = read_seq
        tile._mvm_rng = rng


#: Config fields that only choose how a pass is computed, not what the saved tiles hold: a
#: loader's explicit config may set them differently from the saved one.
COMPUTE_ONLY = frozenset({"gemm_precision"})


def config_mismatch(current: AnalogConfig, saved: AnalogConfig,
                    ignore=COMPUTE_ONLY) -> str:
    """A short description of the fields that differ ('' when the configs are equal, up to
    the fields in ``ignore``: by default the :data:`COMPUTE_ONLY` ones)."""
    a, b = _flatten(current.to_dict()), _flatten(saved.to_dict())
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in ignore)
    return ", ".join(f"{k}: yours {a.get(k)!r} vs saved {b.get(k)!r}" for k in keys[:5])


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
