"""One ResNet family for CIFAR-sized inputs, from which every network of the zoo is built.

A network is a :class:`ResNetSpec`: a first convolution, stages of residual blocks (depth, width,
stride), a block type (``basic``: two 3x3 convs; ``bottleneck``: 1x1, 3x3, 1x1), a number of
parallel branches per block (summed with the shortcut, as in the AnalogNAS macro space), and a
shortcut type (``A``: identity with zero-padded channels and strided subsampling, no weights;
``B``: 1x1 convolution + batch-norm where the shape changes). The head is global average pooling
and a fully connected layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

BLOCK_TYPES = ("basic", "bottleneck")
SHORTCUT_TYPES = ("A", "B")


@dataclass(frozen=True)
class StageSpec:
    """One stage: ``depth`` residual blocks of ``width`` output channels; the first block
    applies ``stride`` (1 or 2)."""

    depth: int
    width: int
    stride: int = 1


@dataclass(frozen=True)
class ResNetSpec:
    """Architecture of one member of the family (all sizes in channels / pixels)."""

    stages: tuple[StageSpec, ...]
    stem_width: int = 16
    stem_kernel: int = 3
    block: str = "basic"
    branches: int = 1
    shortcut: str = "B"
    bottleneck_ratio: float = 0.25
    num_classes: int = 10
    in_channels: int = 3
    name: str = "resnet"
    notes: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.block not in BLOCK_TYPES:
            raise ValueError(f"block must be one of {BLOCK_TYPES}, got {self.block!r}")
        if self.shortcut not in SHORTCUT_TYPES:
            raise ValueError(f"shortcut must be one of {SHORTCUT_TYPES}, got {self.shortcut!r}")
        if self.branches < 1:
            raise ValueError(f"branches must be >= 1, got {self.branches}")
        if not self.stages:
            raise ValueError("stages must not be empty")
        for stage in self.stages:
            if stage.depth < 1 or stage.width < 1 or stage.stride not in (1, 2):
                raise ValueError(f"invalid stage {stage}: depth, width >= 1 and stride in (1, 2)")
        if self.stem_kernel % 2 != 1:
            raise ValueError(f"stem_kernel must be odd, got {self.stem_kernel}")


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(cout)]


def _branch(block: str, cin: int, cout: int, stride: int, ratio: float) -> nn.Sequential:
    if block == "basic":
        layers = (_conv_bn(cin, cout, 3, stride) + [nn.ReLU(inplace=True)]
                  + _conv_bn(cout, cout, 3))
    else:
        mid = max(1, int(round(cout * ratio)))
        layers = (_conv_bn(cin, mid, 1) + [nn.ReLU(inplace=True)]
                  + _conv_bn(mid, mid, 3, stride) + [nn.ReLU(inplace=True)]
                  + _conv_bn(mid, cout, 1))
    return nn.Sequential(*layers)


class PadShortcut(nn.Module):
    """Option-A shortcut: subsample by ``stride`` and zero-pad the channels (no weights)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        extra = cout - cin
        self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return nn.functional.pad(x, (0, 0, 0, 0, self.pad[0], self.pad[1]))


class ResidualBlock(nn.Module):
    """out = ReLU(shortcut(x) + sum over branches of branch(x))."""

    def __init__(self, spec: ResNetSpec, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            _branch(spec.block, cin, cout, stride, spec.bottleneck_ratio)
            for _ in range(spec.branches))
        if stride == 1 and cin == cout:
            self.shortcut: nn.Module = nn.Identity()
        elif spec.shortcut == "A" and cout >= cin:
            self.shortcut = PadShortcut(cin, cout, stride)
        else:
            self.shortcut = nn.Sequential(*_conv_bn(cin, cout, 1, stride))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shortcut(x)
        for branch in self.branches:
            out = out + branch(x)
        return self.relu(out)


class ResNet(nn.Module):
    """A CIFAR ResNet built from a :class:`ResNetSpec`. Input: (N, 3, H, W) images."""

    def __init__(self, spec: ResNetSpec) -> None:
        super().__init__()
        self.spec = spec
        self.stem = nn.Sequential(*_conv_bn(spec.in_channels, spec.stem_width, spec.stem_kernel),
                                  nn.ReLU(inplace=True))
        stages = []
        cin = spec.stem_width
        for stage in spec.stages:
            blocks = []
            for i in range(stage.depth):
                blocks.append(ResidualBlock(spec, cin, stage.width, stage.stride if i == 0 else 1))
                cin = stage.width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, spec.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        # Zero the last batch-norm of every branch so each block starts as its shortcut.
        for module in self.modules():
            if isinstance(module, ResidualBlock):
                for branch in module.branches:
                    nn.init.zeros_(branch[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters (weights, biases, batch-norm affine terms)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_analog_weights(model: nn.Module) -> int:
    """Number of weights of conv and linear layers and of the q / k / v in-projections of
    ``nn.MultiheadAttention`` (what goes onto crossbar tiles)."""
    total = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            total += m.weight.numel()
        elif isinstance(m, nn.MultiheadAttention):  # out_proj is an nn.Linear, counted above
            packed = (m.in_proj_weight,) if m._qkv_same_embed_dim else (
                m.q_proj_weight, m.k_proj_weight, m.v_proj_weight)
            total += sum(w.numel() for w in packed)
    return total
