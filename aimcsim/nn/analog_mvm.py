"""The analog side of one layer: :class:`AnalogMVM`, the seam between a torch layer and the
crossbar simulation.

An analog layer (:mod:`aimcsim.nn.layers`) keeps its torch parameters and its forward; its
``AnalogMVM`` owns everything else:

- the tiles (:class:`~aimcsim.nn.tile_array.TileArray`: plan, programming, reads, cached
  weights, noise streams) and their state in the layer's ``state_dict``;
- the analog config, the hardware-aware training config, the static input range and the ADC
  counters;
- the choice of backend (:func:`aimcsim.nn.backends.select_backend`, once per pass), which
  computes, per row block b of tiles with inputs x_b,

      y = sum_b  s_in,b * ADC(W_n,b^T DAC(x_b / s_in,b) + noise) * s_out,b

  (physics.md section 5) and returns y without the digital bias.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict

import numpy as np
import torch

from aimcsim.nn.backends import BACKEND_CHOICES, select_backend
from aimcsim.nn.geometry import LayerGeometry
from aimcsim.nn.hwa_config import HardwareAwareConfig
from aimcsim.nn.persistence import (config_mismatch, read_extra_state, read_input_range,
                                    read_noise_keys, tiles_from_state, tiles_to_state)
from aimcsim.nn.tile_array import TileArray
from aimcsim.nn.training_weights import device_model_blocks, gaussian_blocks
from aimcsim.tiles.config import AnalogConfig
from aimcsim.tiles.engine import SaturationStats
from aimcsim.tiles.periphery import PeripheryConfig
from aimcsim.validation import check_choice


class AnalogMVM:
    """The tiles of one layer and the backend that computes with them.

    Args:
        geometry: the layer's matrix product (linear or convolution).
        weight_shape: the layer's weight shape (C_out, C_in / groups, *kernel).
        groups: conv groups (1 for linear layers).
        config: the analog config (None: ``AnalogConfig()``, adopted from a loaded state).
        hwa: the hardware-aware training config (None: ``HardwareAwareConfig()``).
        name: the layer's name in error messages.

    Attributes:
        input_range: the calibrated input range of ``input_scaling="static"`` (None: not
            calibrated).
        stats: ADC counters since programming (or the last reset).
        backend: ``auto`` (default), ``numba`` or ``torch`` (see
            :func:`~aimcsim.nn.backends.select_backend`).
    """

    def __init__(self, geometry: LayerGeometry, weight_shape: tuple[int, ...], groups: int,
                 config: AnalogConfig | None, hwa: HardwareAwareConfig | None,
                 name: str) -> None:
        for value, kind, label in ((config, AnalogConfig, "config"),
                                   (hwa, HardwareAwareConfig, "hwa")):
            if value is not None and not isinstance(value, kind):
                raise ValueError(f"{label} must be an instance of {kind.__name__} or None, got "
                                 f"{type(value).__name__}")
        self.name = name
        self.geometry = geometry
        self.config_explicit = config is not None
        self.hwa = hwa if hwa is not None else HardwareAwareConfig()
        try:
            self.tiles = TileArray(weight_shape, groups,
                                   config if config is not None else AnalogConfig())
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
        self.input_range: float | None = None
        self.stats = SaturationStats()
        self._backend = "auto"

    @property
    def config(self) -> AnalogConfig:
        return self.tiles.config

    @config.setter
    def config(self, value: AnalogConfig) -> None:
        if not isinstance(value, AnalogConfig):
            raise ValueError(f"{self.name}: the analog config must be an AnalogConfig, got "
                             f"{type(value).__name__}")
        self.tiles.config = value

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, choice: str) -> None:
        check_choice(choice, BACKEND_CHOICES, "backend")
        self._backend = choice

    @property
    def out_channels(self) -> int:
        return self.tiles.weight_shape[0]

    # ------------------------------------------------------------------ life cycle
    def program(self, weight: torch.Tensor, seed: int | np.random.SeedSequence) -> None:
        """Program ``weight`` (the layer's float weight) onto fresh tiles; caches the read
        weights on the weight's device."""
        w = weight.detach().to("cpu", torch.float32).numpy()
        try:
            self.tiles.program(w, seed, weight.device)
        except ValueError as err:
            raise ValueError(f"{self.name}: {err}") from None
        self.stats = SaturationStats()

    def set_time(self, t: float, seed: int | None = None) -> None:
        """Read every tile at ``t`` >= 0 seconds after programming."""
        self.tiles.set_time(t, seed, self.name)

    def to(self, device: torch.device) -> None:
        """Keep the cached tile weights on ``device`` (the layer's)."""
        self.tiles.refresh(device)

    # ------------------------------------------------------------------ periphery settings
    def static_range(self) -> float:
        """The calibrated input range of ``input_scaling="static"``."""
        if self.input_range is None:
            raise ValueError(f"{self.name}: input_scaling='static' needs a calibrated "
                             f"input range; call aimcsim.calibrate_input_ranges(model, batches) "
                             f"or set layer.input_range")
        return self.input_range

    def row_periphery(self) -> PeripheryConfig:
        """The periphery of a pass that scales each sample (row) as one vector: a static
        range acts as constant noise management."""
        periphery = self.config.periphery
        if periphery.input_scaling != "static":
            return periphery
        return dataclasses.replace(periphery, noise_management="constant",
                                   nm_constant=self.static_range())

    def constant_scale(self) -> float:
        """The input scale when it is the same for every vector: the static range, the
        constant of noise management, or 1."""
        periphery = self.config.periphery
        if periphery.input_scaling == "static":
            return self.static_range()
        return periphery.nm_constant if periphery.noise_management == "constant" else 1.0

    # ------------------------------------------------------------------ forward
    def infer(self, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """The programmed tiles' outputs for ``x`` (without bias; the geometry's 2-D form), and
        whether the backend's kernels have already refused any value of it that is not finite
        (then the layer need not read it again)."""
        backend = select_backend(x, False, self._backend)
        return backend.infer(self, x), backend.checks_output(self)

    def train_forward(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Hardware-aware training: ``weight`` (the clipped float weights) perturbed by the
        noise model of ``hwa.noise_model`` (:mod:`aimcsim.nn.training_weights`), through the
        torch backend's periphery (or its bare GEMMs with ``hwa.periphery=False``)."""
        backend = select_backend(x, True, self._backend)
        if self.hwa.noise_model == "device":
            blocks = device_model_blocks(self.tiles, weight, self.hwa,
                                         numpy_tiles=backend.cpu_kernels)
        else:
            blocks = gaussian_blocks(self.tiles, weight, self.hwa)
        if not self.hwa.periphery:
            return backend.run_without_periphery(self, x, blocks)
        return backend.run(self, x, blocks)

    # ------------------------------------------------------------------ state_dict
    def extra_state(self) -> dict:
        """Configs, input range, noise-stream keys and (when programmed) every tile's state,
        as tensors and JSON strings (``torch.load(..., weights_only=True)`` loads it)."""
        tiles = self.tiles
        state: dict = {"config": json.dumps(self.config.to_dict()),
                       "hwa": json.dumps(asdict(self.hwa)), "programmed": tiles.is_programmed,
                       "input_range": self.input_range,
                       "noise_keys": tiles.noise_keys_json()}
        if tiles.is_programmed:
            state.update(tiles_to_state(tiles.tiles))
        return state

    def load_extra_state(self, state: dict) -> bool:
        """Restore configs, input range and noise keys from ``state`` (checked: ValueError
        naming the layer and the key) and forget the tiles; returns whether the state holds
        programmed tiles (then call :meth:`load_tiles`)."""
        saved, hwa, programmed = read_extra_state(state, self.name)
        if self.config_explicit:
            diff = config_mismatch(self.config, saved)
            if diff:
                raise ValueError(f"{self.name}: the state_dict was saved with a different "
                                 f"analog config ({diff}); convert without a config to adopt the "
                                 f"saved one, or pass the same config")
        else:
            self.config = saved
        self.hwa = hwa
        self.input_range = read_input_range(state, self.name)
        keys = read_noise_keys(state, self.name)
        if keys is not None:
            self.tiles.restore_noise_keys(keys)
        try:
            self.tiles.forget()  # unprogrammed unless the saved tiles load
        except ValueError as err:
            raise ValueError(f"{self.name}: {err}") from None
        return programmed

    def load_tiles(self, state: dict, weight: torch.Tensor) -> None:
        """Rebuild the tiles of ``weight`` and restore their saved state bit for bit."""
        grid = self.tiles.build(weight.detach().to("cpu", torch.float32).numpy())
        tiles_from_state([t for row in grid for t in row], state, self.name)
        self.tiles.grid = grid
        self.tiles.refresh(weight.device)
