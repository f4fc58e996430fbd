"""Crossbar tiles: weights as differential conductance pairs, with DAC/ADC periphery, bound and
noise management, global drift compensation, IR drop of resistive wires, and the tiling rule that
splits large matrices, linear layers and convolutions into tiles (:mod:`aimcsim.tiles.plan`)."""
from aimcsim.tiles.config import (AnalogConfig, DriftCompensationConfig, IRDropConfig,
                                  MappingConfig)
from aimcsim.tiles.engine import SaturationStats, analog_pass
from aimcsim.tiles.periphery import PeripheryConfig, quantization_step
from aimcsim.tiles.plan import plan_tiles, tile_counts
from aimcsim.tiles.split import balanced_blocks
from aimcsim.tiles.tile import AnalogTile, NotProgrammedError
from aimcsim.tiles.tiled_matrix import TiledMatrix

__all__ = ["AnalogConfig", "DriftCompensationConfig", "IRDropConfig", "MappingConfig",
           "SaturationStats", "analog_pass", "PeripheryConfig", "quantization_step",
           "balanced_blocks", "plan_tiles", "tile_counts", "AnalogTile", "NotProgrammedError",
           "TiledMatrix"]
