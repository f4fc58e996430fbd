"""Tile state in a ``state_dict``: programmed conductances, drift exponents, weight scales,
drift-compensation references, random-stream positions and the current read, as tensors and
JSON strings only, so ``torch.load(..., weights_only=True)`` loads it."""
from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import torch

from aimcsim.devices import DeviceState
from aimcsim.tiles.config import AnalogConfig
from aimcsim.tiles.tile import AnalogTile

_ARRAYS = ("_w_max", "_w_n", "_var_n", "_alpha", "_s0")


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


def tiles_from_state(tiles: list[AnalogTile], state: dict) -> None:
    """Inverse of :func:`tiles_to_state` for freshly built (unprogrammed) tiles."""
    if int(state["n_tiles"]) != len(tiles):
        raise ValueError(f"state holds {state['n_tiles']} tiles, the layer has {len(tiles)}")
    for i, tile in enumerate(tiles):
        prefix = f"tile{i}."
        kwargs = {}
        for f in fields(DeviceState):
            value = state.get(prefix + "state." + f.name)
            if value is not None:
                kwargs[f.name] = value.numpy().copy()
        tile._state = DeviceState(**kwargs)
        for name in _ARRAYS:
            value = state.get(prefix + name)
            setattr(tile, name, None if value is None else value.numpy().copy())
        meta = json.loads(state[prefix + "meta"])
        tile.t = meta["t"]
        rs = meta["read_seq"]
        tile._read_seq = np.random.SeedSequence(int(rs["entropy"]),
                                                spawn_key=tuple(rs["spawn_key"]),
                                                n_children_spawned=rs["n_children_spawned"])
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = meta["mvm_rng"]
        tile._mvm_rng = rng


def config_mismatch(current: AnalogConfig, saved: AnalogConfig) -> str:
    """A short description of the fields that differ ('' when the configs are equal)."""
    a, b = _flatten(current.to_dict()), _flatten(saved.to_dict())
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: yours {a.get(k)!r} vs saved {b.get(k)!r}" for k in keys[:5])


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
