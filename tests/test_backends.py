"""The backends and their one switch: the forced torch backend (what a GPU runs) against the
Numba backend on the CPU, the device models' torch sampling against the numpy reference, and
CUDA tests that skip without a CUDA device."""
from __future__ import annotations

import dataclasses
from unittest import mock

import pytest
import torch
from torch import nn

import aimcsim
from aimcsim.devices import ideal_device, make_device
from aimcsim.nn import HardwareAwareConfig, convert_to_analog, set_backend
from aimcsim.nn.backends import select_backend
from aimcsim.tiles import AnalogConfig, PeripheryConfig



def cuda(test):
    """Mark a test for CUDA (``pytest -m cuda``); it skips without a CUDA device."""
    skip = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    return pytest.mark.cuda(skip(test))


def programmed(module: nn.Module, config: AnalogConfig, seed: int = 0) -> nn.Module:
    layer = convert_to_analog(module, config).eval()
    aimcsim.program(layer, seed)
    aimcsim.set_time(layer, 3600.0, seed=1)
    return layer


def test_one_switch_picks_the_backend():
    x = torch.randn(2, 3)
    assert select_backend(x, False).name == "numba"
    training = select_backend(x, True)
    assert training.name == "torch" and training.cpu_kernels
    wants_grad = x.clone().requires_grad_(True)
    assert select_backend(wants_grad, False).name == "torch"
    with torch.no_grad():
        assert select_backend(wants_grad, False).name == "numba"
    forced = select_backend(x, False, "torch")
    assert forced.name == "torch" and not forced.cpu_kernels
    assert not select_backend(x, True, "torch").cpu_kernels
    with pytest.raises(ValueError, match="numba backend runs CPU inference"):
        select_backend(x, True, "numba")
    with pytest.raises(ValueError, match="backend"):
        select_backend(x, False, "cuda")
    layer = convert_to_analog(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="backend"):
        set_backend(layer, "gpu")
    assert set_backend(layer, "numba") is layer and layer.analog.backend == "numba"
    layer.train()
    with pytest.raises(ValueError, match="numba backend"):
        layer(x)


CASES = {
    "linear": (lambda: nn.Linear(300, 40), (6, 300), {}),
    "per_patch": (lambda: nn.Conv2d(20, 24, 3, padding=1), (3, 20, 9, 8), {}),
    "per_image": (lambda: nn.Conv2d(20, 24, 3, padding=1), (3, 20, 9, 8),
                  {"periphery.input_scaling": "per_image"}),
    "static": (lambda: nn.Conv2d(20, 24, 3, stride=2), (3, 20, 9, 8),
               {"periphery.input_scaling": "static"}),
    "grouped": (lambda: nn.Conv2d(12, 8, 3, padding=1, groups=4), (3, 12, 7, 7), {}),
    "conv1d": (lambda: nn.Conv1d(10, 6, 5, padding=2, padding_mode="reflect"), (3, 10, 17),
               {"read_noise_sampling": "per_mvm", "device": ideal_device()}),
    "hermes": (lambda: nn.Conv2d(20, 24, 3, padding=1), (3, 20, 9, 8),
               {"device": make_device("hermes")}),
    "rram": (lambda: nn.Linear(300, 40), (6, 300), {"device": make_device("rram")}),
    "ir_drop": (lambda: nn.Conv2d(20, 24, 3, padding=1), (3, 20, 9, 8),
                {"ir_drop.r_row_ohm": 2.0, "ir_drop.r_col_ohm": 1.0}),
    "ir_drop_per_mvm": (lambda: nn.Linear(300, 40), (6, 300),
                        {"read_noise_sampling": "per_mvm", "ir_drop.r_col_ohm": 3.0,
                         "device": make_device("hermes-1", read_noise_scale=0.0)}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_forced_torch_backend_matches_numba_without_output_noise(case):
    """Same tiles, output noise off: the plain torch ops (the GPU path) give the Numba
    backend's outputs up to float rounding and rare rounding ties of the converters."""
    make, shape, changes = CASES[case]
    torch.manual_seed(0)
    config = AnalogConfig().replace(**{"periphery.out_noise": 0.0, "mapping.rows": 64,
                                       "mapping.cols": 16, **changes})
    layer = programmed(make(), config)
    x = torch.randn(*shape) * torch.rand(shape[0], *([1] * (len(shape) - 1))) * 3
    if case == "static":
        aimcsim.calibrate_input_ranges(layer, [x[:2]], quantile=0.9)
    with torch.no_grad():
        numba = layer(x)
        set_backend(layer, "torch")
        plain = layer(x)
    assert plain.shape == numba.shape
    step = config.periphery.out_step * float(max(t.output_scale.max() for t in layer.tiles)) \
        * float(x.abs().max()) * 2 ** config.periphery.max_bound_iterations
    diff = (plain - numba).abs()
    assert diff.max().item() <= 2.01 * step * len(layer.analog.tiles.blocks)
    assert (diff > 1e-4 * (1 + numba.abs())).float().mean().item() < 0.02


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_output_noise_has_the_same_statistics_on_both_backends(backend):
    """Ideal converters, noise management abs-max: the error of an output is
    out_noise x s_n x scale_k x xi, on either backend (12,800 values, 5 standard errors)."""
    torch.manual_seed(0)
    periphery = PeripheryConfig(inp_bits=None, out_bits=None, out_bound=None, out_noise=0.06,
                                bound_management="none")
    layer = programmed(nn.Linear(256, 64, bias=False), AnalogConfig(periphery=periphery))
    x = torch.randn(200, 256)
    set_backend(layer, backend)
    with torch.no_grad():
        noisy = layer(x)
        layer.analog_config.periphery = dataclasses.replace(periphery, out_noise=0.0)
        clean = layer(x)
    unit = x.abs().amax(dim=1, keepdim=True) * torch.from_numpy(layer.tiles[0].output_scale)
    errors = ((noisy - clean) / unit).double().flatten()
    n = errors.numel()
    assert abs(errors.mean().item()) < 5 * 0.06 / n ** 0.5
    assert abs(errors.std().item() - 0.06) < 5 * 0.06 / (2 * n) ** 0.5


def test_torch_backend_eval_pass_is_order_free_and_reproducible():
    torch.manual_seed(0)
    layer = programmed(nn.Conv2d(8, 8, 3), AnalogConfig())
    set_backend(layer, "torch")
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        first = layer(x)
        aimcsim.set_time(layer, 3600.0, seed=1)
        torch.randn(100)  # the global generator must not matter
        again = layer(x)
    assert torch.equal(first, again)


def device_training_layer() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1)
    hwa = HardwareAwareConfig(noise_model="device", clip_sigma=None, t_min=86400.0,
                              t_max=86400.0)
    layer = convert_to_analog(nn.Sequential(conv), AnalogConfig(
        periphery=PeripheryConfig.ideal()), hwa=hwa)[0].train()
    x = torch.randn(4, 8, 6, 6)
    digital = nn.functional.conv2d(x, conv.weight, conv.bias, padding=1).detach()
    return layer, x, digital


def test_device_model_training_on_the_torch_backend_samples_in_torch():
    """Forced torch: the device model of hardware-aware training samples in torch ops (never
    the numpy tiles); one day of PCM after GDC gives a few percent to ~20% error."""
    layer, x, digital = device_training_layer()
    set_backend(layer, "torch")
    with mock.patch("aimcsim.nn.training_weights._numpy_device_blocks",
                    side_effect=AssertionError("numpy tiles used")):
        out = layer(x)
    out.square().mean().backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
    error = float((out.detach() - digital).norm() / digital.norm())
    assert 0.01 < error < 0.4
    set_backend(layer, "auto")  # on the CPU: the numpy tiles (the reference)
    with mock.patch("aimcsim.nn.training_weights._numpy_device_blocks",
                    side_effect=AssertionError("numpy tiles used")):
        with pytest.raises(AssertionError, match="numpy tiles"):
            layer(x)


# ---------------------------------------------------------------------- CUDA (skipped here)
@cuda
def test_inference_on_cuda_matches_the_cpu_without_output_noise():
    torch.manual_seed(0)
    config = AnalogConfig().replace(**{"periphery.out_noise": 0.0})
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(16 * 64, 10))
    cpu = programmed(model, config)
    gpu = programmed(model, config).cuda()
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        ref, out = cpu(x), gpu(x.cuda())
    assert out.is_cuda
    diff = (out.cpu() - ref).abs()
    assert (diff > 1e-3 * (1 + ref.abs())).float().mean().item() < 0.02


@cuda
def test_every_non_ideality_runs_on_cuda():
    torch.manual_seed(0)
    for changes in ({}, {"read_noise_sampling": "per_mvm"},
                    {"periphery.input_scaling": "per_image"},
                    {"periphery.input_scaling": "static"},
                    {"device": make_device("hermes")}, {"device": make_device("rram")},
                    {"ir_drop.r_row_ohm": 1.0, "ir_drop.r_col_ohm": 1.0,
                     "read_noise_sampling": "per_mvm"}):
        layer = programmed(nn.Conv2d(6, 8, 3), AnalogConfig().replace(**changes)).cuda()
        x = torch.randn(2, 6, 7, 7, device="cuda")
        layer.input_range = 3.0
        with torch.no_grad():
            y = layer(x)
        assert y.is_cuda and torch.isfinite(y).all()


@cuda
def test_hardware_aware_device_training_stays_on_cuda():
    layer, x, digital = device_training_layer()
    layer = layer.cuda()
    with mock.patch("aimcsim.nn.training_weights._numpy_device_blocks",
                    side_effect=AssertionError("numpy tiles used")):
        out = layer(x.cuda())
    out.square().mean().backward()
    assert out.is_cuda and layer.weight.grad.is_cuda
    error = float((out.detach().cpu() - digital).norm() / digital.norm())
    assert 0.01 < error < 0.4
