"""Input scaling of convolutions: the fast per-patch path against the exact unfolded reference
and an independent numpy reference, the static range, layout independence and the torch path."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

import aimcsim
from aimcsim.nn import convert_to_analog
from aimcsim.nn.backends.torch_per_patch import patch_scales
from aimcsim.nn.geometry import ConvWindow
from aimcsim.tiles import AnalogConfig, PeripheryConfig
from aimcsim.tiles.periphery import reference_adc, reference_dac


def conv_layer(conv: nn.Module, rows: int = 512, cols: int = 512,
               gemm_precision: str = "float32", **periphery) -> nn.Module:
    """A programmed analog copy of ``conv``; float32 GEMMs unless asked (the bfloat16 GEMM
    is tested against these references in tests/test_gemm_precision.py)."""
    cfg = AnalogConfig(periphery=PeripheryConfig(**periphery),
                       gemm_precision=gemm_precision).replace(
        **{"mapping.rows": rows, "mapping.cols": cols})
    layer = convert_to_analog(nn.Sequential(conv), cfg)[0].eval()
    aimcsim.program(layer, 0)
    return layer


def numpy_per_patch_reference(layer, x: torch.Tensor) -> torch.Tensor:
    """Every patch one input vector: numpy DAC with the patch's own abs-max, the tile's
    weights, numpy ADC (noise and bound management off), rescale; summed over row blocks."""
    periphery = layer.analog_config.periphery
    n = x.shape[0]
    out = 0
    for block, tiles in zip(layer.analog.tiles.blocks, layer.analog.tiles.grid):
        i0, i1 = block.in_channels
        cols = F.unfold(x[:, i0:i1], layer.kernel_size, layer.dilation, layer.padding,
                        layer.stride)  # (N, K, L)
        length = cols.shape[-1]
        vectors = cols.transpose(1, 2).reshape(n * length, -1).numpy()
        xq, s = reference_dac(vectors, periphery)
        ys = []
        for tile in tiles:
            (w,) = tile.normalized_weights  # dense tiles: (1, r, c)
            yq, _ = reference_adc(xq @ w, periphery)
            ys.append(yq * s[:, None] * tile.output_scale[None, :])
        y = np.concatenate(ys, axis=1).reshape(n, length, -1).transpose(0, 2, 1)
        full = np.zeros((n, layer.out_channels, length), np.float32)
        full[:, block.out_channels[0]:block.out_channels[1]] = y
        out = out + full
    ho = (x.shape[2] + 2 * layer.padding[0] - layer.dilation[0] * (layer.kernel_size[0] - 1)
          - 1) // layer.stride[0] + 1
    return torch.from_numpy(out).reshape(n, layer.out_channels, ho, -1)


geometry = dict(cin=st.integers(1, 12), cout=st.integers(1, 9), k=st.sampled_from([1, 2, 3, 5]),
                stride=st.integers(1, 3), dilation=st.integers(1, 2), padding=st.integers(0, 2),
                rows=st.sampled_from([9, 40, 512]), cols=st.sampled_from([4, 512]),
                seed=st.integers(0, 3))


@settings(max_examples=25, deadline=None)
@given(**geometry)
def test_exact_per_patch_equals_the_numpy_reference(cin, cout, k, stride, dilation, padding,
                                                      rows, cols, seed):
    assume(dilation * (k - 1) + 1 <= 8 + 2 * padding)
    rows = max(rows, k * k)
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin, cout, k, stride, padding, dilation, bias=False)
    layer = conv_layer(conv, rows, cols, out_noise=0.0, bound_management="none",
                       input_scaling="per_patch_exact")
    x = torch.randn(2, cin, 9, 8)
    with torch.no_grad():
        out = layer(x)
    ref = numpy_per_patch_reference(layer, x)
    assert out.shape == ref.shape
    step = layer.analog_config.periphery.out_step * float(
        max(t.output_scale.max() for t in layer.tiles)) * float(x.abs().max())
    diff = (out - ref).abs()
    assert diff.max().item() <= 2.01 * step * len(layer.analog.tiles.blocks)  # rare rounding ties
    assert (diff > 1e-4 * (1 + ref.abs())).float().mean().item() < 0.02


@settings(max_examples=25, deadline=None)
@given(**geometry, channels_last=st.booleans())
def test_fast_per_patch_equals_exact_with_an_ideal_dac(cin, cout, k, stride, dilation, padding,
                                                       rows, cols, seed, channels_last):
    """With an ideal DAC the fast path differs from the exact one only in rounding: the
    per-patch scales, ADC and bound management are the same."""
    assume(dilation * (k - 1) + 1 <= 8 + 2 * padding)
    rows = max(rows, k * k)
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin, cout, k, stride, padding, dilation, bias=True)
    settings_ = dict(inp_bits=None, out_noise=0.0, out_bound=3.0, out_bits=9)
    fast = conv_layer(conv, rows, cols, **settings_)
    exact = conv_layer(conv, rows, cols, input_scaling="per_patch_exact", **settings_)
    x = torch.randn(3, cin, 9, 8)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        a, b = fast(x), exact(x)
    step = 3.0 * 2 / 510 * float(max(t.output_scale.max() for t in fast.tiles)) \
        * float(x.abs().max()) * 2 ** 5
    assert (a - b).abs().max().item() <= 1.01 * step * len(fast.analog.tiles.blocks)
    assert ((a - b).abs() > 1e-4 * (1 + b.abs())).float().mean().item() < 0.02


def test_pointwise_fast_path_is_exact_with_the_7_bit_dac():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 8, 1, stride=2)
    fast = conv_layer(conv, out_noise=0.0)
    exact = conv_layer(conv, out_noise=0.0, input_scaling="per_patch_exact")
    x = torch.randn(4, 16, 10, 10) * torch.rand(4, 1, 10, 10) * 3  # loud and quiet pixels
    with torch.no_grad():
        torch.testing.assert_close(fast(x), exact(x), rtol=1e-5, atol=1e-5)


def test_fast_dac_error_against_exact_is_small_and_per_patch_beats_per_image():
    """The one approximation (each pixel quantised with the scale of the window centred on
    it): its error against the exact reference is a fraction of the DAC's own error, and far
    below the per-image scaling's."""
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 16, 3, padding=1, bias=False)
    x = torch.relu(torch.randn(8, 16, 16, 16)) * torch.rand(8, 1, 16, 16) ** 2
    ideal = F.conv2d(x, conv.weight.detach(), None, 1, 1)
    errors = {}
    for mode in ("per_patch", "per_patch_exact", "per_image"):
        layer = conv_layer(conv, out_noise=0.0, out_bits=None, out_bound=None, input_scaling=mode)
        for tile in layer.tiles:  # exact device: isolate the DAC
            tile._w_n = tile.weights / tile._w_max
        layer.analog.tiles.refresh(layer.weight.device)
        with torch.no_grad():
            errors[mode] = layer(x)
    rms = {m: float(((v - ideal) ** 2).mean().sqrt()) for m, v in errors.items()}
    approx = float(((errors["per_patch"] - errors["per_patch_exact"]) ** 2).mean().sqrt())
    assert rms["per_patch_exact"] < 0.7 * rms["per_image"]
    assert abs(rms["per_patch"] - rms["per_patch_exact"]) < 0.15 * rms["per_patch_exact"]
    assert approx < 1.5 * rms["per_patch_exact"]


def test_patch_scales_are_the_abs_max_of_each_patch():
    torch.manual_seed(1)
    x = torch.randn(2, 5, 11, 9)
    for k, stride, pad, dil in [(3, 1, 1, 1), (3, 2, 1, 1), (2, 1, 0, 1), (3, 1, 2, 2)]:
        window = ConvWindow.of((k, k), (stride, stride), (dil, dil), (pad, pad))
        pixel, patch = patch_scales(x.abs().amax(1, keepdim=True), window)
        cols = F.unfold(x, k, dil, pad, stride).abs().amax(1)
        torch.testing.assert_close(patch.reshape(2, -1), cols)
        assert pixel.shape == (2, 1, 11, 9)
        assert bool((pixel >= x.abs().amax(1, keepdim=True)).all())


def test_noise_is_layout_independent_and_order_free():
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 10, 3, padding=1)
    for mode in ("per_patch", "per_image"):
        layer = conv_layer(conv, input_scaling=mode, rows=27)  # two row blocks
        aimcsim.set_time(layer, 3600.0, seed=5)
        x = torch.randn(3, 6, 8, 8)
        with torch.no_grad():
            a = layer(x)
            layer(x)  # another pass in between
            aimcsim.set_time(layer, 3600.0, seed=5)
            b = layer(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_static_range_is_calibrated_and_clips_beyond_it():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 6 * 6, 4))
    cfg = AnalogConfig.ideal().replace(**{"periphery.input_scaling": "static",
                                          "periphery.inp_bits": 8})
    analog = convert_to_analog(model, cfg).eval()
    aimcsim.program(analog, 0)
    x = torch.randn(16, 3, 6, 6)
    with pytest.raises(ValueError, match="calibrate_input_ranges"):
        analog(x)
    ranges = aimcsim.calibrate_input_ranges(analog, [x])
    assert set(ranges) == {"0", "3"}
    assert ranges["0"] == pytest.approx(float(x.abs().max()))
    with torch.no_grad():
        torch.testing.assert_close(analog(x), model(x), rtol=0.05, atol=0.05)
        louder = analog(3 * x)  # beyond the range: the DAC clips
    assert not torch.allclose(louder, model(3 * x), atol=0.5)
    state = analog.state_dict()
    again = convert_to_analog(model, cfg).eval()
    again.load_state_dict(state)
    assert again[0].input_range == analog[0].input_range


@pytest.mark.parametrize("mode", ["per_patch", "static", "per_image"])
def test_torch_path_matches_the_kernel_path_without_noise(mode):
    """Gradient-enabled inference (the torch path) and the Numba path compute the same
    periphery."""
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 7, 3, stride=2, padding=1)
    layer = conv_layer(conv, rows=27, out_noise=0.0, input_scaling=mode)
    x = torch.randn(3, 5, 9, 9)
    if mode == "static":
        aimcsim.calibrate_input_ranges(layer, [x])
    with torch.no_grad():
        kernel = layer(x)
    torch_out = layer(x.clone().requires_grad_(True))
    torch.testing.assert_close(torch_out.detach(), kernel, rtol=1e-4, atol=2e-3)


def test_per_patch_training_forward_has_gradients_and_bound_management():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1)
    layer = conv_layer(conv, out_bound=0.5)  # tight ADC: bound management must act
    layer.train()
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    y = layer(x)
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    assert y.abs().max() > 0.5 * float(layer.weight.detach().abs().max())


@settings(max_examples=20, deadline=None)
@given(k=st.sampled_from([1, 3]), stride=st.integers(1, 2), channels_last=st.booleans(),
       out_bound=st.sampled_from([0.5, 12.0]), seed=st.integers(0, 5))
def test_fused_training_pass_equals_the_torch_pass_forward_and_backward(
        k, stride, channels_last, out_bound, seed):
    """The fused Numba per-patch pass of hardware-aware training computes what the plain torch
    pass computes (noise off), with the same straight-through gradients."""
    from aimcsim.nn.backends.torch_cpu_kernels import fused_per_patch_pass
    from aimcsim.nn.backends.torch_per_patch import torch_per_vector_pass
    from aimcsim.tiles.engine import bound_iterations
    torch.manual_seed(seed)
    periphery = PeripheryConfig(out_noise=0.0, out_bound=out_bound)
    window = ConvWindow.of((k, k), (stride, stride), (1, 1), (k // 2, k // 2))
    weight = torch.randn(6, 5, k, k)
    col_scale = torch.rand(6) + 0.5
    x = torch.randn(3, 5, 9, 9)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def gemm(v):
        return F.conv2d(v, weight_var, None, stride, k // 2)

    results = []
    for fused in (True, False):
        xg = x.clone().requires_grad_(True)
        weight_var = weight.clone().requires_grad_(True)
        if fused:
            y = fused_per_patch_pass(xg, window.kernel_parameters(9, 9), gemm, col_scale,
                                     periphery, bound_iterations(periphery))
        else:
            pixel, patch = patch_scales(xg.detach().abs().amax(1, keepdim=True), window)
            y = torch_per_vector_pass(xg, pixel, patch, gemm, col_scale, periphery)
        (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
        results.append((y.detach(), xg.grad, weight_var.grad))
    (y1, gx1, gw1), (y2, gx2, gw2) = results
    scale = float(y2.abs().max()) + 1e-6
    # equal up to rare rounding ties of the quantisers (one ADC step)
    step = periphery.out_step * float(col_scale.max()) * float(x.abs().max()) * 32
    assert (y1 - y2).abs().max().item() <= step
    assert ((y1 - y2).abs() > 1e-5 * scale).float().mean().item() < 0.02
    torch.testing.assert_close(gw1, gw2, rtol=2e-3, atol=2e-3 * float(gw2.abs().max()))
    torch.testing.assert_close(gx1, gx2, rtol=2e-3, atol=2e-3 * float(gx2.abs().max()))


@pytest.mark.parametrize("groups", [1, 4])
def test_bfloat16_read_noise_variance_is_within_one_percent_of_float32(groups):
    """The per-MVM read-noise variance conv(xq^2, sigma_w^2) from bfloat16 operands (the fast
    path where the CPU has native bfloat16 convolutions) against float32: every output within
    1.2% (three roundings of 2^-9 and the square's doubling), the mean error far below."""
    from aimcsim.nn.backends.numba_backend import from_channel_view, variance_conv
    layer = convert_to_analog(nn.Conv2d(16, 32, 3, padding=1, groups=groups)).eval()
    rng = np.random.default_rng(0)
    n, h, w, c = 8, 12, 12, 16
    step = 1 / 63  # a 7-bit DAC's codes times per-pixel scales, channels_last (N, P, C)
    xq = (rng.integers(-63, 64, (n, h * w, c)) * step
          * rng.uniform(0.2, 3.0, (n, h * w, 1))).astype(np.float32)
    variance = torch.from_numpy(rng.uniform(1e-4, 4e-3, (32, 16 // groups, 3, 3))
                                .astype(np.float32))

    def view(a: np.ndarray) -> torch.Tensor:
        return from_channel_view(a, c, (h, w), True)
    geometry = layer.analog.geometry
    fast = variance_conv(geometry, xq, view, variance, groups, bf16=True)
    exact = variance_conv(geometry, xq, view, variance, groups, bf16=False)
    assert fast.dtype == torch.float32 and fast.shape == exact.shape == (n, 32, h, w)
    ref = F.conv2d(torch.from_numpy(xq).view(n, h, w, c).permute(0, 3, 1, 2).double() ** 2,
                   variance.double(), None, 1, 1, 1, groups)
    torch.testing.assert_close(exact.double(), ref, rtol=1e-5, atol=1e-9)
    relative = ((fast.double() - ref).abs() / ref.clamp_min(1e-12))[ref > 1e-8]
    assert relative.max() < 0.012, float(relative.max())
    assert relative.mean() < 0.004, float(relative.mean())
