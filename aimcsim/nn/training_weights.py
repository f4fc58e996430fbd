"""The weights a hardware-aware training step computes with: one normalised weight block and
one output scale per row block of tiles, perturbed as the hardware would perturb them.

Both noise models share the mapping of the tiles (``MappingConfig.weight_scaling``): a
column's weights are divided by w_max of its tile (``tile``) or of its own column
(``column``), exactly as :class:`aimcsim.tiles.tile.AnalogTile` maps them onto conductances.

- ``gaussian``: ``W_n = W / w_max + sigma_w xi`` (physics.md section 7), output scale w_max.
- ``device``: the device model itself. Each step programs the layer's current (clipped)
  weights onto fresh tiles (programming noise with the state-dependent sigma, per-device drift
  exponents), reads them at a time t drawn log-uniformly from [t_min, t_max] seconds (drift,
  read noise) and measures the global drift compensation alpha that inference would apply
  (the tile's own calibration). The forward uses the read weights ``W_n(t)`` and the output
  scale ``w_max alpha``; the gradient passes straight through to the effective weights
  ``w_max alpha W_n``: ``W_n = W / (w_max alpha) + k (W_n(t) - W / (w_max alpha)).detach()``,
  with ``k = hwa.noise_scale`` (1 by default: the forward reads ``W_n(t)`` itself; above 1
  inflates the compensated read's deviation from W, never the drift that GDC removes).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from aimcsim.nn.plan import RowBlock, slot_to_conv_weight, slot_weights
from aimcsim.tiles.tile import AnalogTile

Block = tuple[torch.Tensor, torch.Tensor, None]


def block_slice(weight: torch.Tensor, block: RowBlock, groups: int) -> torch.Tensor:
    """The part of a layer's weight (C_out, C_in / groups, *k) that a row block holds, in the
    layout of its GEMM."""
    o0, o1 = block.out_channels
    i0, i1 = block.in_channels
    if block.groups > 1:
        return weight[o0:o1]
    cin_g = weight.shape[1]
    g = o0 // (weight.shape[0] // groups)
    return weight[o0:o1, i0 - g * cin_g:i1 - g * cin_g]


def weight_scales(wb: torch.Tensor, block: RowBlock, weight_scaling: str) -> torch.Tensor:
    """w_max of every output column of a row block (C_out_block,), detached: the max |w| of
    the column's tile, or of the column itself."""
    w = wb.detach().abs().reshape(wb.shape[0], -1)
    o0 = block.out_channels[0]
    if weight_scaling == "column":
        return w.amax(dim=1).clamp_min(1e-12) if w.shape[1] else w.new_ones(w.shape[0])
    scales = []
    for slot in block.slots:
        a, b = slot.out_channels[0] - o0, slot.out_channels[1] - o0
        scales.append(w[a:b].max().clamp_min(1e-12).expand(b - a))
    return torch.cat(scales)


def _per_column(scale: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return scale.reshape((-1,) + (1,) * (like.dim() - 1))


def gaussian_blocks(layer, weight: torch.Tensor) -> list[Block]:
    """Additive Gaussian weight noise of std ``hwa.weight_noise`` relative to w_max."""
    blocks = []
    scaling = layer.analog_config.mapping.weight_scaling
    for block in layer._blocks:
        wb = block_slice(weight, block, getattr(layer, "groups", 1))
        scale = weight_scales(wb, block, scaling)
        w_n = wb / _per_column(scale, wb)
        if layer.hwa.weight_noise > 0:
            w_n = w_n + layer.hwa.weight_noise * torch.randn_like(w_n)
        blocks.append((w_n, scale, None))
    return blocks


def sample_read_time(t_min: float, t_max: float) -> float:
    """A time drawn log-uniformly from [t_min, t_max] seconds (torch's global generator)."""
    u = float(torch.rand(()))
    return math.exp(math.log(t_min) + u * (math.log(t_max) - math.log(t_min)))


def device_model_blocks(layer, weight: torch.Tensor) -> list[Block]:
    """The layer's weights programmed onto fresh tiles and read at a random time (see the
    module docstring); seeds come from torch's global generator (``torch.manual_seed``
    reproduces a run)."""
    hwa = layer.hwa
    groups = getattr(layer, "groups", 1)
    w_np = weight.detach().to("cpu", torch.float32).numpy()
    w_np = w_np.reshape(w_np.shape[0], w_np.shape[1], -1)
    t = sample_read_time(hwa.t_min, hwa.t_max)
    seed = int(torch.randint(0, 2 ** 62, ()))
    children = iter(np.random.SeedSequence(seed).spawn(layer.n_tiles))
    blocks = []
    for block in layer._blocks:
        reads, scales = [], []
        for slot in block.slots:
            tile = AnalogTile(slot_weights(w_np, slot, groups), layer.analog_config)
            tile.program(next(children))
            tile.set_time(t)
            reads.append(slot_to_conv_weight(tile.normalized_weights, layer._kernel))
            scales.append(tile.output_scale)
        wb = block_slice(weight, block, groups)
        read = torch.from_numpy(np.concatenate(reads)).to(wb.device).reshape(wb.shape)
        scale = torch.from_numpy(np.concatenate(scales)).to(wb.device)
        # the float weights in the units of the read ones, W / (w_max alpha), so that the
        # compensated read deviates from W by (read - w_target) w_max alpha
        # (an all-zero column has w_max 0 and output scale 0: its target is 0)
        effective = _per_column(scale, wb)
        w_target = torch.where(effective > 0, wb / torch.where(effective > 0, effective, 1.0),
                               torch.zeros_like(wb))
        w_n = w_target + (hwa.noise_scale * (read - w_target)).detach()
        blocks.append((w_n, scale, None))
    return blocks
