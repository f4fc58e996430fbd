"""Device-model hardware-aware training, the weight mapping it shares with the tiles, and
adaptive batch-norm statistics (AdaBS)."""
from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from torch import nn

import aimcsim
from aimcsim.nn import HardwareAwareConfig, convert_to_analog
from aimcsim.nn.training_weights import sample_read_time
from aimcsim.tiles import AnalogConfig, PeripheryConfig


def test_hardware_aware_config_round_trips_and_validates():
    cfg = HardwareAwareConfig(noise_model="device", t_min=10.0, t_max=1e5)
    assert HardwareAwareConfig(**json.loads(json.dumps(asdict(cfg)))) == cfg
    for bad in (dict(noise_model="pcm"), dict(t_min=0.0), dict(t_min=5.0, t_max=1.0),
                dict(t_max=float("inf"))):
        with pytest.raises(ValueError):
            HardwareAwareConfig(**bad)


def test_read_times_are_log_uniform():
    torch.manual_seed(0)
    logs = np.log10([sample_read_time(1.0, 1e6) for _ in range(4000)])
    assert logs.min() >= 0 and logs.max() <= 6
    assert abs(logs.mean() - 3.0) < 0.1 and abs(logs.std() - 6 / np.sqrt(12)) < 0.1


@pytest.mark.parametrize("scaling", ["tile", "column"])
def test_training_forward_maps_weights_like_the_tiles(scaling):
    """Noise off, the training forward (float weights) and the programmed tiles quantise with
    the same per-column w_max: identical outputs, for tile- and column-wise scaling."""
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 8, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight[:4] *= 0.1  # columns with very different ranges
    from aimcsim.devices import ideal_device
    cfg = AnalogConfig(device=ideal_device(),
                       periphery=PeripheryConfig(out_noise=0.0, out_bound=50.0, out_bits=10),
                       gemm_precision="float32",  # training passes compute in float32
                       ).replace(**{"mapping.weight_scaling": scaling,
                                    "drift_compensation.enabled": False})
    hwa = HardwareAwareConfig(weight_noise=0.0, clip_sigma=None)
    layer = convert_to_analog(nn.Sequential(conv), cfg, hwa=hwa)[0]
    aimcsim.program(layer, 0)
    x = torch.randn(2, 6, 7, 7)
    layer.train()
    trained = layer(x).detach()
    layer.eval()
    with torch.no_grad():
        programmed = layer(x)
    torch.testing.assert_close(trained, programmed, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("conv", [nn.Conv1d(4, 6, 3, padding=1, padding_mode="reflect"),
                                  nn.Conv2d(4, 6, 3, padding=1, padding_mode="circular")])
def test_training_without_periphery_keeps_padding_modes_and_conv1d(conv):
    """``periphery=False`` runs the bare GEMMs on the prepared input (padding mode applied,
    Conv1d as height 1): without weight noise it is the float layer."""
    hwa = HardwareAwareConfig(periphery=False, weight_noise=0.0, clip_sigma=None)
    layer = convert_to_analog(conv, AnalogConfig().replace(**{"mapping.rows": 9}),
                              hwa=hwa).train()
    x = torch.randn(2, 4, *([9] * (conv.weight.dim() - 2)))
    torch.testing.assert_close(layer(x), conv(x), rtol=1e-5, atol=1e-5)


def test_device_model_training_reads_the_programmed_weights_and_has_gradients():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1)
    ideal_periphery = PeripheryConfig.ideal()
    hwa = HardwareAwareConfig(noise_model="device", clip_sigma=None, t_min=86400.0,
                              t_max=86400.0)
    layer = convert_to_analog(nn.Sequential(conv), AnalogConfig(periphery=ideal_periphery),
                              hwa=hwa)[0].train()
    x = torch.randn(4, 8, 6, 6)
    digital = nn.functional.conv2d(x, conv.weight, conv.bias, padding=1).detach()
    out = layer(x)
    out.square().mean().backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
    error = float((out.detach() - digital).norm() / digital.norm())
    # one day of PCM after GDC: a few percent to ~20% relative error, never exact
    assert 0.01 < error < 0.4
    torch.manual_seed(1)
    again = layer(x).detach()
    assert not torch.equal(again, out.detach())  # a new programming every step


def bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1, stride=2), nn.BatchNorm2d(16),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))


def test_adabs_moves_statistics_to_the_analog_network_and_restores_accuracy():
    net = bn_net()
    images = torch.randn(512, 3, 12, 12)
    net.train()
    with torch.no_grad():
        for chunk in images.split(64):
            net(chunk)  # realistic running statistics
    net.eval()
    with torch.no_grad():
        labels = net(images).argmax(1)
    cfg = AnalogConfig().replace(**{"drift_compensation.enabled": False})
    analog = convert_to_analog(net, cfg).eval()
    aimcsim.program(analog, 0)
    aimcsim.set_time(analog, 3.15e7, seed=0)  # one year, no GDC: outputs shrink a lot
    calibration = list(images[:256].split(64))
    test = images[256:]

    def accuracy(model):
        with torch.no_grad():
            return float((model(test).argmax(1) == labels[256:]).float().mean())

    before = accuracy(analog)
    weight_before = analog[1].weight.detach().clone()
    seen = []
    hook = analog[0].register_forward_hook(lambda m, a, y: seen.append(y.detach()))
    assert aimcsim.adapt_batchnorm(analog, calibration) == 256
    hook.remove()
    analog_mean = torch.cat(seen).mean(dim=(0, 2, 3))
    torch.testing.assert_close(analog[1].running_mean, analog_mean, rtol=1e-4, atol=1e-5)
    analog_var = torch.cat(seen).var(dim=(0, 2, 3))  # unbiased, as batch norm keeps it
    torch.testing.assert_close(analog[1].running_var, analog_var, rtol=1e-3, atol=1e-5)
    assert not analog[1].training and analog[1].momentum == 0.1
    torch.testing.assert_close(analog[1].weight, weight_before)
    after = accuracy(analog)
    assert after > before + 0.1, (before, after)
    with pytest.raises(ValueError, match="program"):
        aimcsim.adapt_batchnorm(convert_to_analog(net), calibration)


def test_noise_scale_multiplies_the_device_deviation():
    """The same programming (same torch seed) with noise_scale 2 deviates twice as far from
    the float layer as with 1; 0 gives the float layer itself, drift and GDC included (the
    factor scales the compensated read's deviation, never the drift GDC removes)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1, bias=False)
    x = torch.randn(4, 8, 6, 6)
    outputs = {}
    for k in (0.0, 1.0, 2.0):
        hwa = HardwareAwareConfig(noise_model="device", clip_sigma=None, t_min=1e5,
                                  t_max=1e5, noise_scale=k)
        cfg = AnalogConfig(periphery=PeripheryConfig.ideal())
        layer = convert_to_analog(nn.Sequential(conv), cfg, hwa=hwa)[0].train()
        torch.manual_seed(5)
        outputs[k] = layer(x).detach()
    digital = nn.functional.conv2d(x, conv.weight, padding=1).detach()
    torch.testing.assert_close(outputs[0.0], digital, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(outputs[2.0] - digital, 2 * (outputs[1.0] - digital),
                               rtol=1e-3, atol=1e-4)
    assert float((outputs[1.0] - digital).abs().max()) > 1e-3
    x.requires_grad_(False)
    layer.weight.grad = None
    torch.manual_seed(5)
    layer(x).sum().backward()  # k = 2: the straight-through gradient is the float layer's
    reference = conv.weight.detach().clone().requires_grad_(True)
    nn.functional.conv2d(x, reference, padding=1).sum().backward()
    torch.testing.assert_close(layer.weight.grad, reference.grad, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError):
        HardwareAwareConfig(noise_scale=-1.0)
