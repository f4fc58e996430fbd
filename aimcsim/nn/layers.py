"""Analog Linear / Conv1d / Conv2d layers whose weights live on crossbar tiles.

Each layer subclasses its torch counterpart (same parameters, same ``state_dict`` keys, so
``isinstance(layer, nn.Conv2d)`` still holds) and keeps only its forward: the input checks,
the digital evaluation and the bias. Everything analog is in ``layer.analog``, an
:class:`~aimcsim.nn.analog_mvm.AnalogMVM`:

- ``program(seed)``: cut the weight into tiles (:mod:`aimcsim.tiles.plan`) and program them;
- ``set_time(t)``: read all tiles at t seconds after programming (drift, read noise, GDC);
- the forward pass through the tiles, by the backend picked for the pass
  (:mod:`aimcsim.nn.backends`): the fused Numba periphery around the native GEMM /
  convolution on the CPU in inference, the torch periphery (differentiable, straight-through
  quantisers, any device) in training mode, for gradients and on other devices.

Bias and everything outside the layer stay digital.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aimcsim.nn.analog_mvm import AnalogMVM
from aimcsim.nn.compile import eager_under_compile
from aimcsim.nn.dtypes import computes_in_float32
from aimcsim.nn.geometry import ConvGeometry, LayerGeometry, LinearGeometry
from aimcsim.nn.guards import (check_dtype, check_forward, check_output, check_parameters,
                                periphery_overflow, stamp_weights)
from aimcsim.nn.hwa_config import HardwareAwareConfig
from aimcsim.nn.training_weights import clipped
from aimcsim.tiles.config import AnalogConfig
from aimcsim.tiles.engine import SaturationStats
from aimcsim.tiles.tile import AnalogTile
from aimcsim.validation import check_seed

__all__ = ["ANALOG_LAYERS", "AnalogConv1d", "AnalogConv2d", "AnalogLayerMixin", "AnalogLinear",
           "HardwareAwareConfig"]


class AnalogLayerMixin(ABC):
    """The analog state of a layer (``self.analog``), its public face, and the forward
    dispatch shared by every analog layer.

    Subclasses implement ``_geometry()`` and ``_digital_forward(x)``.
    """

    analog_kind = "analog"
    analog: AnalogMVM

    def _init_analog(self, config: AnalogConfig | None,
                     hwa: HardwareAwareConfig | None) -> None:
        self.analog = AnalogMVM(self._geometry(), tuple(self.weight.shape),
                                getattr(self, "groups", 1), config, hwa, type(self).__name__)
        self.digital_eval = False

    @abstractmethod
    def _geometry(self) -> LayerGeometry:
        """The layer's matrix product (built once, at construction)."""

    @abstractmethod
    def _digital_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The float result of the layer (digital evaluation, empty batches)."""

    # ------------------------------------------------------------------ public state
    @property
    def layer_name(self) -> str:
        return self.analog.name

    @layer_name.setter
    def layer_name(self, name: str) -> None:
        self.analog.name = name

    @property
    def analog_config(self) -> AnalogConfig:
        return self.analog.config

    @analog_config.setter
    def analog_config(self, config: AnalogConfig) -> None:
        self.analog.config = config

    @property
    def hwa(self) -> HardwareAwareConfig:
        return self.analog.hwa

    @hwa.setter
    def hwa(self, hwa: HardwareAwareConfig) -> None:
        self.analog.hwa = hwa

    @property
    def input_range(self) -> float | None:
        """The calibrated input range of ``input_scaling="static"``."""
        return self.analog.input_range

    @input_range.setter
    def input_range(self, value: float | None) -> None:
        self.analog.input_range = value

    @property
    def stats(self) -> SaturationStats:
        """ADC counters since programming (or the last reset)."""
        return self.analog.stats

    @stats.setter
    def stats(self, stats: SaturationStats) -> None:
        self.analog.stats = stats

    @property
    def input_scaling(self) -> str:
        return self.analog_config.periphery.input_scaling

    @property
    def tiles(self) -> list[AnalogTile]:
        """All tiles of the layer (empty before programming)."""
        return self.analog.tiles.tiles

    @property
    def n_tiles(self) -> int:
        return self.analog.tiles.n_tiles

    @property
    def is_programmed(self) -> bool:
        return self.analog.tiles.is_programmed

    @property
    def time(self) -> float | None:
        """Seconds since programming at which the tiles were last read."""
        return self.analog.tiles.time

    def tile_utilisation(self) -> float:
        """Used cells / cells of the allocated tiles."""
        return self.analog.tiles.utilisation()

    # ------------------------------------------------------------------ life cycle
    def program(self, seed: int | np.random.SeedSequence = 0) -> None:
        """Program the layer's current weights onto its tiles (one sample of programming noise)
        and read them at t = 0."""
        seed = check_seed(seed)
        check_parameters(self)
        self.analog.program(self.weight, seed)
        stamp_weights(self)

    def set_time(self, t: float, seed: int | None = None) -> None:
        """Read every tile at ``t`` >= 0 seconds after programming (no re-programming)."""
        self.analog.set_time(t, seed)

    def get_extra_state(self) -> dict:
        return self.analog.extra_state()

    def set_extra_state(self, state: dict) -> None:
        if self.analog.load_extra_state(state):  # ValueError if damaged
            check_parameters(self)
            self.analog.load_tiles(state, self.weight)
            stamp_weights(self)

    def _apply(self, fn, recurse=True):  # keep cached tile weights on the module's device
        result = super()._apply(fn, recurse)
        self.analog.to(self.weight.device)
        return result

    # ------------------------------------------------------------------ forward
    def _analog_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dispatch: digital / training (float weights + noise) / programmed tiles."""
        x = check_forward(self, x)  # dtype, finite bias, programmed, weights unchanged (guards)
        if (self.digital_eval and not self.training) or x.shape[0] == 0:
            return self._digital_forward(x)  # (an empty batch: the empty output, right shape)
        checked = False
        with periphery_overflow(self, x):
            if self.training:
                y = self.analog.train_forward(x, self.clipped_weight())
            else:
                y, checked = self.analog.infer(x)
        y = self.analog.geometry.finish(y, self.bias)
        if checked and self.bias is None:
            return y  # the ADC kernel refused any value that is not finite as it converted
        return check_output(self, x, y)  # finite (a huge input can overflow float32)

    def clipped_weight(self) -> torch.Tensor:
        """The float weights of the hardware-aware forward: W clipped to
        +-clip_sigma x std(W) of the layer (W itself when clipping is off). The gradient passes
        the clip unchanged (straight-through), so clipped weights keep learning."""
        return clipped(self.weight, self.hwa.clip_sigma)

    def _digital_weight(self) -> torch.Tensor:
        return self.clipped_weight() if self.digital_eval == "clipped" else self.weight


class AnalogLinear(AnalogLayerMixin, nn.Linear):
    """``nn.Linear`` on crossbar tiles: y = x W^T (+ bias, digital)."""

    analog_kind = "linear"

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 config: AnalogConfig | None = None, hwa: HardwareAwareConfig | None = None,
                 device=None, dtype=None) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias, device=device, dtype=dtype)
        self._init_analog(config, hwa)

    def _geometry(self) -> LayerGeometry:
        return LinearGeometry(self.in_features, self.out_features)

    @classmethod
    def from_digital(cls, module: nn.Linear, config: AnalogConfig | None = None,
                     hwa: HardwareAwareConfig | None = None) -> "AnalogLinear":
        layer = cls(module.in_features, module.out_features, module.bias is not None, config,
                    hwa, device=module.weight.device)
        layer.load_state_dict(module.state_dict(), strict=False)
        return layer

    @eager_under_compile
    @computes_in_float32
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_dtype(self, x)
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self.layer_name}: expected input (..., {self.in_features}), "
                             f"got {tuple(x.shape)}")
        lead = x.shape[:-1]
        y = self._analog_forward(x.reshape(-1, self.in_features))
        return y.reshape(*lead, self.out_features)

    def _digital_forward(self, x):
        return F.linear(x, self._digital_weight(), self.bias)


class _AnalogConvNd(AnalogLayerMixin):
    """Shared code of the analog convolutions (computed as 2-D convolutions)."""

    _expected_dims: int

    def _geometry(self) -> LayerGeometry:
        return ConvGeometry.of(self)

    @classmethod
    def from_digital(cls, module: nn.Module, config: AnalogConfig | None = None,
                     hwa: HardwareAwareConfig | None = None):
        """The analog twin of a torch convolution, with its weights and bias."""
        layer = cls(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                    module.padding, module.dilation, module.groups, module.bias is not None,
                    module.padding_mode, config, hwa, device=module.weight.device)
        layer.load_state_dict(module.state_dict(), strict=False)
        return layer

    @eager_under_compile
    @computes_in_float32
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(x, torch.Tensor) and x.dim() == self._expected_dims - 1:
            return self._analog_forward(x.unsqueeze(0)).squeeze(0)  # unbatched, as in torch
        return self._analog_forward(x)

    def _digital_forward(self, x):
        return self._conv_forward(x, self._digital_weight(), self.bias)


class AnalogConv2d(_AnalogConvNd, nn.Conv2d):
    """``nn.Conv2d`` on crossbar tiles (stride, padding modes, dilation, groups)."""

    analog_kind = "conv2d"
    _expected_dims = 4

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 config: AnalogConfig | None = None, hwa: HardwareAwareConfig | None = None,
                 device=None, dtype=None) -> None:
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride, padding,
                           dilation, groups, bias, padding_mode, device=device, dtype=dtype)
        self._init_analog(config, hwa)


class AnalogConv1d(_AnalogConvNd, nn.Conv1d):
    """``nn.Conv1d`` on crossbar tiles, computed as a 2-D convolution of height 1."""

    analog_kind = "conv1d"
    _expected_dims = 3

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 config: AnalogConfig | None = None, hwa: HardwareAwareConfig | None = None,
                 device=None, dtype=None) -> None:
        nn.Conv1d.__init__(self, in_channels, out_channels, kernel_size, stride, padding,
                           dilation, groups, bias, padding_mode, device=device, dtype=dtype)
        self._init_analog(config, hwa)


ANALOG_LAYERS = (AnalogLinear, AnalogConv1d, AnalogConv2d)
