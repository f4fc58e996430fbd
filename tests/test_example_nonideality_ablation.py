"""examples/nonideality_ablation.py: one non-ideality off at a time, on a tiny network."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aimcsim.data import CifarSplit, iterate_batches

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "nonideality_ablation.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("nonideality_ablation", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_net_and_data(n: int = 64) -> tuple[nn.Module, CifarSplit]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(8 * 8 * 8, 10)).eval()
    images = np.random.default_rng(0).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    split = CifarSplit(images, np.zeros(n, dtype=np.int64))
    with torch.no_grad():  # label every image with the network's own answer: digital = 100%
        labels = torch.cat([net(x).argmax(1) for x, _ in iterate_batches(split, 32)])
    return net, CifarSplit(images, labels.numpy().astype(np.int64))


def test_each_variant_switches_off_exactly_one_thing():
    example = _load_example()
    configs = example.ablation_configs()
    default = configs.pop(example.DEFAULT)
    base_device, base_periphery = default.device.config, default.periphery
    for name, config in configs.items():
        changed = [f for f in vars(base_device) if getattr(config.device.config, f)
                   != getattr(base_device, f)]
        changed += [f for f in vars(base_periphery) if getattr(config.periphery, f)
                    != getattr(base_periphery, f)]
        assert changed, name
        assert len(changed) <= 2, (name, changed)  # the ideal ADC drops bits and bound
        assert config.drift_compensation == default.drift_compensation


def test_ablation_measures_every_configuration_and_writes_outputs(tmp_path):
    example = _load_example()
    net, split = _tiny_net_and_data()
    digital, results = example.ablation(net, split, time_s=1e5, reps=1, batch_size=32)
    assert digital == 1.0
    assert set(results) == set(example.ablation_configs())
    assert all(0.0 <= acc <= 1.0 for acc in results.values())
    assert results[example.DEFAULT] < 1.0  # the analog network misses some of its own labels
    example.write_table(digital, results, tmp_path / "a.md", "tiny")
    example.plot_given_back(digital, results, tmp_path / "a.png", "tiny")
    table = (tmp_path / "a.md").read_text()
    assert "| no drift |" in table and "digital (these weights, no tiles): 100.00%" in table
    assert (tmp_path / "a.png").stat().st_size > 0
