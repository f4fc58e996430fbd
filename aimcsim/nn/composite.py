"""Helpers of the composite analog modules (attention, recurrent layers): modules whose matrix
products run on :class:`~aimcsim.nn.layers.AnalogLinear` sub-layers while the arithmetic
around them (softmax, gates, state updates) stays digital in torch."""
from __future__ import annotations

import copy

import torch
from torch import nn

from aimcsim.nn.layers import AnalogLinear, HardwareAwareConfig
from aimcsim.tiles.config import AnalogConfig


def analog_linear(in_features: int, out_features: int, bias: bool,
                  config: AnalogConfig | None, hwa: HardwareAwareConfig | None,
                  device=None) -> AnalogLinear:
    """A fresh AnalogLinear with its own copy of ``config`` and ``hwa`` (the sub-layers of a
    composite module never share mutable configs)."""
    return AnalogLinear(in_features, out_features, bias, copy.deepcopy(config),
                        copy.deepcopy(hwa), device=device)


def load_linear_(layer: AnalogLinear, weight: torch.Tensor,
                 bias: torch.Tensor | None) -> AnalogLinear:
    """Copy ``weight`` (out x in) and ``bias`` (out) of a digital module into ``layer``."""
    if tuple(weight.shape) != tuple(layer.weight.shape):
        raise ValueError(f"weight of shape {tuple(weight.shape)} does not fit a "
                         f"{layer.in_features} -> {layer.out_features} layer")
    with torch.no_grad():
        layer.weight.copy_(weight)
        if layer.bias is not None and bias is not None:
            layer.bias.copy_(bias)
    return layer


def name_sublayers(module: nn.Module, prefix: str) -> None:
    """Give every analog sub-layer of ``module`` its full name (``prefix.q_proj``), so errors
    raised before :func:`aimcsim.program` name the right layer."""
    for name, sub in module.named_modules():
        if name and isinstance(sub, AnalogLinear):
            sub.layer_name = f"{prefix}.{name}" if prefix else name
