"""The device models, IR drop and the tile read in torch ops (the torch backend's device-model
hardware-aware training, on any device) against the numpy reference: exactly where the
arithmetic is the same (fits, drift given the same state, IR drop factors, noise-free tiles),
statistically where only the random generator differs (20,000 devices per level, means and
standard deviations within 5 standard errors). CUDA-marked tests skip without a CUDA device."""
from __future__ import annotations

import dataclasses
from unittest import mock

import numpy as np
import pytest
import torch
from torch import nn

from aimcsim.devices import (DeviceModel, GaussianDevice, HermesPCMDevice, PCMDevice,
                             WanRRAMDevice, ideal_device, make_device)
from aimcsim.nn import HardwareAwareConfig, convert_to_analog, set_backend
from aimcsim.nn.backends.torch_devices import (TORCH_SAMPLERS, TorchGaussian, TorchHermes,
                                               TorchPCM, TorchRRAM, torch_sampler)
from aimcsim.nn.backends.torch_ir_drop import torch_decoupled_factors, torch_tile_ir_drop
from aimcsim.nn.backends.torch_tile_read import read_tile
from aimcsim.tiles import AnalogConfig, AnalogTile, IRDropConfig, PeripheryConfig
from aimcsim.tiles.ir_drop import decoupled_factors, tile_ir_drop

N = 20_000
#: (name, numpy model, torch sampler class, read times in seconds)
DEVICES = {
    "pcm": (PCMDevice(), TorchPCM, (1.0, 86400.0)),
    "hermes-1": (make_device("hermes-1"), TorchHermes, (1.0, 3e7)),
    "hermes-2": (make_device("hermes-2"), TorchHermes, (1.0, 86400.0)),
    "rram": (WanRRAMDevice(), TorchRRAM, (1.0, 3600.0, 86400.0, 172800.0)),
    "gaussian": (GaussianDevice(nu=0.03), TorchGaussian, (1.0, 86400.0)),
}


def cuda(test):
    """Mark a test for CUDA (``pytest -m cuda``); it skips without a CUDA device."""
    skip = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    return pytest.mark.cuda(skip(test))


def assert_same_distribution(a: np.ndarray, b: np.ndarray) -> None:
    """Means and standard deviations equal within 5 standard errors."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    se_mean = np.sqrt(a.var() / a.size + b.var() / b.size)
    assert abs(a.mean() - b.mean()) <= 5 * se_mean + 1e-7
    se_std = np.sqrt(a.var() / (2 * a.size) + b.var() / (2 * b.size))
    assert abs(a.std() - b.std()) <= 5 * se_std + 1e-7


def samples(device: DeviceModel, sampler_cls: type, level: float):
    g = np.full(N, level * device.g_max, np.float32)
    state = device.program(g, np.random.default_rng(0))
    torch.manual_seed(0)
    sampler = sampler_cls(device)
    return g, state, sampler, sampler.program(torch.from_numpy(g))


def numpy_read(device: DeviceModel, state, t: float) -> np.ndarray:
    rng = np.random.default_rng(1)
    if isinstance(device, PCMDevice | HermesPCMDevice):
        return device.read(state, t, rng, fast=False)
    return device.read(state, t, rng)


def test_every_registered_device_has_a_torch_sampler():
    for name in ("pcm", "hermes", "hermes-1", "hermes-2", "rram", "gaussian", "ideal"):
        device = make_device(name)
        assert isinstance(torch_sampler(device), TORCH_SAMPLERS[type(device)])


@pytest.mark.parametrize("name", sorted(DEVICES))
@pytest.mark.parametrize("level", [0.05, 0.5, 0.95])
def test_torch_sampling_matches_the_numpy_model(name, level):
    device, sampler_cls, times = DEVICES[name]
    g, state, sampler, state_t = samples(device, sampler_cls, level)
    assert_same_distribution(state.g_prog, state_t.g_prog.numpy())
    assert_same_distribution(state.nu, state_t.nu.numpy())
    same = dataclasses.replace(state, g_prog=state_t.g_prog.numpy(), nu=state_t.nu.numpy())
    for t in times:
        assert_same_distribution(numpy_read(device, state, t), sampler.read(state_t, t).numpy())
        # the same programmed state: the noise-free conductance at t is the same arithmetic
        np.testing.assert_allclose(sampler.drifted(state_t, t).numpy(), device.drifted(same, t),
                                   rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["pcm", "hermes-1", "hermes-2"])
def test_pcm_like_fits_equal_the_numpy_fits(name):
    device, sampler_cls, _ = DEVICES[name]
    sampler = sampler_cls(device)
    g = np.linspace(0.0, device.g_max, 2001, dtype=np.float32)
    gt = torch.from_numpy(g)
    np.testing.assert_allclose(sampler.programming_sigma(gt).numpy(),
                               device.programming_sigma(g), rtol=1e-5, atol=1e-7)
    for ours, theirs in zip(sampler.drift_statistics(gt), device.drift_statistics(g)):
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sampler.q_s(gt).numpy(), device.q_s(g), rtol=1e-5, atol=1e-7)


def test_rram_relaxation_spread_equals_the_numpy_model_and_its_time_limits():
    device = WanRRAMDevice()
    sampler = TorchRRAM(device)
    g = np.linspace(0.0, device.g_max, 501, dtype=np.float32)
    for t in (0.0, 1.0, 10.0, 3600.0, 86400.0, 1e5, 172800.0):
        np.testing.assert_allclose(sampler.relaxation_std(torch.from_numpy(g), t).numpy(),
                                   device.relaxation_std(g, t), rtol=1e-5, atol=1e-6)
    state = sampler.program(torch.from_numpy(g))
    for bad in (0.5, 3 * 86400.0):
        with pytest.raises(ValueError, match="characterised"):
            sampler.read(state, bad)


def test_exact_limits_and_idle_devices():
    quiet = PCMDevice(prog_noise_scale=0.0, drift_scale=0.0, read_noise_scale=0.0)
    g = torch.tensor([0.0, 1.0, 12.5, 25.0])
    state = TorchPCM(quiet).program(g)
    torch.testing.assert_close(state.g_prog, g, rtol=0, atol=0)
    torch.testing.assert_close(TorchPCM(quiet).read(state, 1e5), g, rtol=0, atol=0)
    for device, cls in ((PCMDevice(), TorchPCM), (make_device("hermes"), TorchHermes),
                        (WanRRAMDevice(), TorchRRAM), (GaussianDevice(), TorchGaussian)):
        noisy = cls(device).program(g.clamp(max=device.g_max))
        assert noisy.g_prog[0] == 0 and not noisy.active[0] and noisy.nu[0] == 0
        assert cls(device).read(noisy, 3600.0)[0] == 0
    rram_quiet = WanRRAMDevice(prog_noise_scale=0.0, relaxation_scale=0.0, read_noise_scale=0.0)
    state = TorchRRAM(rram_quiet).program(g)
    torch.testing.assert_close(TorchRRAM(rram_quiet).read(state, 86400.0), g, rtol=0, atol=0)
    drifting = GaussianDevice(prog_sigma=0.0, read_sigma=0.0, nu=0.05)
    sampler = TorchGaussian(drifting)
    reference = drifting.drifted(drifting.program(g.numpy(), np.random.default_rng(0)), 1e4)
    np.testing.assert_allclose(sampler.read(sampler.program(g), 1e4).numpy(), reference,
                               rtol=1e-6)


def test_a_device_without_a_sampler_raises_naming_it():
    class Custom(GaussianDevice):
        pass

    with pytest.raises(ValueError, match="Custom has no torch sampler"):
        torch_sampler(Custom())


@pytest.mark.parametrize("r_row, r_col", [(1.0, 0.0), (0.0, 2.0), (3.0, 1.5), (50.0, 80.0)])
def test_torch_ir_drop_equals_the_numpy_decoupled_model(r_row, r_col):
    g = np.random.default_rng(3).uniform(0, 25, (2, 3, 40, 24)).astype(np.float32)
    g[:, :, 5] = 0.0
    np.testing.assert_allclose(torch_decoupled_factors(torch.from_numpy(g), r_row, r_col).numpy(),
                               decoupled_factors(g, r_row, r_col), rtol=1e-12)
    effective, _ = tile_ir_drop(g, r_row, r_col)
    ours = torch_tile_ir_drop(torch.from_numpy(g), IRDropConfig(r_row_ohm=r_row, r_col_ohm=r_col))
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), effective, rtol=1e-6, atol=1e-6)


def test_torch_ir_drop_refuses_the_exact_method():
    g = torch.rand(2, 1, 4, 3)
    with pytest.raises(ValueError, match="'exact'.*no torch implementation"):
        torch_tile_ir_drop(g, IRDropConfig(r_row_ohm=1.0, method="exact"))


@pytest.mark.parametrize("scaling", ["tile", "column"])
@pytest.mark.parametrize("groups", [1, 3])
@pytest.mark.parametrize("ir_drop", [IRDropConfig(), IRDropConfig(r_row_ohm=20.0,
                                                                   r_col_ohm=30.0)])
def test_read_tile_maps_weights_like_the_analog_tile(scaling, groups, ir_drop):
    """Noise-free device and periphery: the torch tile reads what the numpy tile reads
    (W / w_max, attenuated by IR drop) with the tile's output scales (GDC included)."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(groups, 7, 5)).astype(np.float32)
    w[:, :, 0] *= 0.1
    config = AnalogConfig(device=ideal_device(), ir_drop=ir_drop,
                          periphery=PeripheryConfig(out_noise=0.0)).replace(
        **{"mapping.weight_scaling": scaling})
    tile = AnalogTile(w, config)
    tile.program(0)
    tile.set_time(100.0)
    w_n, scale = read_tile(torch.from_numpy(w), config, TorchGaussian(config.device), 100.0)
    np.testing.assert_allclose(w_n.numpy(), tile.normalized_weights, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(scale.numpy(), tile.output_scale, rtol=1e-5)
    if ir_drop.enabled:  # the wires attenuate every weight
        wires_off = dataclasses.replace(config, ir_drop=IRDropConfig())
        ideal, _ = read_tile(torch.from_numpy(w), wires_off, TorchGaussian(config.device), 100.0)
        assert (w_n.abs() <= ideal.abs()).all() and not torch.equal(w_n, ideal)


@pytest.mark.parametrize("sampling", ["per_read", "per_mvm"])
def test_read_tile_gdc_reference_on_the_programmed_weights(sampling):
    """Ideal periphery, one-hot calibration, read noise only: with
    ``reference="programmed"`` alpha = mean|W / w_max| / mean|W_n(t)| exactly, as the numpy
    tile computes it."""
    w = torch.from_numpy((np.random.default_rng(8).standard_normal((1, 64, 32)) * 0.3
                          ).astype(np.float32))
    config = AnalogConfig(device=PCMDevice(prog_noise_scale=0.0, drift_scale=0.0),
                          periphery=PeripheryConfig.ideal(),
                          read_noise_sampling=sampling).replace(**{
        "drift_compensation.calibration": "one_hot",
        "drift_compensation.reference": "programmed"})
    torch.manual_seed(0)
    w_n, scale = read_tile(w, config, TorchPCM(config.device), 86400.0)
    w_max = w.abs().max()
    expected = (w / w_max).abs().mean() / w_n.abs().mean()
    torch.testing.assert_close(scale / w_max, expected.expand_as(scale), rtol=1e-5, atol=0)
    if sampling == "per_read":
        assert abs(float(expected) - 1) > 1e-4


def training_layer(config: AnalogConfig, t: float = 86400.0):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1)
    hwa = HardwareAwareConfig(noise_model="device", clip_sigma=None, t_min=t, t_max=t)
    layer = convert_to_analog(nn.Sequential(conv), config, hwa=hwa)[0].train()
    x = torch.randn(64, 8, 6, 6)
    digital = nn.functional.conv2d(x, conv.weight, conv.bias, padding=1).detach()
    return layer, x, digital


def relative_error(out: torch.Tensor, digital: torch.Tensor) -> float:
    return float((out.detach().cpu() - digital).norm() / digital.norm())


TRAINING = {
    "hermes": AnalogConfig(device=make_device("hermes"), periphery=PeripheryConfig.ideal()),
    "rram": AnalogConfig(device=make_device("rram"), periphery=PeripheryConfig.ideal()),
    "ir_drop": AnalogConfig(periphery=PeripheryConfig.ideal(),
                            ir_drop=IRDropConfig(r_row_ohm=1.0, r_col_ohm=1.0)),
}


@pytest.mark.parametrize("name", sorted(TRAINING))
def test_forced_torch_training_samples_in_torch_with_the_numpy_error(name):
    """Forced torch: the device model of hardware-aware training (and IR drop) samples in
    torch ops, never the numpy tiles; the output error against the float layer has the
    numpy reference's mean over 12 paired draws (within 5 standard errors of the difference)."""
    layer, x, digital = training_layer(TRAINING[name])
    numpy_errors = [relative_error(layer(x), digital) for _ in range(12)]
    set_backend(layer, "torch")
    with mock.patch("aimcsim.nn.training_weights._numpy_device_blocks",
                    side_effect=AssertionError("numpy tiles used")):
        torch_errors = [relative_error(layer(x), digital) for _ in range(12)]
        out = layer(x)
    out.square().mean().backward()
    assert torch.isfinite(layer.weight.grad).all()
    diff = np.array(torch_errors) - np.array(numpy_errors)
    assert abs(diff.mean()) <= 5 * diff.std(ddof=1) / np.sqrt(diff.size) + 1e-3
    assert 0.005 < np.mean(torch_errors) < 0.5


def test_forced_torch_training_refuses_what_it_cannot_run_on_the_device():
    layer, x, _ = training_layer(AnalogConfig(ir_drop=IRDropConfig(r_row_ohm=1.0,
                                                                   method="exact")))
    set_backend(layer, "torch")
    with pytest.raises(ValueError, match="'exact'"):
        layer(x)

    class Custom(GaussianDevice):
        pass

    layer, x, _ = training_layer(AnalogConfig(device=Custom()))
    set_backend(layer, "torch")
    with pytest.raises(ValueError, match="Custom has no torch sampler"):
        layer(x)


# ---------------------------------------------------------------------- CUDA (skipped here)
@cuda
@pytest.mark.parametrize("name", sorted(DEVICES))
def test_samplers_run_on_cuda(name):
    device, sampler_cls, times = DEVICES[name]
    sampler = sampler_cls(device)
    g = torch.rand(1000, device="cuda") * device.g_max
    state = sampler.program(g)
    for t in times:
        read = sampler.read(state, t)
        assert read.is_cuda and torch.isfinite(read).all() and (read >= 0).all()


@cuda
def test_ir_drop_runs_on_cuda_and_equals_the_cpu():
    g = torch.rand(2, 2, 64, 32) * 25
    config = IRDropConfig(r_row_ohm=2.0, r_col_ohm=1.0)
    out = torch_tile_ir_drop(g.cuda(), config)
    assert out.is_cuda
    torch.testing.assert_close(out.cpu(), torch_tile_ir_drop(g, config), rtol=1e-6, atol=1e-6)


@cuda
@pytest.mark.parametrize("name", sorted(TRAINING))
def test_device_training_stays_on_cuda(name):
    layer, x, digital = training_layer(TRAINING[name])
    layer = layer.cuda()
    with mock.patch("aimcsim.nn.training_weights._numpy_device_blocks",
                    side_effect=AssertionError("numpy tiles used")):
        out = layer(x.cuda())
    out.square().mean().backward()
    assert out.is_cuda and layer.weight.grad.is_cuda
    assert 0.005 < relative_error(out, digital) < 0.5
