"""A weight matrix larger than one tile, split into a grid of tiles with their own periphery.

Tile outputs are summed digitally in float32 over the row blocks and concatenated over the
column blocks (physics.md section 5, "per-tile ADC"). The split is the tiling rule of the
layers (:func:`aimcsim.tiles.plan.plan_tiles` with one input per row).
"""
from __future__ import annotations

import numpy as np

from aimcsim.tiles.config import AnalogConfig
from aimcsim.tiles.engine import SaturationStats
from aimcsim.tiles.plan import plan_tiles
from aimcsim.tiles.tile import AnalogTile
from aimcsim.validation import check_finite, check_int, check_seed


class TiledMatrix:
    """An (in_size, out_size) weight matrix on ceil(in/rows) x ceil(out/cols) tiles of balanced
    sizes.

    Args:
        weights: (in_size, out_size) array (inputs along rows, as on the crossbar).
        config: the analog configuration (tile size in ``config.mapping``).
    """

    def __init__(self, weights: np.ndarray, config: AnalogConfig) -> None:
        w = np.asarray(weights, dtype=np.float32)
        if w.ndim != 2:
            raise ValueError(f"weights must be 2-D (in_size, out_size), got shape {w.shape}")
        check_finite(w, "weights")
        self.config = config
        self.shape = w.shape
        plan = plan_tiles(w.shape[0], w.shape[1], 1, 1, config.mapping.rows,
                          config.mapping.cols)
        self.row_blocks = [block.in_channels for block in plan]
        self.col_blocks = [slot.out_channels for slot in plan[0].slots]
        self.tiles = [[AnalogTile(w[r0:r1, c0:c1], config) for (c0, c1) in self.col_blocks]
                      for (r0, r1) in self.row_blocks]

    @property
    def all_tiles(self) -> list[AnalogTile]:
        return [tile for row in self.tiles for tile in row]

    def program(self, seed: int | np.random.SeedSequence) -> None:
        """Program every tile; tiles draw independent streams spawned from ``seed``."""
        seed = check_seed(seed)
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        for tile, child in zip(self.all_tiles, seq.spawn(len(self.all_tiles))):
            tile.program(child)

    def set_time(self, t: float, seed: int | None = None) -> None:
        """Read every tile at ``t`` seconds after programming."""
        seed = check_int(seed, "seed", 0, allow_none=True)
        for i, tile in enumerate(self.all_tiles):
            tile.set_time(t, None if seed is None else seed * 1_000_003 + i)

    def mvm(self, x: np.ndarray) -> np.ndarray:
        """y = x W through the tiles: x (N, in_size) -> (N, out_size) float32."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.shape[0]:
            raise ValueError(f"x must have shape (N, {self.shape[0]}), got {x.shape}")
        out = np.zeros((x.shape[0], self.shape[1]), np.float32)
        for (r0, r1), row in zip(self.row_blocks, self.tiles):
            xs = np.ascontiguousarray(x[:, r0:r1])
            for (c0, c1), tile in zip(self.col_blocks, row):
                out[:, c0:c1] += tile.mvm(xs)
        return out

    @property
    def stats(self) -> SaturationStats:
        total = SaturationStats()
        for tile in self.all_tiles:
            total.add(tile.stats)
        return total
