"""The networks of the architecture-trait sweep (issue 22): T500 with one trait at a time moved
toward ResNet-32.

T500 (:data:`aimcsim.models.zoo.SPECS` ``"t500"``) and ResNet-32 differ in six traits of the
:class:`~aimcsim.models.resnet.ResNetSpec` family:

| trait | t500 | resnet32 |
|---|---|---|
| first-conv kernel (``stem_kernel``) | 5x5 | 3x3 |
| branches per block (``branches``) | 2 | 1 |
| shortcut where the shape changes (``shortcut``) | B (1x1 conv) | A (zero pad) |
| block type (``block``) | bottleneck | basic |
| widths (``stem_width``, stage widths) | 48; 96, 192, 352 | 16; 16, 32, 64 |
| blocks per stage (stage depths) | 1, 1, 1 | 5, 5, 5 |

Each variant takes ResNet-32's value of one trait and keeps T500's value of every other. T500
(424,506 parameters) and ResNet-32 (464,154) are compared at about the same size, so the sweep
keeps about that size where the trait allows it: a trait whose change alone would move the
parameter count by more than 2x also scales every width (the stem's and each stage's) by one
common factor, each width rounded to a multiple of 8 (:func:`scale_widths`). That is the
basic block (4,795,194 parameters at T500's widths: 11.3x) and the depth (1,884,730 at T500's
widths: 4.4x). The width itself cannot keep the size (at T500's depth and block the width is
what sets it), so ``t500_width`` is the one step that shrinks the network, by halving every
width toward ResNet-32's; ``t500_depth`` then deepens ``t500_width`` to ResNet-32's five blocks
per stage, which brings the count back to T500's size. So ``t500_depth`` against
``t500_width`` is the depth step at equal widths, and ``t500_depth`` against ``t500`` the
shallow-and-wide against deep-and-narrow trade at equal size (AnalogNAS's "shallower" and
"wider convolutions"). ``docs/models.md`` lists the counts and the reasons.

| name | trait moved toward ResNet-32 | base | other fields changed | parameters |
|---|---|---|---|---|
| t500_kernel3 | first-conv kernel 5x5 -> 3x3 | t500 | - | 422,202 |
| t500_branches1 | branches per block 2 -> 1 | t500 | - | 261,818 |
| t500_shortcutA | shortcut 1x1 conv -> zero pad | t500 | - | 332,602 |
| t500_basic | bottleneck -> basic block | t500 | widths x 1/3 | 550,522 |
| t500_width | widths x 1/2 (48 -> 24; 96, 192, 352 -> 48, 96, 176) | t500 | - | 109,218 |
| t500_depth | blocks per stage 1 -> 5 | t500_width | - | 478,114 |
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from aimcsim.models.resnet import ResNetSpec, StageSpec

#: Widths are rounded to a multiple of this when scaled (so a bottleneck's inner width, a
#: quarter of its width, stays a whole number of channels).
WIDTH_MULTIPLE = 8
#: Blocks per stage of ResNet-32 (6n + 2 layers with n = 5).
RESNET32_BLOCKS_PER_STAGE = 5


@dataclass(frozen=True)
class TraitStep:
    """One network of the sweep: ``base`` with ``trait`` moved toward ResNet-32.

    Attributes:
        name: zoo name of the variant.
        trait: the trait, in words ("first-conv kernel", ...).
        change: what changed, e.g. "5x5 -> 3x3".
        base: the network it differs from in exactly ``fields`` (plus ``compensation``).
        fields: the :class:`ResNetSpec` fields that carry the trait ("stage_depths" and
            "stage_widths" name the depths and widths of :attr:`ResNetSpec.stages`).
        compensation: the width factor applied to keep the size (1: none).
    """

    name: str
    trait: str
    change: str
    base: str
    fields: tuple[str, ...]
    compensation: float = 1.0


def scale_widths(spec: ResNetSpec, factor: float) -> ResNetSpec:
    """``spec`` with its stem width and every stage width multiplied by ``factor`` and rounded
    to the nearest multiple of :data:`WIDTH_MULTIPLE` (at least one multiple)."""
    if not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor!r}")

    def scaled(width: int) -> int:
        return max(WIDTH_MULTIPLE, WIDTH_MULTIPLE * round(width * factor / WIDTH_MULTIPLE))

    stages = tuple(replace(s, width=scaled(s.width)) for s in spec.stages)
    return replace(spec, stem_width=scaled(spec.stem_width), stages=stages)


def with_depth(spec: ResNetSpec, depth: int) -> ResNetSpec:
    """``spec`` with ``depth`` residual blocks in every stage."""
    return replace(spec, stages=tuple(StageSpec(depth, s.width, s.stride) for s in spec.stages))


#: The sweep's steps, in the order of the issue (kernel, branches, shortcut, block, width,
#: depth).
STEPS: tuple[TraitStep, ...] = (
    TraitStep("t500_kernel3", "first-conv kernel", "5x5 -> 3x3", "t500", ("stem_kernel",)),
    TraitStep("t500_branches1", "branches per block", "2 -> 1", "t500", ("branches",)),
    TraitStep("t500_shortcutA", "shortcut", "1x1 conv (B) -> zero pad (A)", "t500",
              ("shortcut",)),
    TraitStep("t500_basic", "block type", "bottleneck -> basic (widths x 1/3 to keep the size)",
              "t500", ("block",), compensation=1 / 3),
    TraitStep("t500_width", "widths", "x 1/2: 48; 96, 192, 352 -> 24; 48, 96, 176", "t500",
              ("stem_width", "stage_widths")),
    TraitStep("t500_depth", "blocks per stage", "1 -> 5 (at t500_width's widths)",
              "t500_width", ("stage_depths",)),
)


def trait_specs(t500: ResNetSpec) -> dict[str, ResNetSpec]:
    """The variants of :data:`STEPS`, built from the zoo's ``t500`` spec."""
    width = replace(scale_widths(t500, 1 / 2), name="t500_width")
    specs = {
        "t500_kernel3": replace(t500, name="t500_kernel3", stem_kernel=3),
        "t500_branches1": replace(t500, name="t500_branches1", branches=1),
        "t500_shortcutA": replace(t500, name="t500_shortcutA", shortcut="A"),
        "t500_basic": replace(scale_widths(t500, 1 / 3), name="t500_basic", block="basic"),
        "t500_width": width,
        "t500_depth": replace(with_depth(width, RESNET32_BLOCKS_PER_STAGE), name="t500_depth"),
    }
    return specs
