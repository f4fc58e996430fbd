"""``AnalogConfig.gemm_precision``: bfloat16 rounding and widening, the DAC and ADC kernels'
bfloat16 variants against their float32 selves, and layers against references computed
from the rounding's definition (native bfloat16 convolutions and their float32 emulation)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import aimcsim
from aimcsim.devices import ideal_device
from aimcsim.kernels.adc_per_vector import adc_per_vector
from aimcsim.kernels.bfloat16 import round_to_bfloat16, widen_bfloat16
from aimcsim.kernels.periphery import dac_per_patch
from aimcsim.nn import convert_to_analog
from aimcsim.nn.backends import numba_backend
from aimcsim.tiles import AnalogConfig, PeripheryConfig


def torch_bits(values: np.ndarray) -> np.ndarray:
    """torch's own float32 -> bfloat16 rounding (nearest, ties to even), as uint16 bits."""
    return torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


# ---------------------------------------------------------------- config
def test_config_default_ideal_json_and_validation():
    assert AnalogConfig().gemm_precision == "bfloat16"
    assert AnalogConfig.ideal().gemm_precision == "float32"
    cfg = AnalogConfig(gemm_precision="float32")
    assert AnalogConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).gemm_precision == \
        "float32"
    assert AnalogConfig.from_dict({}).gemm_precision == "bfloat16"
    with pytest.raises(ValueError, match="gemm_precision"):
        AnalogConfig(gemm_precision="float16")


# ---------------------------------------------------------------- rounding
BIG = float(np.float32(1e30))  # (hypothesis wants float32-exact bounds)

def test_rounding_ties_to_even_and_widening_is_exact():
    one_ulp = 2.0 ** -7  # of bfloat16 at 1
    values = np.array([1.0, 1 + one_ulp / 2, 1 + 1.5 * one_ulp, 1 + one_ulp / 2 + 2 ** -20,
                       -(1 + one_ulp / 2), 3.4e38, -0.0, 2.0 ** -130], np.float32)
    wide = widen_bfloat16(round_to_bfloat16(values))
    # a tie goes to the even neighbour (1, then 1 + 2 ulp), just above a tie rounds up
    expected = [1.0, 1.0, 1 + 2 * one_ulp, 1 + one_ulp, -1.0]
    np.testing.assert_array_equal(wide[:5], np.array(expected, np.float32))
    assert np.isinf(wide[5])  # above the largest bfloat16: rounds to inf, as IEEE does
    assert np.signbit(wide[6]) and wide[6] == 0
    np.testing.assert_array_equal(round_to_bfloat16(values), torch_bits(values))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-BIG, BIG, width=32, allow_subnormal=True), min_size=1,
                max_size=300))
def test_rounding_matches_torch_and_its_error_bound(values):
    x = np.array(values, np.float32)
    bits = round_to_bfloat16(x)
    np.testing.assert_array_equal(bits, torch_bits(x))
    wide = widen_bfloat16(bits)
    normal = np.abs(x) >= np.finfo(np.float32).tiny
    assert np.all(np.abs(wide - x)[normal] <= 2.0 ** -8 * np.abs(x)[normal])


# ---------------------------------------------------------------- kernels
def window_of(k: int, height: int, width: int) -> np.ndarray:
    pad = k // 2
    return np.array([k, k, 1, 1, 1, 1, pad, pad, pad, pad, height, width], np.int64)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 20), k=st.sampled_from([1, 3]),
       axis=st.sampled_from([1, 2]), bits=st.sampled_from([0.0, 1 / 63]),
       seed=st.integers(0, 99))
def test_dac_bfloat16_output_is_the_rounded_float32_output(n, c, k, axis, bits, seed):
    h, w = 5, 6
    rng = np.random.default_rng(seed)
    shape = (n, c, h * w) if axis == 1 else (n, h * w, c)
    x = (rng.standard_normal(shape) * rng.uniform(0.01, 10)).astype(np.float32)
    wide, low = np.empty(shape, np.float32), np.empty(shape, np.uint16)
    scales_a, scales_b = np.empty((n, h * w), np.float32), np.empty((n, h * w), np.float32)
    for parallel in (False, True):
        assert dac_per_patch(x, wide, axis, h, w, window_of(k, h, w), scales_a, 1.0, bits,
                             parallel)
        assert dac_per_patch(x, low, axis, h, w, window_of(k, h, w), scales_b, 1.0, bits,
                             parallel)
        np.testing.assert_array_equal(scales_a, scales_b)
        np.testing.assert_array_equal(low, torch_bits(wide))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 40), p=st.integers(1, 50),
       axis=st.sampled_from([1, 2]), noise=st.sampled_from([0.0, 0.06]),
       use_var=st.booleans(), seed=st.integers(0, 99))
def test_adc_of_bfloat16_bits_equals_adc_of_their_values(n, c, p, axis, noise, use_var, seed):
    rng = np.random.default_rng(seed)
    shape = (n, c, p) if axis == 1 else (n, p, c)
    bits = round_to_bfloat16((rng.standard_normal(shape) * 3).astype(np.float32))
    y = widen_bfloat16(bits)
    var = np.abs(rng.standard_normal(shape)).astype(np.float32) * 0.01 if use_var else \
        np.zeros((1, 1, 1), np.float32)
    scale = rng.uniform(0.5, 2.0, (n, p)).astype(np.float32)
    col = rng.uniform(0.5, 2.0, c).astype(np.float32)
    outs, counts = [], []
    for values in (y, bits):
        out = np.full(shape, 7.0, np.float32)
        count = np.zeros((n, 3), np.int64)
        adc_per_vector(values, var, out, scale, col, axis, noise, use_var, 2.0, 4.0 / 511, 4,
                       np.uint64(seed), False, count)
        outs.append(out)
        counts.append(count)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(counts[0], counts[1])


# ---------------------------------------------------------------- layers
def ideal_layer(module: nn.Module, precision: str, **periphery) -> nn.Module:
    """Exact devices, no output noise, no GDC: what is left is the DAC, the GEMM's number
    format and (with ``out_bits``) the ADC."""
    settings_ = dict(inp_bits=None, out_bits=None, out_noise=0.0, bound_management="none")
    settings_.update(periphery)
    cfg = AnalogConfig(device=ideal_device(), periphery=PeripheryConfig(**settings_),
                       gemm_precision=precision).replace(
        **{"drift_compensation.enabled": False, "mapping.rows": 40})
    layer = convert_to_analog(nn.Sequential(module), cfg)[0].eval()
    aimcsim.program(layer, 0)
    return layer


def rounded(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.bfloat16).float()


def definition_reference(layer, x: torch.Tensor) -> torch.Tensor:
    """The bfloat16 GEMM from its definition, ideal converters: per row block,
    ``rounded(conv(rounded(x), rounded(W_n))) * w_scale``, summed in float32."""
    out = 0
    for block, entry in zip(layer.analog.tiles.blocks, layer.analog.tiles.cache):
        i0, i1 = block.in_channels
        o0, o1 = block.out_channels
        y = F.conv2d(rounded(x[:, i0:i1]), rounded(entry.weight), None, layer.stride,
                     layer.padding, layer.dilation, block.groups)
        y = rounded(y) * entry.scale.reshape(1, -1, 1, 1)
        out = out + F.pad(y, (0, 0, 0, 0, o0, layer.out_channels - o1))
    return out


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("scaling", ["per_patch", "static", "per_image", "per_patch_exact"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_bfloat16_layer_equals_its_definition(native, scaling, channels_last, monkeypatch):
    """Ideal converters: the per-vector paths (``per_patch``, ``static``) hand the GEMM the
    DAC output in input units, so with an ideal DAC they give the definition's outputs, in
    both layouts, natively and emulated, up to the order of float32 sums (one bfloat16 step of
    a sum, rarely). ``per_image`` and the unfolded reference hand it the normalised input
    x / s, whose rounding differs from that of x, within the same bound. float32 differs."""
    if native and not numba_backend.bfloat16_convolutions():
        pytest.skip("no native bfloat16 convolutions on this CPU")
    monkeypatch.setattr(numba_backend, "_BF16", native)
    torch.manual_seed(1)
    conv = nn.Conv2d(24, 10, 3, padding=1, bias=False)  # 216 rows: 6 row blocks of 40
    layer = ideal_layer(conv, "bfloat16", input_scaling=scaling)
    exact = ideal_layer(conv, "float32", input_scaling=scaling)
    if scaling == "static":
        layer.input_range = exact.input_range = 10.0  # no input clips
    x = torch.randn(3, 24, 7, 6)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        low, high = layer(x), exact(x)
    ref = definition_reference(layer, x.contiguous())
    size = ref.abs().max().item()
    assert (low - ref).abs().max().item() <= 2.0 ** -8 * size * len(layer.analog.tiles.blocks)
    if scaling in ("per_patch", "static"):
        assert ((low - ref).abs() > 1e-6 * size).float().mean().item() < 0.02
    # float32 is not the same number format: it differs, by about the rounding's size
    difference = (high - low).abs().max().item()
    assert 1e-5 * size < difference <= 2.0 ** -6 * size


@pytest.mark.parametrize("native", [True, False])
def test_linear_layer_and_torch_backend_round_alike(native, monkeypatch):
    if native and not numba_backend.bfloat16_convolutions():
        pytest.skip("no native bfloat16 on this CPU")
    monkeypatch.setattr(numba_backend, "_BF16", native)
    torch.manual_seed(2)
    linear = nn.Linear(50, 7, bias=False)
    layer = ideal_layer(linear, "bfloat16")
    x = torch.randn(5, 50)
    with torch.no_grad():
        numba_out = layer(x)
    aimcsim.set_backend(layer, "torch")
    with torch.no_grad():
        torch_out = layer(x)
    ref = 0
    for block, entry in zip(layer.analog.tiles.blocks, layer.analog.tiles.cache):
        i0, i1 = block.in_channels
        o0, o1 = block.out_channels
        y = rounded(rounded(x[:, i0:i1]) @ rounded(entry.weight).t()) * entry.scale
        ref = ref + F.pad(y, (o0, 7 - o1))
    size = ref.abs().max().item()
    torch.testing.assert_close(numba_out, ref, rtol=0, atol=2.0 ** -8 * size * 2)
    torch.testing.assert_close(torch_out, ref, rtol=0, atol=2.0 ** -8 * size * 2)
    assert (numba_out - ref).abs().max().item() <= 2.0 ** -8 * size * 2


def test_torch_backend_conv_matches_numba_backend_in_bfloat16():
    torch.manual_seed(3)
    conv = nn.Conv2d(8, 6, 3, padding=1, bias=False)
    layer = ideal_layer(conv, "bfloat16", input_scaling="per_patch")
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        numba_out = layer(x)
    aimcsim.set_backend(layer, "torch")
    with torch.no_grad():
        torch_out = layer(x)
    ref = definition_reference(layer, x)
    size = ref.abs().max().item()
    assert (numba_out - ref).abs().max().item() <= 2.0 ** -8 * size
    assert (torch_out - ref).abs().max().item() <= 2.0 ** -8 * size


# ---------------------------------------------------------------- stored configs
def test_a_stored_config_without_the_field_computed_in_float32():
    """Configs aimcsim stored before the field existed (saved layers, study records) keep
    float32; a user's JSON without it gets today's default."""
    stored = AnalogConfig().to_dict()
    del stored["gemm_precision"]
    assert AnalogConfig.from_stored(stored).gemm_precision == "float32"
    assert AnalogConfig.from_dict(stored).gemm_precision == "bfloat16"
    assert AnalogConfig.from_stored(AnalogConfig().to_dict()).gemm_precision == "bfloat16"


def test_a_saved_layer_loads_under_either_precision_and_adopts_its_own():
    torch.manual_seed(4)
    conv = nn.Conv2d(4, 5, 3, padding=1)
    saved = convert_to_analog(nn.Sequential(conv), AnalogConfig(gemm_precision="float32"))
    aimcsim.program(saved, 0)
    state = saved.state_dict()
    explicit = convert_to_analog(nn.Sequential(nn.Conv2d(4, 5, 3, padding=1)), AnalogConfig())
    explicit.load_state_dict(state)  # a compute setting: no mismatch refused
    assert explicit[0].analog_config.gemm_precision == "bfloat16"
    adopted = convert_to_analog(nn.Sequential(nn.Conv2d(4, 5, 3, padding=1)))
    adopted.load_state_dict(state)
    assert adopted[0].analog_config.gemm_precision == "float32"
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(adopted.eval()(x), saved.eval()(x))


def test_a_drift_study_of_float32_resumes_only_in_float32():
    from aimcsim.experiments.drift import _check_resumable, _with_defaults
    old = AnalogConfig().to_dict()
    del old["gemm_precision"]  # a study recorded before the field existed
    assert _with_defaults(old)["gemm_precision"] == "float32"
    record = {"model": "f1net", "seed": 0, "limit": None, "analog": old, "fp32_sha256": "a",
              "hwa_sha256": None, "adabs": 0, "adabs_images": "augmented"}
    same = {**record, "analog": json.loads(json.dumps(
        AnalogConfig(gemm_precision="float32").to_dict()))}
    _check_resumable(record, same, "folder")
    other = {**record, "analog": json.loads(json.dumps(AnalogConfig().to_dict()))}
    with pytest.raises(ValueError, match="gemm_precision: yours 'bfloat16' vs saved 'float32'"):
        _check_resumable(record, other, "folder")
