"""Place every analog layer onto crossbar tiles (weight-stationary: every layer keeps its own
tiles for the whole inference).

A layer is cut into tiles by the tiling rule the analog layers run
(:func:`aimcsim.tiles.plan.plan_tiles`): row blocks hold whole input channels (all k x k rows
of a channel on one tile, so a convolution of C_in/g channels takes
``ceil(C_in/g / floor(tile_rows / (k k)))`` row tiles per group), column blocks split the
C_out/g outputs (``ceil(C_out/g / tile_cols)``), and small conv groups share a tile
(block-diagonal). That is times ``replicas`` when its weights are copied onto spare tiles so
that several output pixels are computed at once
(see :func:`aimcsim.system.pipeline.balance_replicas`). Tiles are handed out in execution order;
with more than one chip, a chip is filled before the next one is used and a layer may span
chips.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from aimcsim.system.hardware import HardwareConfig
from aimcsim.system.stages import Stage, StageGraph
from aimcsim.tiles.plan import TileCounts, plan_tiles, tile_counts
from aimcsim.validation import check_int


class MappingError(ValueError):
    """The model does not fit the chip(s)."""


@dataclass(frozen=True)
class LayerMapping:
    """Tiles of one analog layer.

    Attributes:
        name: the stage (layer) name.
        kind: ``conv`` or ``fc``.
        rows, cols: matrix rows and columns per group.
        groups: independent matrices.
        row_tiles, col_tiles: tiles along the rows and the columns of one group's matrix
            (1 x 1 when several groups share a tile).
        groups_per_tile: groups on one tile (1 for dense layers).
        replicas: copies of the weights (1: no replication).
        first_tile: global index of the layer's first tile (chip = index // tiles_per_chip).
        tiles: tiles allocated = tiles of the plan (groups x row_tiles x col_tiles, or
            ceil(groups / groups_per_tile)) x replicas.
        used_cells: cells holding a weight (all replicas).
        allocated_cells: cells of the allocated tiles.
        chips: chips the layer's tiles are on.
    """

    name: str
    kind: str
    rows: int
    cols: int
    groups: int
    row_tiles: int
    col_tiles: int
    groups_per_tile: int
    replicas: int
    first_tile: int
    tiles: int
    used_cells: int
    allocated_cells: int
    chips: tuple[int, ...]

    @property
    def utilisation(self) -> float:
        """Used cells / allocated cells."""
        return self.used_cells / self.allocated_cells

    @property
    def tiles_per_replica(self) -> int:
        return self.tiles // self.replicas


@dataclass(frozen=True)
class ChipMapping:
    """Tiles of every analog layer of a model.

    Attributes:
        hardware: the chip.
        layers: per analog layer, in execution order.
        chips: chips available (as given, or as many as needed).
    """

    hardware: HardwareConfig
    layers: tuple[LayerMapping, ...]
    chips: int

    def __getitem__(self, name: str) -> LayerMapping:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def get(self, name: str) -> LayerMapping | None:
        return next((layer for layer in self.layers if layer.name == name), None)

    @property
    def chips_used(self) -> int:
        """Chips holding at least one tile of the model."""
        return max((max(layer.chips) + 1 for layer in self.layers), default=0)

    @property
    def tiles_used(self) -> int:
        return sum(layer.tiles for layer in self.layers)

    @property
    def tiles_available(self) -> int:
        return self.chips * self.hardware.tiles_per_chip

    @property
    def spare_tiles(self) -> int:
        return self.tiles_available - self.tiles_used

    @property
    def used_cells(self) -> int:
        return sum(layer.used_cells for layer in self.layers)

    @property
    def allocated_cells(self) -> int:
        return sum(layer.allocated_cells for layer in self.layers)

    @property
    def utilisation(self) -> float:
        """Used cells / cells of the allocated tiles (0 for a model without analog layers)."""
        return self.used_cells / self.allocated_cells if self.allocated_cells else 0.0

    @property
    def replicas(self) -> dict[str, int]:
        return {layer.name: layer.replicas for layer in self.layers}

    def rows(self) -> list[dict]:
        """One table row per analog layer."""
        return [{"layer": m.name, "kind": m.kind, "matrix": f"{m.rows}x{m.cols}"
                 + (f" x{m.groups}g" if m.groups > 1 else ""),
                 "tiles": f"{m.row_tiles}x{m.col_tiles}"
                 + (f" ({m.groups_per_tile}g/tile)" if m.groups_per_tile > 1 else "")
                 + (f"x{m.replicas}" if m.replicas > 1 else ""),
                 "n_tiles": m.tiles, "first_tile": m.first_tile,
                 "chips": ",".join(map(str, m.chips)),
                 "utilisation": round(m.utilisation, 4)} for m in self.layers]


def tiles_for(stage: Stage, hardware: HardwareConfig) -> TileCounts:
    """The tiles of one copy of an analog stage's weights under the layers' tiling rule.

    Raises:
        MappingError: one input channel's k x k rows do not fit a tile.
    """
    if stage.matmul is None:
        raise ValueError(f"stage {stage.name!r} has no analog matrix")
    m = stage.matmul
    area = math.prod(m.kernel) if m.kernel else 1
    try:
        blocks = plan_tiles(m.rows // area * m.groups, m.cols * m.groups, area, m.groups,
                            hardware.tile_rows, hardware.tile_cols)
    except ValueError as err:
        raise MappingError(f"layer {stage.name!r}: {err}") from None
    return tile_counts(blocks)


def map_layers(stages: StageGraph, hardware: HardwareConfig | None = None, *,
               chips: int | None = 1, replicas: Mapping[str, int] | None = None) -> ChipMapping:
    """Place the analog layers of ``stages`` on tiles, in execution order.

    Args:
        stages: the model's stages (:func:`aimcsim.system.stages.build_stages`).
        hardware: the chip (default :class:`HardwareConfig`).
        chips: chips available (>= 1), or None for as many as the model needs.
        replicas: copies of the weights per layer name (default 1 each).
    Raises:
        MappingError: the layers need more tiles than ``chips`` chips have.
    """
    hardware = hardware or HardwareConfig()
    chips = check_int(chips, "chips", 1, allow_none=True)
    replicas = dict(replicas or {})
    names = {s.name for s in stages.analog()}
    unknown = set(replicas) - names
    if unknown:
        raise ValueError(f"replicas names unknown analog layers: {sorted(unknown)}")
    for name, count in replicas.items():
        replicas[name] = check_int(count, f"replicas[{name!r}]", 1)

    per_chip = hardware.tiles_per_chip
    layers, next_tile = [], 0
    for stage in stages.analog():
        counts = tiles_for(stage, hardware)
        copies = replicas.get(stage.name, 1)
        groups = stage.matmul.groups
        n_tiles = counts.tiles * copies
        first = next_tile
        next_tile += n_tiles
        layers.append(LayerMapping(
            name=stage.name, kind=stage.kind, rows=stage.matmul.rows, cols=stage.matmul.cols,
            groups=groups, row_tiles=counts.row_tiles, col_tiles=counts.col_tiles,
            groups_per_tile=counts.groups_per_tile, replicas=copies,
            first_tile=first, tiles=n_tiles, used_cells=stage.matmul.weights * copies,
            allocated_cells=n_tiles * hardware.cells_per_tile,
            chips=tuple(range(first // per_chip, (next_tile - 1) // per_chip + 1))))
    needed = max(1, math.ceil(next_tile / per_chip))
    if chips is not None and needed > chips:
        biggest = max(layers, key=lambda m: m.tiles)
        raise MappingError(
            f"the model needs {next_tile} tiles of {hardware.tile_rows}x{hardware.tile_cols} "
            f"cells but {chips} chip(s) have {chips * per_chip} (tiles_per_chip={per_chip}; "
            f"largest layer {biggest.name!r}: {biggest.tiles} tiles). Allow a multi-chip "
            f"split with chips={needed} (or chips=None; CLI: --chips {needed}), use larger "
            f"tiles, or fewer replicas")
    return ChipMapping(hardware=hardware, layers=tuple(layers),
                       chips=needed if chips is None else chips)
