"""The tiles of one analog layer: plan, programming, reads, cached weights and noise streams.

A :class:`TileArray` cuts the layer's weight (C_out, C_in / groups, *kernel) into tiles with the
tiling rule (:func:`aimcsim.tiles.plan.plan_tiles`), programs them (one
:class:`~aimcsim.tiles.tile.AnalogTile` per slot, numpy device model), reads them at a time t,
and caches each row block's read weights as torch tensors on the layer's device
(:class:`BlockWeights`), which is what the backends compute with.

Noise streams are named, never consumed in order: a forward pass's noise seeds derive from
the programming seed, the current read's key and the pass count since that read
(:meth:`TileArray.pass_seeds`), so a read gives the same numbers whatever ran before it.
"""
from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import torch

from aimcsim.kernels.rng import counter_word_int
from aimcsim.tiles.config import AnalogConfig
from aimcsim.tiles.plan import RowBlock, plan_tiles, slot_to_conv_weight, slot_weights
from aimcsim.tiles.tile import AnalogTile, NotProgrammedError
from aimcsim.validation import check_int, check_time

_UINT64 = (1 << 64) - 1


class BlockWeights(NamedTuple):
    """What one row block of tiles computes with.

    Attributes:
        weight: normalised weights W_n = (G+ - G-) / g_max of the block's tiles, in the
            layout of the layer's weight (C_out_block, C_in_block / G, *kernel).
        scale: (C_out_block,) output scale w_max x drift compensation alpha (ADC units ->
            weight units).
        variance: per-device read-noise variance of W_n, same layout as ``weight``
            (per-MVM read noise), or None.
    """

    weight: torch.Tensor
    scale: torch.Tensor
    variance: torch.Tensor | None


class BlockMaxima(NamedTuple):
    """Bounds of one row block's values, for :func:`aimcsim.tiles.engine.safe_vector_scale`:
    inputs per output (rows), and the largest |W_n|, read-noise variance and output scale."""

    rows: int
    weight: float
    variance: float
    scale: float


class TileArray:
    """The tiles of a layer whose weight has shape ``weight_shape`` = (C_out, C_in / groups,
    *kernel), in ``groups`` conv groups, under ``config``.

    Attributes:
        config: the analog configuration (shared with the tiles).
        blocks: the plan (row blocks of tile slots), remade at every programming.
        grid: the tiles, one list per row block, or None before programming.
        cache: the read weights of each row block on the layer's device, or None.
    """

    def __init__(self, weight_shape: tuple[int, ...], groups: int,
                 config: AnalogConfig) -> None:
        self.weight_shape = tuple(int(s) for s in weight_shape)
        self.groups = int(groups)
        self.kernel = self.weight_shape[2:]
        self.config = config
        self.blocks: list[RowBlock] = self.plan()
        self.grid: list[list[AnalogTile]] | None = None
        self.cache: list[BlockWeights] | None = None
        self.maxima: list[BlockMaxima] | None = None
        self._bfloat16: dict[bool, list[torch.Tensor]] | None = None
        self.device = torch.device("cpu")
        self.program_key: tuple[int, ...] = (0,)
        self.reads = 0
        self.start_read((0, 0))

    # ------------------------------------------------------------------ plan
    def plan(self) -> list[RowBlock]:
        """The row blocks of the current config's tile size (ValueError if a kernel's rows
        do not fit one tile)."""
        mapping = self.config.mapping
        area = int(np.prod(self.kernel)) if self.kernel else 1
        out_channels, in_per_group = self.weight_shape[:2]
        return plan_tiles(in_per_group * self.groups, out_channels, area, self.groups,
                          mapping.rows, mapping.cols)

    @property
    def tiles(self) -> list[AnalogTile]:
        """All tiles, row block by row block (empty before programming)."""
        return [t for row in (self.grid or []) for t in row]

    @property
    def n_tiles(self) -> int:
        return sum(len(b.slots) for b in self.blocks)

    @property
    def is_programmed(self) -> bool:
        return self.grid is not None

    @property
    def time(self) -> float | None:
        """Seconds since programming at which the tiles were last read."""
        return self.grid[0][0].t if self.grid else None

    def utilisation(self) -> float:
        """Used cells / cells of the allocated tiles."""
        mapping = self.config.mapping
        return int(np.prod(self.weight_shape)) / (self.n_tiles * mapping.rows * mapping.cols)

    # ------------------------------------------------------------------ life cycle
    def build(self, weight: np.ndarray) -> list[list[AnalogTile]]:
        """Fresh, unprogrammed tiles holding ``weight`` (float32, the layer's shape)."""
        w = weight.reshape(weight.shape[0], weight.shape[1], -1)
        return [[AnalogTile(slot_weights(w, slot, self.groups), self.config)
                 for slot in block.slots] for block in self.blocks]

    def program(self, weight: np.ndarray, seed: int | np.random.SeedSequence,
                device: torch.device) -> None:
        """Program ``weight`` onto fresh tiles (one sample of programming noise per tile,
        independent streams spawned from ``seed``), read them at t = 0 and cache the read
        weights on ``device``."""
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        self.program_key = tuple(int(v) for v in seq.generate_state(2, np.uint32))
        self.reads = 0
        self.start_read((0, 0))
        self.blocks = self.plan()
        children = iter(seq.spawn(self.n_tiles))
        self.grid = self.build(weight)
        for tile in self.tiles:
            tile.program(next(children))
        self.refresh(device)

    def set_time(self, t: float, seed: int | None, name: str) -> None:
        """Read every tile at ``t`` >= 0 seconds after programming (no re-programming);
        ``seed`` picks the read-noise draws (None: the next read of each tile's stream)."""
        if self.grid is None:
            raise NotProgrammedError(f"{name}: set_time() before program()")
        t = check_time(t)
        seed = check_int(seed, "seed", 0, allow_none=True)
        for i, tile in enumerate(self.tiles):
            tile.set_time(t, None if seed is None else int(seed) * 7919 + i)
        self.reads += 1
        self.start_read((1, int(seed) & _UINT64) if seed is not None else (2, self.reads))
        self.refresh(self.device)

    def start_read(self, read_key: tuple[int, int]) -> None:
        """Name the read whose forward passes follow: their noise streams derive from the
        programming seed, this read's key and the pass count since the read, never from
        anything that ran before it."""
        self.read_key = read_key
        self.forward_calls = 0
        seq = np.random.SeedSequence([*self.program_key, *read_key])
        self._read_base = int(seq.generate_state(1, np.uint64)[0])

    def pass_seeds(self) -> list[int]:
        """One 64-bit noise seed per row block for the next forward pass (order-free): output
        ``call * blocks + b`` of the SplitMix64 stream of the read, whose start is a
        ``SeedSequence`` of the programming and read keys (a SeedSequence per pass cost 1.3 ms
        of a ResNet-32 forward)."""
        call = self.forward_calls
        self.forward_calls += 1
        n = len(self.blocks)
        return [counter_word_int(self._read_base, call * n + b) for b in range(n)]

    def refresh(self, device: torch.device) -> None:
        """Cache every row block's read weights, scales and variances on ``device`` (no-op
        before programming)."""
        self.device = torch.device(device)
        self._bfloat16 = None
        if self.grid is None:
            self.cache, self.maxima = None, None
            return
        cache, maxima = [], []
        for row in self.grid:
            w = np.concatenate([slot_to_conv_weight(t.normalized_weights, self.kernel)
                                for t in row])
            var = None
            if row[0].read_variance is not None:
                var = np.concatenate([slot_to_conv_weight(t.read_variance, self.kernel)
                                      for t in row])
            scale = np.concatenate([t.output_scale for t in row])
            maxima.append(BlockMaxima(
                int(np.prod(w.shape[1:])), float(np.abs(w).max(initial=0.0)),
                0.0 if var is None else float(var.max(initial=0.0)),
                float(np.abs(scale).max(initial=0.0))))
            entry = BlockWeights(torch.from_numpy(w), torch.from_numpy(scale),
                                 None if var is None else torch.from_numpy(var))
            if self.device.type != "cpu":
                entry = BlockWeights(*(v.to(self.device) if v is not None else None
                                       for v in entry))
            cache.append(entry)
        self.cache, self.maxima = cache, maxima

    def bfloat16_weights(self, widened: bool = False) -> list[torch.Tensor]:
        """Each row block's read weights W_n rounded to bfloat16 (nearest, ties to even),
        as bfloat16 or, ``widened``, as float32 tensors holding the same values; made at the
        first call after a read and kept until the next (``AnalogConfig.gemm_precision``)."""
        if self.cache is None:
            raise NotProgrammedError("bfloat16_weights() before program()")
        if self._bfloat16 is None:
            self._bfloat16 = {}
        if widened not in self._bfloat16:
            low = [entry.weight.to(torch.bfloat16) for entry in self.cache]
            self._bfloat16[widened] = [w.float() for w in low] if widened else low
        return self._bfloat16[widened]

    def forget(self) -> None:
        """Back to unprogrammed (the plan of the current config kept)."""
        self.blocks = self.plan()
        self.grid, self.cache, self.maxima, self._bfloat16 = None, None, None, None

    # ------------------------------------------------------------------ state
    def noise_keys_json(self) -> str:
        return json.dumps([list(self.program_key), list(self.read_key), self.reads])

    def restore_noise_keys(self, keys: tuple[tuple[int, ...], tuple[int, int], int]) -> None:
        self.program_key, read_key, self.reads = keys
        self.start_read(read_key)
