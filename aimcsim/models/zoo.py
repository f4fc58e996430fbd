"""Named networks of the zoo: four ResNets (:class:`aimcsim.models.resnet.ResNetSpec`) and a
small vision transformer (:class:`aimcsim.models.vit.ViTSpec`).

| name     | first conv | stages (depth x width)  | block, branches  | shortcut | parameters |
|----------|------------|-------------------------|------------------|----------|------------|
| f1net    | 3x3, 16    | 3x16, 3x28, 3x56        | basic, 1         | B (1x1)  | 212,786    |
| resnet20 | 3x3, 16    | 3x16, 3x32, 3x64        | basic, 1         | A (pad)  | 269,722    |
| resnet32 | 3x3, 16    | 5x16, 5x32, 5x64        | basic, 1         | A (pad)  | 464,154    |
| t500     | 5x5, 48    | 1x96, 1x192, 1x352      | bottleneck, 2    | B (1x1)  | 424,506    |

``f1net`` is the network of figure F1 (targets.md). ResNet-20/32 are He et al. 2016's CIFAR
networks (option-A shortcuts; ResNet-32 has 0.46M parameters as published). ``t500`` is our
reconstruction of AnalogNAS T500 (Benmeziane et al. 2023, arXiv 2305.10459), whose exact
configuration is not published in text: a member of the AnalogNAS ResNet-like macro space with
the traits the paper's T500 figure shows (larger first kernel, three stages of one block, two
parallel bottleneck branches per block, wide convolutions) at about the paper's 422K parameters.
``docs/models.md`` gives every choice, its source and what is uncertain.

:data:`TRAIT_SPECS` holds the networks of the architecture-trait sweep (issue 22): ``t500``
with one trait at a time moved toward ResNet-32 (``t500_kernel3``, ``t500_branches1``,
``t500_shortcutA``, ``t500_basic``, ``t500_width``, ``t500_depth``; the rules and counts are in
:mod:`aimcsim.models.traits`).

``vit`` (:data:`VIT_SPECS`) is a pre-norm vision transformer: 4x4 patches (64 tokens), a class
token, learnt position embeddings, 6 blocks of width 192 with 3 heads and an MLP of 384,
1,806,346 parameters (``aimcsim/models/vit.py``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from torch import nn

from aimcsim.models.resnet import ResNet, ResNetSpec, StageSpec
from aimcsim.models.traits import trait_specs
from aimcsim.models.vit import VisionTransformer, ViTSpec


def _stages(depths: tuple[int, ...], widths: tuple[int, ...]) -> tuple[StageSpec, ...]:
    return tuple(StageSpec(d, w, 1 if i == 0 else 2) for i, (d, w) in enumerate(zip(depths, widths)))


SPECS: dict[str, ResNetSpec] = {
    "f1net": ResNetSpec(name="f1net", stages=_stages((3, 3, 3), (16, 28, 56)), shortcut="B"),
    "resnet20": ResNetSpec(name="resnet20", stages=_stages((3, 3, 3), (16, 32, 64)), shortcut="A"),
    "resnet32": ResNetSpec(name="resnet32", stages=_stages((5, 5, 5), (16, 32, 64)), shortcut="A"),
    # AnalogNAS macro-space point: out_channel0=48, first kernel 5, M=3, R=(1, 1, 1), B=2,
    # bottleneck blocks, widening factors 0.5, 0.5, 0.545 (width 48 -> 96 -> 192 -> 352).
    "t500": ResNetSpec(name="t500", stem_width=48, stem_kernel=5,
                       stages=_stages((1, 1, 1), (96, 192, 352)), block="bottleneck",
                       branches=2, shortcut="B"),
}

#: the networks of the architecture-trait sweep: t500 with one trait moved toward ResNet-32.
TRAIT_SPECS: dict[str, ResNetSpec] = trait_specs(SPECS["t500"])

#: the zoo's vision transformers (4x4 patches of 32x32 images: 64 tokens plus a class token).
VIT_SPECS: dict[str, ViTSpec] = {
    "vit": ViTSpec(name="vit", dim=192, depth=6, heads=3, mlp_ratio=2.0, pool="cls"),
}

#: the class that builds a network from each kind of spec.
_FAMILIES: dict[type, type[nn.Module]] = {ResNetSpec: ResNet, ViTSpec: VisionTransformer}


def build_model(name: str, num_classes: int = 10) -> nn.Module:
    """Build a zoo network by name (see :data:`SPECS`, :data:`VIT_SPECS` and
    :data:`TRAIT_SPECS`), freshly initialised."""
    specs = {**SPECS, **VIT_SPECS, **TRAIT_SPECS}
    if name not in specs:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(specs)}")
    spec = specs[name]
    if num_classes != spec.num_classes:
        spec = replace(spec, num_classes=num_classes)
    return _FAMILIES[type(spec)](spec)


MODEL_NAMES: tuple[str, ...] = tuple(SPECS) + tuple(VIT_SPECS) + tuple(TRAIT_SPECS)
BUILDERS: dict[str, Callable[[], nn.Module]] = {n: (lambda n=n: build_model(n))
                                                for n in MODEL_NAMES}
