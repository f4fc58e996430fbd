"""The ResNet family and the zoo: parameter counts, layer structure, shapes, spec validation."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from aimcsim.models import (MODEL_NAMES, SPECS, TRAIT_SPECS, VIT_SPECS, PadShortcut,
                            ResidualBlock, ResNet, ResNetSpec, StageSpec, build_model,
                            count_analog_weights, count_parameters)
from aimcsim.models import traits, zoo

# Published counts (He et al. 2016 / AnalogNAS figure legend: ResNet-20 269K, ResNet-32 464K).
PUBLISHED = {"resnet20": 269_722, "resnet32": 464_154}
T500_PAPER_PARAMETERS = 422_000  # "AnalogNAS_T500 (422K)", Benmeziane et al. 2023


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _docstring_counts() -> dict[str, int]:
    """Parameter counts stated in the zoo's docstring table (last column)."""
    counts = {}
    for line in zoo.__doc__.splitlines():
        m = re.match(r"\|\s*(\w+)\s*\|.*\|\s*([\d,]+)\s*\|\s*$", line)
        if m and m.group(1) in SPECS:
            counts[m.group(1)] = int(m.group(2).replace(",", ""))
    return counts


def _convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def _depth(model: ResNet) -> int:
    """Weight layers on the longest input-to-output path: stem, one branch per block, FC."""
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    return 1 + sum(len(_convs(b.branches[0])) for b in blocks) + 1


@pytest.fixture(scope="module")
def models() -> dict[str, ResNet]:
    torch.manual_seed(0)
    return {name: build_model(name) for name in SPECS}


def test_zoo_names():
    assert set(SPECS) == {"f1net", "resnet20", "resnet32", "t500"}
    assert set(VIT_SPECS) == {"vit"}  # tests/test_models_vit.py
    assert MODEL_NAMES == tuple(SPECS) + tuple(VIT_SPECS) + tuple(TRAIT_SPECS)
    assert set(TRAIT_SPECS) == {s.name for s in traits.STEPS}  # tests below
    assert all(spec.name == name for name, spec in {**SPECS, **VIT_SPECS, **TRAIT_SPECS}.items())


def test_parameter_counts_match_published_and_docstring(models):
    stated = _docstring_counts()
    assert set(stated) == set(SPECS), "zoo docstring table must list every ResNet"
    for name, model in models.items():
        assert count_parameters(model) == stated[name], name
    for name, count in PUBLISHED.items():
        assert count_parameters(models[name]) == count, name


def test_t500_is_about_the_published_size(models):
    n = count_parameters(models["t500"])
    assert abs(n - T500_PAPER_PARAMETERS) / T500_PAPER_PARAMETERS < 0.02
    assert n < count_parameters(models["resnet32"])  # "smaller" than ResNet-32


def test_all_parameters_trainable_and_analog_weight_counts(models):
    for name, model in models.items():
        assert count_parameters(model, trainable_only=False) == count_parameters(model)
        weights = sum(m.weight.numel() for m in model.modules()
                      if isinstance(m, (nn.Conv2d, nn.Linear)))
        assert count_analog_weights(model) == weights
        bn = sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d)
                 for p in m.parameters())
        # Everything that is not a conv/FC weight is a batch-norm affine term or the FC bias.
        assert count_parameters(model) == weights + bn + model.fc.bias.numel(), name
        assert all(m.bias is None for m in _convs(model))


@pytest.mark.parametrize("name", ["f1net", "resnet20", "resnet32", "t500"])
def test_forward_shapes(models, name):
    model = models[name].eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        # The head pools globally, so other input sizes work too.
        assert model(torch.randn(1, 3, 40, 40)).shape == (1, 10)
    wide = build_model(name, num_classes=100).eval()
    with torch.no_grad():
        assert wide(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    assert SPECS[name].num_classes == 10  # the zoo entry itself is unchanged


def test_f1net_layers_as_in_figure_f1(models):
    """First 3x3 conv with 16 filters; 3 stages of 6 3x3 convs (16, 28, 56 filters), the two
    later stages halving the resolution with stride 2 and a 1x1 conv on the shortcut; FC 56->10."""
    model = models["f1net"]
    convs = _convs(model)
    stem, rest = convs[0], convs[1:]
    assert (stem.in_channels, stem.out_channels, stem.kernel_size, stem.stride) == \
        (3, 16, (3, 3), (1, 1))
    main = [c for c in rest if c.kernel_size == (3, 3)]
    shortcut = [c for c in rest if c.kernel_size == (1, 1)]
    assert len(main) == 18 and len(shortcut) == 2 and len(convs) == 1 + 18 + 2
    for s, width in enumerate((16, 28, 56)):
        stage = main[6 * s:6 * s + 6]
        assert all(c.out_channels == width for c in stage)
        strides = [c.stride[0] for c in stage]
        assert strides == ([1] * 6 if s == 0 else [2] + [1] * 5)
    assert [(c.in_channels, c.out_channels, c.stride) for c in shortcut] == \
        [(16, 28, (2, 2)), (28, 56, (2, 2))]
    assert isinstance(model.stages[0][0].shortcut, nn.Identity)  # 16 -> 16, no conv needed
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1 and (linears[0].in_features, linears[0].out_features) == (56, 10)
    # Feature map sizes: 32 -> 32 -> 16 -> 8 before the global pooling.
    x = model.stem(torch.randn(1, 3, 32, 32))
    sizes = []
    for stage in model.stages:
        x = stage(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(16, 32, 32), (28, 16, 16), (56, 8, 8)]


def test_resnet32_structure(models):
    model = models["resnet32"]
    convs = _convs(model)
    assert len(convs) == 31 and all(c.kernel_size == (3, 3) for c in convs)  # 1 + 15 x 2
    assert sum(isinstance(m, ResidualBlock) for m in model.modules()) == 15
    pads = [m for m in model.modules() if isinstance(m, PadShortcut)]
    assert len(pads) == 2  # option A: no weights on the shortcuts
    assert model.fc.in_features == 64


def test_t500_structure(models):
    spec = SPECS["t500"]
    model = models["t500"]
    assert spec.block == "bottleneck" and spec.branches == 2 and spec.shortcut == "B"
    assert [s.depth for s in spec.stages] == [1, 1, 1]
    assert [s.stride for s in spec.stages] == [1, 2, 2]
    widths = [spec.stem_width] + [s.width for s in spec.stages]
    # AnalogNAS widening rule: each width is the previous one divided by a factor in [0.5, 0.8].
    assert all(0.5 <= a / b <= 0.8 for a, b in zip(widths, widths[1:]))
    assert spec.stem_width in (8, 12, 16, 32, 48, 64)  # AnalogNAS out_channel0 choices
    stem = _convs(model)[0]
    assert stem.kernel_size == (spec.stem_kernel,) * 2
    assert stem.padding == (spec.stem_kernel // 2,) * 2  # "same" padding: 32x32 stays 32x32
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 3
    for block in blocks:
        assert len(block.branches) == 2
        kernels = [c.kernel_size[0] for c in _convs(block.branches[0])]
        assert kernels == [1, 3, 1]
        assert isinstance(block.shortcut, nn.Sequential)  # every block changes the shape
    n_convs = 1 + 3 * (2 * 3 + 1)
    assert len(_convs(model)) == n_convs
    assert model.fc.in_features == spec.stages[-1].width
    # Shallower than ResNet-32: fewer weight layers in sequence from input to output.
    assert _depth(model) == 1 + 3 * 3 + 1
    assert _depth(models["resnet32"]) == 1 + 15 * 2 + 1
    # Wider: the widest convolution has more output channels than any of ResNet-32's.
    assert max(c.out_channels for c in _convs(model)) > \
        max(c.out_channels for c in _convs(models["resnet32"]))


def test_branches_and_bottleneck_parameters():
    base = dict(stages=(StageSpec(1, 32, 1),), stem_width=32)
    one = count_parameters(ResNet(ResNetSpec(**base, branches=1)))
    three = count_parameters(ResNet(ResNetSpec(**base, branches=3)))
    branch = 2 * (32 * 32 * 9) + 4 * 32  # two 3x3 convs and their batch-norms
    assert three - one == 2 * branch
    spec = ResNetSpec(stages=(StageSpec(1, 64, 1),), stem_width=16, block="bottleneck",
                      bottleneck_ratio=0.25)
    mid = 16
    expected_branch = 16 * mid + 9 * mid * mid + mid * 64 + 2 * (mid + mid + 64)
    shortcut = 16 * 64 + 2 * 64
    stem = 3 * 9 * 16 + 2 * 16
    fc = 64 * 10 + 10
    assert count_parameters(ResNet(spec)) == stem + expected_branch + shortcut + fc


def test_blocks_start_as_their_shortcut():
    """The last batch-norm of every branch starts at zero, so a fresh block is its shortcut."""
    torch.manual_seed(0)
    spec = ResNetSpec(stages=(StageSpec(2, 16, 1),), branches=3)
    block = ResNet(spec).stages[0][1].eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.relu(x))


def test_pad_shortcut_subsamples_and_pads_channels():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    y = PadShortcut(3, 8, stride=2)(x)
    assert y.shape == (2, 8, 2, 2)
    torch.testing.assert_close(y[:, 2:5], x[:, :, ::2, ::2])
    assert y[:, :2].abs().sum() == 0 and y[:, 5:].abs().sum() == 0


def test_shortcut_a_falls_back_to_conv_when_narrowing():
    spec = ResNetSpec(stages=(StageSpec(1, 8, 2),), stem_width=16, shortcut="A")
    block = ResNet(spec).stages[0][0]
    assert isinstance(block.shortcut, nn.Sequential)
    assert block(torch.randn(1, 16, 8, 8)).shape == (1, 8, 4, 4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(block="dense"), "block"),
    (dict(shortcut="C"), "shortcut"),
    (dict(branches=0), "branches"),
    (dict(stages=()), "stages"),
    (dict(stages=(StageSpec(0, 16),)), "stage"),
    (dict(stages=(StageSpec(1, 0),)), "stage"),
    (dict(stages=(StageSpec(1, 16, 3),)), "stride"),
    (dict(stem_kernel=4), "stem_kernel"),
])
def test_spec_validation(kwargs, match):
    args = dict(stages=(StageSpec(1, 16),))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ResNetSpec(**args)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="resnet32"):
        build_model("resnet56")


def test_build_model_returns_fresh_networks():
    torch.manual_seed(1)
    a = build_model("f1net")
    torch.manual_seed(2)
    b = build_model("f1net")
    assert a is not b
    assert not torch.equal(a.stem[0].weight, b.stem[0].weight)
    torch.manual_seed(1)
    c = build_model("f1net")
    assert torch.equal(a.stem[0].weight, c.stem[0].weight)


# ---- the networks of the architecture-trait sweep (aimcsim/models/traits.py) ----

def _fields(spec: ResNetSpec) -> dict:
    """A spec as named traits, the stages split into depths, widths and strides."""
    return {"stem_kernel": spec.stem_kernel, "stem_width": spec.stem_width,
            "block": spec.block, "branches": spec.branches, "shortcut": spec.shortcut,
            "bottleneck_ratio": spec.bottleneck_ratio, "num_classes": spec.num_classes,
            "in_channels": spec.in_channels,
            "stage_depths": tuple(s.depth for s in spec.stages),
            "stage_widths": tuple(s.width for s in spec.stages),
            "stage_strides": tuple(s.stride for s in spec.stages)}


def _differing(a: ResNetSpec, b: ResNetSpec) -> set[str]:
    fa, fb = _fields(a), _fields(b)
    return {k for k in fa if fa[k] != fb[k]}


ALL_SPECS = {**SPECS, **TRAIT_SPECS}


@pytest.mark.parametrize("step", traits.STEPS, ids=lambda s: s.name)
def test_trait_variant_differs_from_its_base_in_exactly_its_trait(step):
    """Undo the documented width compensation and the variant equals its base but for the
    named trait, and that trait now has ResNet-32's value."""
    variant, base = TRAIT_SPECS[step.name], ALL_SPECS[step.base]
    scaled_base = traits.scale_widths(base, step.compensation) if step.compensation != 1 \
        else base
    assert _differing(variant, scaled_base) == set(step.fields)
    resnet32 = _fields(SPECS["resnet32"])
    mine = _fields(variant)
    for field in step.fields:
        if field == "stem_width" or field == "stage_widths":  # moved toward, not onto
            t500, r32 = _fields(SPECS["t500"])[field], resnet32[field]
            assert all(min(x, y) <= m <= max(x, y) and m != x for m, x, y in
                       zip(np.atleast_1d(mine[field]), np.atleast_1d(t500),
                           np.atleast_1d(r32)))
        else:
            assert mine[field] == resnet32[field], field


def test_t500_width_halves_every_width_and_t500_depth_deepens_it():
    t500, width, depth = SPECS["t500"], TRAIT_SPECS["t500_width"], TRAIT_SPECS["t500_depth"]
    assert _fields(width)["stage_widths"] == tuple(w // 2 for w in _fields(t500)["stage_widths"])
    assert width.stem_width == t500.stem_width // 2
    assert _differing(depth, t500) == {"stem_width", "stage_widths", "stage_depths"}
    assert _fields(depth)["stage_depths"] == (traits.RESNET32_BLOCKS_PER_STAGE,) * 3
    basic = TRAIT_SPECS["t500_basic"]
    assert basic.stem_width == SPECS["resnet32"].stem_width  # 48 / 3
    assert _fields(basic)["stage_widths"] == (32, 64, 120)  # 96/3, 192/3, 352/3 -> x8


def _trait_table_counts() -> dict[str, int]:
    counts = {}
    for line in traits.__doc__.splitlines():
        m = re.match(r"\|\s*(t500_\w+)\s*\|.*\|\s*([\d,]+)\s*\|\s*$", line)
        if m:
            counts[m.group(1)] = int(m.group(2).replace(",", ""))
    return counts


def test_trait_variant_counts_and_the_size_rule():
    """The counts of the module's table; the width compensation exactly where the trait
    alone would move the count by more than 2x, and then back within 1.3x of t500."""
    stated = _trait_table_counts()
    assert set(stated) == set(TRAIT_SPECS)
    t500 = count_parameters(ResNet(SPECS["t500"]))
    for step in traits.STEPS:
        n = count_parameters(ResNet(TRAIT_SPECS[step.name]))
        assert n == stated[step.name], step.name
        if step.compensation != 1:
            uncompensated = traits.scale_widths(TRAIT_SPECS[step.name], 1 / step.compensation)
            ratio = count_parameters(ResNet(uncompensated)) / t500
            assert ratio > 2 or ratio < 0.5, step.name
            assert 1 / 1.3 < n / t500 < 1.3, step.name
        elif step.name != "t500_width":  # the width sets the size: the one that shrinks it
            assert 0.5 < n / t500 < 2, step.name
    literal_depth = traits.with_depth(SPECS["t500"], traits.RESNET32_BLOCKS_PER_STAGE)
    assert count_parameters(ResNet(literal_depth)) > 2 * t500  # hence t500_width's widths


@pytest.mark.parametrize("name", sorted(TRAIT_SPECS))
def test_trait_variants_build_and_run(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_scale_widths_rounds_to_multiples_and_refuses_bad_factors():
    spec = traits.scale_widths(SPECS["resnet32"], 0.3)
    assert spec.stem_width == 8 and _fields(spec)["stage_widths"] == (8, 8, 16)
    assert _differing(spec, SPECS["resnet32"]) == {"stem_width", "stage_widths"}
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="factor"):
            traits.scale_widths(SPECS["t500"], bad)


def test_models_md_trait_table_matches_the_networks():
    """docs/models.md's table of the sweep's networks: conv layers, parameters and analog
    weights of every row as built."""
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "models.md").read_text()
    section = text.split("## The trait sweep's networks")[1].split("\n## ")[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\| `(\w+)` \|.*\| (\d+) \| ([\d,]+) \| ([\d,]+) \| [\d.]+ M \|$", line)
        if m:
            rows[m.group(1)] = tuple(int(g.replace(",", "")) for g in m.groups()[1:])
    assert set(rows) == {"t500", "resnet32"} | set(TRAIT_SPECS)
    for name, (convs, params, analog) in rows.items():
        model = build_model(name)
        assert (len(_convs(model)), count_parameters(model), count_analog_weights(model)) == \
            (convs, params, analog), name
