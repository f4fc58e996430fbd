"""Model-level operations on converted models: program, read at time t, summary, statistics."""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import nn

from aimcsim.nn.attention import AnalogMultiheadAttention
from aimcsim.nn.backends import BACKEND_CHOICES
from aimcsim.nn.coverage import count_macs, is_attention, macs_per_token, matrix_weights
from aimcsim.nn.layers import ANALOG_LAYERS
from aimcsim.tiles.engine import SaturationStats
from aimcsim.validation import check_choice, check_int, check_seed, check_time


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


def set_backend(model: nn.Module, backend: str = "auto") -> nn.Module:
    """Choose the backend of every analog layer of ``model`` (:mod:`aimcsim.nn.backends`):
    ``auto`` (Numba for CPU inference, torch for training, gradients and other devices),
    ``torch`` (plain torch ops everywhere: what a GPU runs) or ``numba`` (CPU inference only;
    a pass that needs gradients then raises a ValueError). Returns ``model``."""
    check_choice(backend, BACKEND_CHOICES, "backend")
    for _, layer in _require_analog(model):
        layer.analog.backend = backend
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


def _weight_rows(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every analog layer, every module holding matrix weights that stays
    digital, and every attention module (its score arithmetic is digital)."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, ANALOG_LAYERS) or matrix_weights(m) or is_attention(m)]


def _example_macs(model: nn.Module, names: list[str], example_input) -> dict[str, int | None]:
    """MACs per layer of one forward pass on ``example_input`` (a tensor or a tuple of
    arguments), run in eval mode with the analog layers digital (no programming needed, no
    random stream consumed, no batch-norm statistics touched)."""
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad(), digital(model):
            return count_macs(model, names, lambda: model(*args))
    finally:
        for m, mode in modes:
            m.training = mode


def _row(name: str, module: nn.Module, macs) -> tuple[str, ...]:
    analog = isinstance(module, ANALOG_LAYERS)
    weights = matrix_weights(module)
    shape = "x".join(str(s) for s in weights[0][1].shape) if weights else "-"
    if len(weights) > 1:
        shape += f" (+{len(weights) - 1})"
    params = sum(p.numel() for p in module.parameters(recurse=False))
    mac_text = "-" if macs is None else f"{macs:,}"
    kind = module.analog_kind if analog else type(module).__name__
    if isinstance(module, AnalogMultiheadAttention):
        kind = "attention"  # the scores and weighted sum; the projections have own rows
    return (name or "<root>", kind,
            "analog" if analog else "digital", shape, f"{params:,}", mac_text,
            str(module.n_tiles) if analog else "-",
            f"{100 * module.tile_utilisation():.1f}%" if analog else "-")


def summary(model: nn.Module, example_input=None) -> str:
    """A table with one row per layer holding weights, analog or digital, and the attention
    arithmetic: kind, where it runs, (first) weight shape, parameters, MACs, tiles, tile
    utilisation; then the totals and the share of the MACs that run on tiles.

    Args:
        model: a (converted) torch model.
        example_input: a tensor, or a tuple of forward arguments, to count the MACs of one
            forward pass (e.g. one batch of 1). Without it the MAC column shows the MACs per
            token of linear layers (``/token``) and ``-`` for the others, and the share is
            given by weights instead.
    """
    rows = _weight_rows(model)
    names = [name for name, _ in rows]
    if example_input is not None:
        macs = _example_macs(model, names, example_input)
        suffix = ""
    else:
        macs = {name: macs_per_token(m) for name, m in rows}
        suffix = "/token"
    table = [_row(name, m, macs[name]) for name, m in rows]
    if suffix:
        table = [r[:5] + ((r[5] + suffix) if r[5] != "-" else "-",) + r[6:] for r in table]
    header = ("layer", "kind", "on", "weight", "params", "MACs", "tiles", "utilisation")
    widths = [max(len(r[i]) for r in table + [header]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in table]
    analog = [(name, m) for name, m in rows if isinstance(m, ANALOG_LAYERS)]
    lines.append(_tile_line(analog))
    lines.append(_share_line(rows, macs if example_input is not None else None))
    return "\n".join(lines)


def _tile_line(analog: list[tuple[str, nn.Module]]) -> str:
    if not analog:
        return "0 analog layers: nothing runs on tiles (call aimcsim.convert_to_analog)"
    tiles = sum(layer.n_tiles for _, layer in analog)
    weights = sum(layer.weight.numel() for _, layer in analog)
    cfg = analog[0][1].analog_config.mapping
    return (f"{len(analog)} analog layers, {weights:,} weights on {tiles} tiles of "
            f"{cfg.rows}x{cfg.cols} ({100 * weights / (tiles * cfg.rows * cfg.cols):.1f}% "
            f"of cells)")


def _share_line(rows: list[tuple[str, nn.Module]], macs: dict | None) -> str:
    """The share of the network's MACs (with an example input) or matrix weights on tiles."""
    if macs is None:
        on = sum(m.weight.numel() for _, m in rows if isinstance(m, ANALOG_LAYERS))
        total = on + sum(p.numel() for _, m in rows if not isinstance(m, ANALOG_LAYERS)
                         for _, p in matrix_weights(m))
        return (f"matrix weights on tiles: {on:,} of {total:,} "
                f"({100 * on / max(total, 1):.1f}%); pass example_input for the MAC share")
    on = sum(macs[n] or 0 for n, m in rows if isinstance(m, ANALOG_LAYERS))
    total = sum(v or 0 for v in macs.values())
    unknown = [n or "<root>" for n, v in macs.items() if v is None]
    line = f"MACs on tiles: {on:,} of {total:,} ({100 * on / max(total, 1):.1f}%)"
    return line + (f"; MACs unknown for {', '.join(unknown)}" if unknown else "")


def calibrate_input_ranges(model: nn.Module, batches: Iterable, quantile: float = 1.0
                           ) -> dict[str, float]:
    """Fix each analog layer's input range for ``input_scaling="static"`` from data.

    Runs ``batches`` (model inputs) through ``model`` with every analog layer computing the
    float result, records each layer's per-sample input abs-max, and sets
    ``layer.input_range`` to their ``quantile`` (1.0: the largest seen). The DAC then maps
    [-range, range] to its full scale for every input vector of that layer; louder inputs clip.
    Returns {layer name: range}.
    """
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {quantile!r}")
    layers = _require_analog(model)
    seen: dict[str, list[torch.Tensor]] = {name: [] for name, _ in layers}
    hooks = []
    for name, layer in layers:
        def record(_module, args, name=name):
            x = args[0].detach()
            seen[name].append(x.abs().reshape(x.shape[0], -1).amax(dim=1).float().cpu()
                              if x.numel() else x.new_zeros(0))
        hooks.append(layer.register_forward_pre_hook(record))
    was_training = model.training
    model.eval()
    try:
        with digital(model), torch.no_grad():
            count = 0
            for batch in batches:
                model(batch)
                count += 1
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    if count == 0:
        raise ValueError("calibrate_input_ranges needs at least one batch")
    ranges = {}
    for name, layer in layers:
        values = torch.cat(seen[name])
        if values.numel() == 0:
            raise ValueError(f"{name}: no input reached this layer during calibration")
        value = float(torch.quantile(values, quantile)) if quantile < 1 else float(values.max())
        layer.input_range = value if value > 0 else 1.0
        ranges[name] = layer.input_range
    return ranges
