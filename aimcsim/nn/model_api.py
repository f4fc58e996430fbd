"""Model-level operations on converted models: program, read at time t, summary, statistics."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
from torch import nn

from aimcsim.nn.layers import ANALOG_LAYERS
from aimcsim.tiles.engine import SaturationStats
from aimcsim.validation import check_int, check_seed, check_time


def analog_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, layer) of every analog layer, in module order."""
    return [(name or "<root>", m) for name, m in model.named_modules()
            if isinstance(m, ANALOG_LAYERS)]


def _require_analog(model: nn.Module) -> list[tuple[str, nn.Module]]:
    layers = analog_layers(model)
    if not layers:
        raise ValueError("model has no analog layers; call aimcsim.convert_to_analog first")
    return layers


def program(model: nn.Module, seed: int | np.random.SeedSequence = 0) -> nn.Module:
    """Program every analog layer from one seed (layers and tiles get independent streams).
    Programming again with another seed draws a new sample of the hardware.

    ``seed`` is a non-negative integer or a ``numpy.random.SeedSequence`` (else ValueError).
    Program again after changing the weights: an eval-mode forward pass refuses weights that
    changed since ``program()`` (:class:`aimcsim.nn.guards.WeightsChangedError`).
    """
    seed = check_seed(seed)
    layers = _require_analog(model)
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    for (name, layer), child in zip(layers, seq.spawn(len(layers))):
        layer.layer_name = name
        layer.program(child)
    return model


def set_time(model: nn.Module, t: float, seed: int | None = None) -> nn.Module:
    """Read every analog layer at ``t`` >= 0 seconds after programming (drift, read noise,
    drift compensation) without re-programming."""
    t = check_time(t)
    seed = check_int(seed, "seed", 0, allow_none=True)
    for i, (_, layer) in enumerate(_require_analog(model)):
        layer.set_time(t, None if seed is None else int(seed) * 104_729 + i)
    return model


def saturation(model: nn.Module) -> SaturationStats:
    """ADC counters summed over all analog layers since programming (or the last reset)."""
    total = SaturationStats()
    for _, layer in analog_layers(model):
        total.add(layer.stats)
    return total


def reset_saturation(model: nn.Module) -> None:
    for _, layer in analog_layers(model):
        layer.stats = SaturationStats()


@contextlib.contextmanager
def digital(model: nn.Module, hwa_clipping: bool = False) -> Iterator[nn.Module]:
    """Within the block, analog layers in eval mode compute the plain float result (e.g. to
    monitor hardware-aware training without programming); with ``hwa_clipping`` on the weights
    clipped as in the hardware-aware training forward (:meth:`clipped_weight`)."""
    layers = analog_layers(model)
    before = [layer.digital_eval for _, layer in layers]
    for _, layer in layers:
        layer.digital_eval = "clipped" if hwa_clipping else True
    try:
        yield model
    finally:
        for (_, layer), flag in zip(layers, before):
            layer.digital_eval = flag


def summary(model: nn.Module) -> str:
    """A table, one row per analog layer: kind, weight shape, tiles, tile utilisation."""
    mapping_rows = []
    total_tiles = 0
    total_weights = 0
    for name, layer in _require_analog(model):
        shape = "x".join(str(s) for s in layer.weight.shape)
        mapping_rows.append((name, layer.analog_kind, shape, str(layer.n_tiles),
                             f"{100 * layer.tile_utilisation():.1f}%"))
        total_tiles += layer.n_tiles
        total_weights += layer.weight.numel()
    header = ("layer", "kind", "weight", "tiles", "utilisation")
    widths = [max(len(r[i]) for r in mapping_rows + [header]) for i in range(5)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in mapping_rows]
    cfg = _require_analog(model)[0][1].analog_config.mapping
    lines.append(f"{len(mapping_rows)} analog layers, {total_weights:,} weights on "
                 f"{total_tiles} tiles of {cfg.rows}x{cfg.cols} "
                 f"({100 * total_weights / (total_tiles * cfg.rows * cfg.cols):.1f}% of cells)")
    return "\n".join(lines)
