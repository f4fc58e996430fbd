"""The matrix product of an analog layer, defined once for every backend.

A linear layer multiplies rows: ``y = x W^T``. A convolution is computed as a 2-D convolution
(a Conv1d as one of height 1) over the input channels of each tile's row block, so no backend
unfolds its input. A geometry knows:

- :meth:`prepare`: the input in the form the tiles see (padding modes other than zeros applied,
  a Conv1d input given a height of 1);
- :meth:`gemm`: one row block's product of a (DAC output) input slice with its weights in conv
  layout (C_out_block, C_in_block / G, *kernel): the GEMM every backend puts its periphery
  around;
- :meth:`finish`: the digital bias and the output back in the layer's shape;
- for convolutions, the :class:`ConvWindow` of per-patch input scaling.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from aimcsim.tiles.plan import RowBlock


@dataclass(frozen=True)
class ConvWindow:
    """The 2-D window of a convolution: kernel, stride and dilation (height, width) and the
    explicit zero padding (left, right, top, bottom) as ``F.pad`` takes it."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, int, int, int]

    @classmethod
    def of(cls, kernel, stride, dilation, padding) -> "ConvWindow":
        """From a convolution's settings; ``padding`` is a pair, ``"same"`` or ``"valid"``."""
        kernel, stride, dilation = tuple(kernel), tuple(stride), tuple(dilation)
        if padding == "valid":
            pads = [(0, 0), (0, 0)]
        elif padding == "same":
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
        else:
            pads = [(int(p), int(p)) for p in padding]
        (top, bottom), (left, right) = pads
        return cls(kernel, stride, dilation, (left, right, top, bottom))

    @property
    def is_pointwise(self) -> bool:
        return self.kernel == (1, 1)

    def kernel_parameters(self, height: int, width: int) -> np.ndarray:
        """The int64 window description of ``kernels.periphery.dac_per_patch`` for an input
        of height x width (after padding mode, before zero padding)."""
        (k_h, k_w), (s_h, s_w), (d_h, d_w) = self.kernel, self.stride, self.dilation
        left, right, top, bottom = self.pad
        h_out = (height + top + bottom - d_h * (k_h - 1) - 1) // s_h + 1
        w_out = (width + left + right - d_w * (k_w - 1) - 1) // s_w + 1
        c_left, _, c_top, _ = self.centred_pad
        return np.array([k_h, k_w, s_h, s_w, d_h, d_w, top, left, c_top, c_left, h_out,
                         w_out], np.int64)

    @property
    def centred_pad(self) -> tuple[int, int, int, int]:
        """Zero padding of a stride-1 pool whose window is centred on each pixel."""
        (kh, kw), (dh, dw) = self.kernel, self.dilation
        th, tw = dh * (kh - 1), dw * (kw - 1)
        return (tw // 2, tw - tw // 2, th // 2, th - th // 2)


class LayerGeometry(ABC):
    """What every geometry provides (see the module docstring)."""

    #: spatial kernel of the weight, () for a linear layer
    kernel: tuple[int, ...]
    is_conv: ClassVar[bool] = False

    @abstractmethod
    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The layer input as the tiles see it (linear: (N, C); conv: (N, C, H, W))."""

    @abstractmethod
    def gemm(self, v: torch.Tensor, weight: torch.Tensor, groups: int) -> torch.Tensor:
        """A row block's product of its input slice ``v`` with ``weight`` (conv layout) in
        ``groups`` groups."""

    @abstractmethod
    def finish(self, y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """Add the digital bias to the summed tile outputs ``y``; the layer's output shape."""

    @staticmethod
    def block_input(x: torch.Tensor, block: RowBlock) -> torch.Tensor:
        """The input channels of a row block (a view)."""
        return x[:, block.in_channels[0]:block.in_channels[1]]


@dataclass(frozen=True)
class LinearGeometry(LayerGeometry):
    """``y = x W^T + b`` on (N, in_features) inputs."""

    in_features: int
    out_features: int
    kernel: tuple[int, ...] = ()

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def gemm(self, v: torch.Tensor, weight: torch.Tensor, groups: int) -> torch.Tensor:
        return v @ weight.t()

    def finish(self, y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return y + bias if bias is not None else y


@dataclass(frozen=True)
class ConvGeometry(LayerGeometry):
    """A Conv1d / Conv2d computed as a 2-D convolution.

    Attributes:
        in_channels: input channels of the layer.
        kernel: the layer's kernel (1 or 2 dims); ``kernel_2d``, ``stride_2d``,
            ``dilation_2d``, ``padding_2d`` the 2-D convolution's (a Conv1d gets height 1).
        padding_mode: ``zeros`` (zero padding inside the convolution) or another torch mode,
            applied by :meth:`prepare` with ``mode_padding`` (``F.pad`` order).
        input_dims: dims of a batched input (3 for Conv1d, 4 for Conv2d).
    """

    in_channels: int
    kernel: tuple[int, ...]
    kernel_2d: tuple[int, int]
    stride_2d: tuple[int, int]
    dilation_2d: tuple[int, int]
    padding_2d: tuple[int, int] | str
    padding_mode: str
    mode_padding: tuple[int, ...]
    input_dims: int
    is_conv: ClassVar[bool] = True

    @classmethod
    def of(cls, conv: torch.nn.modules.conv._ConvNd) -> "ConvGeometry":
        """The geometry of a torch Conv1d or Conv2d module."""
        flat = len(conv.kernel_size) == 1
        lift = (lambda v: (1,) + tuple(v)) if flat else tuple
        padding = conv.padding
        if not isinstance(padding, str):
            padding = (0,) + tuple(padding) if flat else tuple(padding)
        return cls(in_channels=conv.in_channels, kernel=tuple(conv.kernel_size),
                   kernel_2d=lift(conv.kernel_size), stride_2d=lift(conv.stride),
                   dilation_2d=lift(conv.dilation), padding_2d=padding,
                   padding_mode=conv.padding_mode,
                   mode_padding=tuple(conv._reversed_padding_repeated_twice),
                   input_dims=3 if flat else 4)

    @property
    def conv_padding(self) -> tuple[int, int] | str | int:
        """The zero padding of the 2-D convolution (0 when a padding mode pads the input)."""
        return 0 if self.padding_mode != "zeros" else self.padding_2d

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.input_dims or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input of {self.input_dims} dims with "
                             f"{self.in_channels} channels, got {tuple(x.shape)}")
        if self.padding_mode != "zeros":
            x = F.pad(x, list(self.mode_padding), mode=self.padding_mode)
        return x.unsqueeze(2) if self.input_dims == 3 else x

    def weight_2d(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.unsqueeze(2) if weight.dim() == 3 else weight

    def gemm(self, v: torch.Tensor, weight: torch.Tensor, groups: int) -> torch.Tensor:
        return F.conv2d(v, self.weight_2d(weight), None, self.stride_2d, self.conv_padding,
                        self.dilation_2d, groups)

    def finish(self, y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if bias is not None:
            y = y + bias.reshape(1, -1, 1, 1)
        return y.squeeze(2) if self.input_dims == 3 else y

    def window(self) -> ConvWindow:
        """The convolution's 2-D window (kernel, stride, dilation, zero padding)."""
        padding = self.conv_padding
        if isinstance(padding, int):
            padding = (padding, padding)
        return ConvWindow.of(self.kernel_2d, self.stride_2d, self.dilation_2d, padding)

    def output_shape(self, x: torch.Tensor, out_channels: int) -> tuple[int, ...]:
        """(N, C_out, H_out, W_out) of a prepared input ``x``."""
        probe = F.conv2d(x[:1, :1].new_zeros((1, 1) + tuple(x.shape[2:])),
                         x.new_zeros((1, 1) + tuple(self.kernel_2d)), None, self.stride_2d,
                         self.conv_padding, self.dilation_2d)
        return (x.shape[0], out_channels) + tuple(probe.shape[2:])

    @staticmethod
    def dense_block_matrix(weight: torch.Tensor, block: RowBlock, in_channels: int
                           ) -> torch.Tensor:
        """A row block's conv weights (C_out_block, C_in_block / G, *k) as the dense
        (C_out_block, C_in_block * k) matrix of its unfolded input (zeros off the diagonal
        blocks of a grouped tile)."""
        c_out = weight.shape[0]
        if block.groups == 1:
            return weight.reshape(c_out, -1)
        dense = weight.new_zeros((c_out, in_channels) + tuple(weight.shape[2:]))
        cout_g, cin_g = c_out // block.groups, in_channels // block.groups
        for g in range(block.groups):
            dense[g * cout_g:(g + 1) * cout_g, g * cin_g:(g + 1) * cin_g] = \
                weight[g * cout_g:(g + 1) * cout_g]
        return dense.reshape(c_out, -1)
