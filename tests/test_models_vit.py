"""The zoo's vision transformer: size, shapes, spec validation, conversion with every
projection on tiles, the ideal analog model equal to FP32, one hardware-aware training step."""
from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn

import aimcsim
from aimcsim.models import (VIT_SPECS, VisionTransformer, ViTSpec, build_model,
                            count_analog_weights, count_parameters, vit, zoo)
from aimcsim.nn import AnalogConv2d, AnalogLinear, AnalogMultiheadAttention
from aimcsim.tiles import AnalogConfig

VIT_PARAMETERS = 1_806_346
VIT_ANALOG_WEIGHTS = 1_780_608


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model() -> VisionTransformer:
    torch.manual_seed(0)
    return build_model("vit").eval()


def _stated_counts(text: str) -> list[int]:
    return [int(m.replace(",", "")) for m in re.findall(r"has (\d[\d,]+)\s+parameters", text)]


def test_parameter_count(model):
    n = count_parameters(model)
    assert 500_000 <= n <= 2_000_000
    assert n == VIT_PARAMETERS
    assert _stated_counts(vit.__doc__) == [n] and str(f"{n:,}") in zoo.__doc__
    assert count_analog_weights(model) == VIT_ANALOG_WEIGHTS
    spec = VIT_SPECS["vit"]
    d, h = spec.dim, spec.mlp_hidden
    block = 4 * (d * d + d) + (d * h + h) + (h * d + d) + 2 * 2 * d
    expected = (3 * 16 * d + d) + spec.tokens * d + spec.depth * block + 2 * d + d * 10 + 10
    assert n == expected


def test_structure(model):
    spec = VIT_SPECS["vit"]
    assert (spec.patch_size, spec.grid, spec.tokens) == (4, 8, 65)  # 64 patches + class token
    assert model.patch_embed.kernel_size == model.patch_embed.stride == (4, 4)
    layers = model.encoder.layers
    assert len(layers) == 6
    for layer in layers:
        assert layer.norm_first and layer.self_attn.batch_first
        assert layer.self_attn.num_heads == 3
        assert layer.activation is torch.nn.functional.gelu
        assert (layer.linear1.in_features, layer.linear1.out_features) == (192, 384)


def test_forward_shapes(model):
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    wide = build_model("vit", num_classes=100).eval()
    mean_pool = VisionTransformer(ViTSpec(dim=16, depth=1, heads=2, pool="mean")).eval()
    with torch.no_grad():
        assert wide(torch.randn(1, 3, 32, 32)).shape == (1, 100)
        assert mean_pool(torch.randn(3, 3, 32, 32)).shape == (3, 10)
    assert count_parameters(mean_pool) < count_parameters(
        VisionTransformer(ViTSpec(dim=16, depth=1, heads=2, pool="cls")))  # one token less
    with pytest.raises(ValueError, match="32, 32"):
        model(torch.randn(1, 3, 40, 40))


@pytest.mark.parametrize("kwargs, match", [
    (dict(patch_size=5), "patch_size"),
    (dict(heads=5), "heads"),
    (dict(depth=0), "depth"),
    (dict(mlp_ratio=0.0), "mlp_ratio"),
    (dict(pool="max"), "pool"),
    (dict(dropout=1.0), "dropout"),
])
def test_spec_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ViTSpec(**kwargs)


def test_converts_every_projection_to_tiles(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing with weights may stay digital
        analog = aimcsim.convert_to_analog(model)
    layers = dict(aimcsim.analog_layers(analog))
    assert len(layers) == 1 + 6 * 6 + 1  # patch embedding, 6 x (q, k, v, out, 2 MLP), head
    assert isinstance(analog.patch_embed, AnalogConv2d)
    for layer in analog.encoder.layers:
        assert isinstance(layer.self_attn, AnalogMultiheadAttention)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            assert isinstance(getattr(layer.self_attn, proj), AnalogLinear)
    digital = [name for name, m in analog.named_modules()
               if isinstance(m, (nn.Linear, nn.Conv2d)) and name not in layers]
    assert digital == []
    assert sum(m.weight.numel() for m in layers.values()) == VIT_ANALOG_WEIGHTS
    table = aimcsim.summary(analog, example_input=torch.randn(1, 3, 32, 32))
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        row = next(line for line in table.splitlines()
                   if line.startswith(f"encoder.layers.5.self_attn.{proj} "))
        assert " analog " in row
    assert "38 analog layers" in table
    share = re.search(r"MACs on tiles: [\d,]+ of [\d,]+ \(([\d.]+)%\)", table)
    assert share and 90.0 < float(share.group(1)) < 100.0  # scores and weighted sums digital


def test_ideal_analog_equals_fp32(model):
    analog = aimcsim.convert_to_analog(model, AnalogConfig.ideal()).eval()
    aimcsim.program(analog, seed=0)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(analog(x), model(x), rtol=1e-4, atol=1e-4)


def test_one_hardware_aware_training_step():
    torch.manual_seed(0)
    analog = aimcsim.convert_to_analog(build_model("vit")).train()  # default AnalogConfig
    optimizer = torch.optim.SGD(analog.parameters(), lr=0.01)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    before = [p.detach().clone() for p in analog.parameters()]
    loss = nn.functional.cross_entropy(analog(x), y)
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in analog.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert analog.pos_embed.bias.grad.abs().sum() > 0
    assert analog.encoder.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
    optimizer.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, analog.parameters()))
