"""The device models in the studies: drift studies with ``--device``, the device model in the
loop of hardware-aware training, validity limits enforced up front, comparison by device."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from aimcsim.data import CifarSplit, default_root
from aimcsim.devices import make_device
from aimcsim.experiments.cli import QUICK_TIMES, quick_times
from aimcsim.experiments.compare import compare_table
from aimcsim.experiments.drift import DriftStudyConfig
from aimcsim.models import build_model
from aimcsim.nn import HardwareAwareConfig, convert_to_analog
from aimcsim.tiles import AnalogConfig, PeripheryConfig
from aimcsim.training import TrainConfig
from aimcsim.training.hwa import hardware_aware_finetune

DEVICES = ("pcm", "hermes", "hermes-1", "rram")


def test_quick_times_stay_within_each_devices_range():
    assert quick_times(make_device("pcm")) == QUICK_TIMES
    assert quick_times(make_device("hermes")) == QUICK_TIMES
    assert quick_times(make_device("rram")) == (1.0, 3600.0, 1e5)


def test_study_times_must_be_valid_for_the_device(tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    rram = AnalogConfig(device=make_device("rram"))
    ok = DriftStudyConfig(model="f1net", fp32_weights=str(weights), times=(1.0, 172800.0),
                          analog=rram)
    assert ok.describe()["analog"]["device"]["model"] == "WanRRAMDevice"
    for bad in ((1e-5, 1.0), (1.0, 2592000.0)):
        with pytest.raises(ValueError, match="times = .* outside the read times "
                                             "WanRRAMDevice was characterised for"):
            DriftStudyConfig(model="f1net", fp32_weights=str(weights), times=bad, analog=rram)
    DriftStudyConfig(model="f1net", fp32_weights=str(weights), times=(1e-5, 2592000.0),
                     analog=AnalogConfig(device=make_device("hermes")))


@pytest.mark.parametrize("name", ["hermes", "hermes-1", "rram"])
def test_device_model_in_the_training_loop(name):
    """Hardware-aware training with the device model in the loop works for every device: a
    new programming each step, finite gradients, a perturbation of a few percent after GDC."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1)
    hwa = HardwareAwareConfig(noise_model="device", clip_sigma=None, t_min=3600.0,
                              t_max=86400.0)
    config = AnalogConfig(device=make_device(name), periphery=PeripheryConfig.ideal())
    layer = convert_to_analog(nn.Sequential(conv), config, hwa=hwa)[0].train()
    x = torch.randn(4, 8, 6, 6)
    digital = nn.functional.conv2d(x, conv.weight, conv.bias, padding=1).detach()
    out = layer(x)
    out.square().mean().backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
    error = float((out.detach() - digital).norm() / digital.norm())
    assert 0.01 < error < 0.5
    assert not torch.equal(layer(x).detach(), out.detach())


def test_training_refuses_read_times_outside_the_devices_range(tmp_path):
    images = torch.zeros(8, 3, 32, 32, dtype=torch.uint8).numpy()
    data = CifarSplit(images, torch.zeros(8, dtype=torch.int64).numpy())
    hwa = HardwareAwareConfig(noise_model="device", t_min=1.0, t_max=1e6)
    with pytest.raises(ValueError, match="t_max = 1e\\+06 s is outside the read times "
                                         "WanRRAMDevice"):
        hardware_aware_finetune(build_model("f1net"), data, None, TrainConfig(epochs=1),
                                tmp_path / "run", hwa,
                                analog_config=AnalogConfig(device=make_device("rram")),
                                progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    from aimcsim.__main__ import main
    with pytest.raises(SystemExit, match="--device applies to hardware-aware training"):
        main(["train", "--model", "f1net", "--out", str(tmp_path / "x"), "--device", "rram"])
    with pytest.raises(ValueError, match="unknown device 'flash'"):
        main(["train", "--model", "f1net", "--out", str(tmp_path / "x"), "--device", "flash",
              "--hwa-from", "w.pt"])


@pytest.mark.skipif(default_root() is None, reason="CIFAR-10 not found (set AIMCSIM_CIFAR10)")
def test_drift_study_per_device_on_the_command_line(tmp_path, capsys):
    """``drift --device NAME --quick`` for each device on 20 test images; config.json records
    the device, a resume with another device is refused, and ``compare --label device`` puts
    the studies side by side."""
    from aimcsim.__main__ import main
    weights = tmp_path / "f1net.pt"
    torch.manual_seed(0)
    torch.save(build_model("f1net").state_dict(), weights)
    outs = {}
    for name in DEVICES:
        out = tmp_path / name
        main(["drift", "--model", "f1net", "--fp32", str(weights), "--device", name, "--quick",
              "--limit", "20", "--reps", "1", "--gdc", "on", "--threads", "1",
              "--series", "direct", "--out", str(out)])
        config = json.loads((out / "config.json").read_text())
        assert config["analog"]["device"] == json.loads(json.dumps(make_device(name).to_dict()))
        points = [json.loads(x) for x in (out / "points.jsonl").read_text().splitlines()]
        assert sorted(p["t"] for p in points) == list(quick_times(make_device(name)))
        report = (out / "report.md").read_text()
        assert report.startswith(f"Device model: {make_device(name).label}.")
        # the published F1 readings were measured on PCM: beside the PCM study only
        assert ("readings of F1" in report) == (name == "pcm")
        outs[name] = out
    with pytest.raises(ValueError, match="analog changed"):
        main(["drift", "--model", "f1net", "--fp32", str(weights), "--device", "hermes",
              "--quick", "--limit", "20", "--reps", "1", "--gdc", "on", "--series", "direct",
              "--out", str(outs["pcm"])])
    with pytest.raises(ValueError, match="times = 1e-05 s is outside"):
        main(["drift", "--model", "f1net", "--fp32", str(weights), "--device", "rram",
              "--times", "f1", "--out", str(tmp_path / "bad")])
    with pytest.raises(SystemExit):
        main(["drift", "--model", "f1net", "--fp32", str(weights), "--device", "flash",
              "--out", str(tmp_path / "bad")])
    capsys.readouterr()
    main(["compare", *map(str, outs.values()), "--series", "direct", "--label", "device",
          "--times", "1,3600", "--out", str(tmp_path / "cmp")])
    md = (tmp_path / "cmp" / "compare_direct_gdc_on_devices.md").read_text()
    for label in ("PCM (Nandakumar 2019)", "Hermes PCM, 2 devices per sign",
                  "Hermes PCM, 1 device per sign", "RRAM (Wan 2022)"):
        assert f"| {label} | n/a |" in md
    assert "| device | FP32 | 1 s | 1 h | drop (first to last) |" in md
    assert "published" not in md
    table, _ = compare_table([outs["rram"]], series="direct", times=(1.0, 1e5), label="device")
    assert "n/a" not in table.splitlines()[2].split("|")[3]
