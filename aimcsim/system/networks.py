"""The example networks of figures F3 and F4 (targets.md), and model lookup by name for the
``system`` command.

* :func:`f3_network`: Conv0 -> Conv1 -> Add, the add summing both convolutions' outputs
  (tensor 1 stays live across Conv1; tensor 2 reuses the space of tensor 0).
* :func:`f4_network`: the 28-layer network of F4: 0 conv, 1 conv, 2 pool, 3 conv, 4 conv,
  5 pool, 6 conv, 7 res, 8 conv, 9 res, 10 conv, 11 res, 12 conv, 13 pool, then six
  (conv, res) pairs 14..25, 26 pool, 27 fc. Every ``conv`` is a 3x3 convolution + batch-norm +
  ReLU; a ``res`` adds the input of the preceding conv to its output (one-conv residual
  blocks); pools 2, 5, 13 halve the resolution (2x2 max), pool 26 is global average pooling.
  targets.md gives no channel widths: the default (16, 32, 64, 128) fits one 64-tile chip of
  256 x 256 tiles (50 tiles).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: layer types of F4, index = layer number
F4_LAYER_KINDS: tuple[str, ...] = (
    "conv", "conv", "pool", "conv", "conv", "pool", "conv", "res", "conv", "res", "conv", "res",
    "conv", "pool", "conv", "res", "conv", "res", "conv", "res", "conv", "res", "conv", "res",
    "conv", "res", "pool", "fc")


class F3Net(nn.Module):
    """Conv0 -> Conv1 -> Add(conv0 output, conv1 output); 3x3 convolutions with bias."""

    def __init__(self, in_channels: int = 16, width: int = 16) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y0 = self.conv0(x)
        return y0 + self.conv1(y0)


def f3_network(in_channels: int = 16, width: int = 16) -> F3Net:
    """The Conv0 -> Conv1 -> Add graph of figure F3. With as many input channels as filters
    (default 16, on 16 x 16 inputs: :data:`F3_INPUT_SHAPE`) every tensor has the same size, so
    the add's input buffer can reuse the network input's space."""
    if in_channels < 1 or width < 1:
        raise ValueError(f"in_channels and width must be >= 1, got {in_channels}, {width}")
    return F3Net(in_channels, width)


_RES_A = (6, 8, 10)
_RES_B = (14, 16, 18, 20, 22, 24)


def _conv_unit(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class F4Net(nn.Module):
    """The 28-layer network of figure F4 (see the module docstring). Input (N, C, H, W) with
    H and W divisible by 8."""

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 128), num_classes: int = 10,
                 in_channels: int = 3) -> None:
        super().__init__()
        if len(widths) != 4 or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths must be 4 positive channel counts, got {widths!r}")
        if num_classes < 1 or in_channels < 1:
            raise ValueError("num_classes and in_channels must be >= 1")
        w0, w1, w2, w3 = (int(w) for w in widths)
        self.conv0 = _conv_unit(in_channels, w0)
        self.conv1 = _conv_unit(w0, w1)
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = _conv_unit(w1, w2)
        self.conv4 = _conv_unit(w2, w2)
        self.pool5 = nn.MaxPool2d(2)
        for i in _RES_A:  # conv6, conv8, conv10: residual blocks of one conv
            self.add_module(f"conv{i}", _conv_unit(w2, w2))
        self.conv12 = _conv_unit(w2, w3)
        self.pool13 = nn.MaxPool2d(2)
        for i in _RES_B:  # conv14, conv16, ..., conv24
            self.add_module(f"conv{i}", _conv_unit(w3, w3))
        self.pool26 = nn.AdaptiveAvgPool2d(1)
        self.fc27 = nn.Linear(w3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool2(self.conv1(self.conv0(x)))
        x = self.pool5(self.conv4(self.conv3(x)))
        for i in _RES_A:
            x = x + getattr(self, f"conv{i}")(x)  # res i + 1
        x = self.pool13(self.conv12(x))
        for i in _RES_B:
            x = x + getattr(self, f"conv{i}")(x)
        return self.fc27(torch.flatten(self.pool26(x), 1))


def f4_network(widths: Sequence[int] = (16, 32, 64, 128), num_classes: int = 10) -> F4Net:
    """The 28-layer pipeline network of figure F4."""
    return F4Net(widths, num_classes)


#: per-sample input shape of the F3 example
F3_INPUT_SHAPE = (16, 16, 16)


def system_model_names() -> tuple[str, ...]:
    """Zoo networks plus ``f3net`` and ``f4net``."""
    from aimcsim.models import MODEL_NAMES
    return tuple(MODEL_NAMES) + ("f3net", "f4net")


def build_system_model(name: str) -> nn.Module:
    """A network by name: a zoo model (``aimcsim.models``), ``f3net`` or ``f4net``."""
    if name == "f3net":
        return f3_network()
    if name == "f4net":
        return f4_network()
    from aimcsim.models import MODEL_NAMES, build_model
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {list(system_model_names())}")
    return build_model(name)
