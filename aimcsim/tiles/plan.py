"""The tiling rule: how a matrix, a linear layer or a convolution is cut into tiles.

This is the one rule of aimcsim: the analog layers (:mod:`aimcsim.nn.tile_array`),
hardware-aware training (:mod:`aimcsim.nn.training_weights`), :class:`~aimcsim.tiles.
tiled_matrix.TiledMatrix` and the system model (:mod:`aimcsim.system.mapping`) all call
:func:`plan_tiles`, so what the system model counts is what runs.

Row blocks are aligned to input channels (all k x k rows of a channel stay on one tile), so each
tile's share of a convolution is itself a convolution over a channel slice: the native conv runs
it without unfolding the input. Column blocks split the output channels. Grouped convolutions
put whole groups on a tile (its weights are then block-diagonal: (G, r, c)); a group larger than
a tile is split like a dense convolution.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aimcsim.tiles.split import balanced_blocks


@dataclass
class TileSlot:
    """One tile of a layer: which input and output channels it serves and how many conv groups
    it holds (1 for dense)."""

    in_channels: tuple[int, int]
    out_channels: tuple[int, int]
    groups: int = 1


@dataclass
class RowBlock:
    """Tiles that share one input-channel slice (their DAC input is the same); their outputs
    are contiguous output channels ``out_channels``."""

    in_channels: tuple[int, int]
    groups: int
    slots: list[TileSlot] = field(default_factory=list)

    @property
    def out_channels(self) -> tuple[int, int]:
        return self.slots[0].out_channels[0], self.slots[-1].out_channels[1]


def plan_tiles(in_channels: int, out_channels: int, kernel_area: int, groups: int,
               rows: int, cols: int) -> list[RowBlock]:
    """Row blocks and tiles for a layer of ``in_channels`` x ``kernel_area`` rows per output and
    ``out_channels`` columns, with ``groups`` conv groups, on ``rows`` x ``cols`` tiles."""
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"channels ({in_channels}, {out_channels}) not divisible by groups "
                         f"{groups}")
    cin_g, cout_g = in_channels // groups, out_channels // groups
    blocks: list[RowBlock] = []
    if groups > 1 and cin_g * kernel_area <= rows and cout_g <= cols:
        per_tile = min(rows // (cin_g * kernel_area), cols // cout_g)
        for g0, g1 in balanced_blocks(groups, per_tile):
            slot = TileSlot((g0 * cin_g, g1 * cin_g), (g0 * cout_g, g1 * cout_g), g1 - g0)
            blocks.append(RowBlock(slot.in_channels, g1 - g0, [slot]))
        return blocks
    for g in range(groups):
        for r0, r1 in balanced_blocks(cin_g, rows, unit=kernel_area):
            block = RowBlock((g * cin_g + r0, g * cin_g + r1), 1)
            for c0, c1 in balanced_blocks(cout_g, cols):
                block.slots.append(TileSlot(block.in_channels, (g * cout_g + c0, g * cout_g + c1)))
            blocks.append(block)
    return blocks


@dataclass(frozen=True)
class TileCounts:
    """The shape of a plan, as the system model needs it.

    Attributes:
        tiles: tiles of the layer.
        row_tiles: tiles whose partial sums add up to one output (row blocks per group).
        col_tiles: tiles side by side that share one input slice (and its DAC conversions).
        groups_per_tile: conv groups held by one tile (1 for dense layers).
    """

    tiles: int
    row_tiles: int
    col_tiles: int
    groups_per_tile: int


def tile_counts(blocks: list[RowBlock]) -> TileCounts:
    """:class:`TileCounts` of a plan from :func:`plan_tiles`."""
    return TileCounts(tiles=sum(len(b.slots) for b in blocks),
                      row_tiles=sum(1 for b in blocks if b.out_channels[0] == 0),
                      col_tiles=len(blocks[0].slots), groups_per_tile=blocks[0].groups)


def slot_weights(weight: np.ndarray, slot: TileSlot, dense_groups: int) -> np.ndarray:
    """The (G, r, c) crossbar weights of ``slot`` from a conv weight (C_out, C_in/groups, *k).

    ``dense_groups`` is the layer's ``groups``; rows are ordered (channel, kernel position) as
    in ``torch.nn.functional.unfold``.
    """
    c_out = weight.shape[0]
    cout_g = c_out // dense_groups
    cin_g = weight.shape[1]
    o0, o1 = slot.out_channels
    i0, i1 = slot.in_channels
    if slot.groups == 1:
        g = o0 // cout_g
        local = weight[o0:o1, i0 - g * cin_g:i1 - g * cin_g]
        return np.ascontiguousarray(local.reshape(o1 - o0, -1).T)[None]
    per_group = weight[o0:o1].reshape(slot.groups, cout_g, -1)
    return np.ascontiguousarray(per_group.transpose(0, 2, 1))


def slot_to_conv_weight(w: np.ndarray, kernel: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`slot_weights`: (G, r, c) -> (G * c, r / k_area, *kernel)."""
    groups, rows, cols = w.shape
    area = int(np.prod(kernel))
    return np.ascontiguousarray(w.transpose(0, 2, 1)).reshape(groups * cols, rows // area, *kernel)
