"""IR drop of a tile's differential pair in torch ops, on the conductances' device: the
decoupled-ladder model of :mod:`aimcsim.tiles.ir_drop` (the numpy reference, with the
equations) for the torch path of device-model hardware-aware training.

Row wire of an array (conductances G in siemens, segment resistance r_row in ohms): from the
open end, Y_C-1 = G_C-1, Y_j = G_j + Y_j+1 / (1 + r_row Y_j+1); node voltages per volt of drive
u_j = prod_{j' <= j} 1 / (1 + r_row Y_j'). Column wire: A_0 = 0,
A_i = (G_i-1 + A_i-1) / (1 + r_col (G_i-1 + A_i-1)); B_R-1 = 1 / r_col,
B_i = (G_i+1 + B_i+1) / (1 + r_col (G_i+1 + B_i+1)); transfer
k_i = B_i / (G_i + A_i + B_i) prod_{k > i} B_k / (G_k + B_k). G_eff = G u k.

Computed in float64 like the reference (the results agree to rounding). The ``exact`` method
(a scipy sparse nodal solve) has no torch form: :func:`torch_tile_ir_drop` raises a
ValueError naming it rather than copying the conductances to the CPU.
"""
from __future__ import annotations

import torch

from aimcsim.tiles.config import IRDropConfig
from aimcsim.tiles.ir_drop import US_PER_S


def _row_ladder_voltages(g: torch.Tensor, r: float) -> torch.Tensor:
    """u (..., R, C): row node voltages per volt of drive, the column nodes at ground."""
    cols = g.shape[-1]
    loads = [g[..., -1]]
    for j in range(cols - 2, -1, -1):
        beyond = loads[-1]
        loads.append(g[..., j] + beyond / (1.0 + r * beyond))
    load = torch.stack(loads[::-1], dim=-1)
    return torch.cumprod(1.0 / (1.0 + r * load), dim=-1)


def _column_ladder_transfer(g: torch.Tensor, r: float) -> torch.Tensor:
    """k (..., R, C): the fraction of a cell's source current reaching its sense amplifier."""
    rows = g.shape[-2]
    ups = [torch.zeros_like(g[..., 0, :])]
    for i in range(1, rows):
        before = g[..., i - 1, :] + ups[-1]
        ups.append(before / (1.0 + r * before))
    downs = [torch.full_like(g[..., -1, :], 1.0 / r)]
    for i in range(rows - 2, -1, -1):
        after = g[..., i + 1, :] + downs[-1]
        downs.append(after / (1.0 + r * after))
    up = torch.stack(ups, dim=-2)
    down = torch.stack(downs[::-1], dim=-2)
    passing = down / (g + down)
    below = torch.ones_like(g)
    below[..., :-1, :] = torch.flip(torch.cumprod(torch.flip(passing[..., 1:, :], (-2,)),
                                                  dim=-2), (-2,))
    return down / (g + up + down) * below


def torch_decoupled_factors(conductances: torch.Tensor, r_row_ohm: float,
                            r_col_ohm: float) -> torch.Tensor:
    """Attenuation f (..., R, C) in (0, 1] of the decoupled model, float64, for conductances
    (..., R, C) in µS: :func:`aimcsim.tiles.ir_drop.decoupled_factors` in torch."""
    g = conductances.to(torch.float64) / US_PER_S
    factor = torch.ones_like(g)
    if r_row_ohm > 0:
        factor = factor * _row_ladder_voltages(g, r_row_ohm)
    if r_col_ohm > 0:
        factor = factor * _column_ladder_transfer(g, r_col_ohm)
    return factor


def _block_diagonal(blocks: torch.Tensor) -> torch.Tensor:
    """(..., G, r, c) -> (..., G r, G c) with the blocks on the diagonal, zeros elsewhere."""
    *lead, groups, rows, cols = blocks.shape
    full = blocks.new_zeros((*lead, groups * rows, groups * cols))
    for k in range(groups):
        full[..., k * rows:(k + 1) * rows, k * cols:(k + 1) * cols] = blocks[..., k, :, :]
    return full


def _diagonal_blocks(full: torch.Tensor, groups: int) -> torch.Tensor:
    rows, cols = full.shape[-2] // groups, full.shape[-1] // groups
    return torch.stack([full[..., k * rows:(k + 1) * rows, k * cols:(k + 1) * cols]
                        for k in range(groups)], dim=-3)


def torch_tile_ir_drop(conductances: torch.Tensor, ir_drop: IRDropConfig) -> torch.Tensor:
    """Effective conductances (2, G, r, c), µS float32, of a tile's read conductances
    (2, G, r, c) µS (G+ and G-, G diagonal blocks), as
    :func:`aimcsim.tiles.ir_drop.tile_ir_drop` computes them with ``method="decoupled"``;
    ``method="exact"`` raises ValueError."""
    if ir_drop.method != "decoupled":
        raise ValueError(f"IR drop method {ir_drop.method!r} (the scipy sparse nodal solve) "
                         f"has no torch implementation; the torch backend runs the "
                         f"'decoupled' method only (or train on CPU tensors with the 'auto' "
                         f"backend, which uses the numpy tiles)")
    groups = conductances.shape[1]
    full = _block_diagonal(conductances.to(torch.float64))
    effective = full * torch_decoupled_factors(full, ir_drop.r_row_ohm, ir_drop.r_col_ohm)
    return _diagonal_blocks(effective, groups).to(torch.float32)
