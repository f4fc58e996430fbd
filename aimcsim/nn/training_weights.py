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
  inflates the compensated read's deviation from W, never the drift that GDC removes). The
  tiles are sampled with the numpy device model on the CPU when the torch backend has CPU
  kernels, else in torch ops on the weights' device
  (:mod:`aimcsim.nn.backends.torch_devices`), IR drop included.

Both take the layer's :class:`~aimcsim.nn.tile_array.TileArray` for its plan and config.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from aimcsim.nn.backends.torch_devices import torch_sampler
from aimcsim.nn.backends.torch_tile_read import read_tile
from aimcsim.nn.hwa_config import HardwareAwareConfig
from aimcsim.nn.tile_array import BlockWeights, TileArray
from aimcsim.tiles.plan import RowBlock, TileSlot, slot_to_conv_weight, slot_weights
from aimcsim.tiles.tile import AnalogTile


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


def clipped(weight: torch.Tensor, clip_sigma: float | None) -> torch.Tensor:
    """``weight`` clipped to +-clip_sigma x std(weight) (itself when ``clip_sigma`` is None);
    the gradient passes the clip unchanged (straight-through)."""
    if clip_sigma is not None and weight.numel() > 1:
        bound = (clip_sigma * weight.detach().std()).clamp_min(1e-12)
        weight = weight + (torch.clamp(weight.detach(), -bound, bound) - weight.detach())
    return weight


def gaussian_blocks(tiles: TileArray, weight: torch.Tensor,
                    hwa: HardwareAwareConfig) -> list[BlockWeights]:
    """Additive Gaussian weight noise of std ``hwa.weight_noise`` relative to w_max."""
    blocks = []
    scaling = tiles.config.mapping.weight_scaling
    for block in tiles.blocks:
        wb = block_slice(weight, block, tiles.groups)
        scale = weight_scales(wb, block, scaling)
        w_n = wb / _per_column(scale, wb)
        if hwa.weight_noise > 0:
            w_n = w_n + hwa.weight_noise * torch.randn_like(w_n)
        blocks.append(BlockWeights(w_n, scale, None))
    return blocks


def sample_read_time(t_min: float, t_max: float) -> float:
    """A time drawn log-uniformly from [t_min, t_max] seconds (torch's global generator)."""
    u = float(torch.rand(()))
    return math.exp(math.log(t_min) + u * (math.log(t_max) - math.log(t_min)))


def device_model_blocks(tiles: TileArray, weight: torch.Tensor, hwa: HardwareAwareConfig,
                        numpy_tiles: bool) -> list[BlockWeights]:
    """The layer's weights programmed onto fresh tiles and read at a random time (see the
    module docstring); seeds come from torch's global generator (``torch.manual_seed``
    reproduces a run). ``numpy_tiles``: sample with the numpy device model on the CPU, else
    in torch ops on the weights' device (a device model or IR-drop method without torch ops
    raises ValueError naming it)."""
    t = sample_read_time(hwa.t_min, hwa.t_max)
    if numpy_tiles:
        return _numpy_device_blocks(tiles, weight, t, hwa.noise_scale)
    sampler = torch_sampler(tiles.config.device)
    blocks = []
    for block in tiles.blocks:
        wb = block_slice(weight, block, tiles.groups)
        reads, scales = [], []
        for slot in block.slots:
            w_n, scale = read_tile(_slot_matrix(wb, block, slot), tiles.config, sampler, t)
            reads.append(_conv_layout(w_n, tiles.kernel))
            scales.append(scale)
        read = torch.cat(reads).reshape(wb.shape)
        scale = torch.cat(scales)
        blocks.append(BlockWeights(_straight_through(wb, read, scale, hwa.noise_scale), scale,
                                   None))
    return blocks


def _straight_through(wb: torch.Tensor, read: torch.Tensor, scale: torch.Tensor,
                      noise_scale: float) -> torch.Tensor:
    """``W / (w_max alpha) + k (W_n(t) - W / (w_max alpha)).detach()`` of one row block: the
    read weights forward (their deviation scaled by k), the float weights' gradient backward."""
    # the float weights in the units of the read ones, W / (w_max alpha), so that the
    # compensated read deviates from W by (read - w_target) w_max alpha
    # (an all-zero column has w_max 0 and output scale 0: its target is 0)
    effective = _per_column(scale, wb)
    w_target = torch.where(effective > 0, wb / torch.where(effective > 0, effective, 1.0),
                           torch.zeros_like(wb))
    return w_target + (noise_scale * (read - w_target)).detach()


def _slot_matrix(wb: torch.Tensor, block: RowBlock, slot: TileSlot) -> torch.Tensor:
    """The (G, r, c) crossbar weights of ``slot`` from its row block's weights ``wb``
    (C_out_block, C_in_block / G, *k): :func:`aimcsim.tiles.plan.slot_weights` in torch."""
    a = slot.out_channels[0] - block.out_channels[0]
    b = slot.out_channels[1] - block.out_channels[0]
    w = wb.detach()[a:b]
    if slot.groups == 1:
        return w.reshape(b - a, -1).t()[None]
    return w.reshape(slot.groups, (b - a) // slot.groups, -1).transpose(1, 2)


def _conv_layout(w: torch.Tensor, kernel: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`_slot_matrix`: (G, r, c) -> (G * c, r / k_area, *kernel)."""
    groups, rows, cols = w.shape
    area = int(np.prod(kernel)) if kernel else 1
    return w.transpose(1, 2).reshape(groups * cols, rows // area, *kernel)


def _numpy_device_blocks(tiles: TileArray, weight: torch.Tensor, t: float,
                         noise_scale: float) -> list[BlockWeights]:
    """:func:`device_model_blocks` with the numpy tiles (the reference, on the CPU)."""
    w_np = weight.detach().to("cpu", torch.float32).numpy()
    w_np = w_np.reshape(w_np.shape[0], w_np.shape[1], -1)
    seed = int(torch.randint(0, 2 ** 62, ()))
    children = iter(np.random.SeedSequence(seed).spawn(tiles.n_tiles))
    blocks = []
    for block in tiles.blocks:
        reads, scales = [], []
        for slot in block.slots:
            tile = AnalogTile(slot_weights(w_np, slot, tiles.groups), tiles.config)
            tile.program(next(children))
            tile.set_time(t)
            reads.append(slot_to_conv_weight(tile.normalized_weights, tiles.kernel))
            scales.append(tile.output_scale)
        wb = block_slice(weight, block, tiles.groups)
        read = torch.from_numpy(np.concatenate(reads)).to(wb.device).reshape(wb.shape)
        scale = torch.from_numpy(np.concatenate(scales)).to(wb.device)
        blocks.append(BlockWeights(_straight_through(wb, read, scale, noise_scale), scale,
                                   None))
    return blocks
