"""examples/nonideality_ablation.py: one non-ideality off at a time, on a tiny network."""
from __future__ import annotations

from conftest import load_example


def test_each_variant_switches_off_exactly_one_thing():
    example = load_example("nonideality_ablation")
    configs = example.ablation_configs()
    default = configs.pop(example.DEFAULT)
    base_device, base_periphery = default.device.config, default.periphery
    seen = []
    for name, config in configs.items():
        changed = [f for f in vars(base_device) if getattr(config.device.config, f)
                   != getattr(base_device, f)]
        changed += [f for f in vars(base_periphery) if getattr(config.periphery, f)
                    != getattr(base_periphery, f)]
        assert changed, name
        if name.startswith("ideal ADC"):
            assert set(changed) == {"out_bits", "out_bound"}, changed  # bits and saturation
        else:
            assert len(changed) == 1, (name, changed)
        for field in changed:  # each change switches something off
            new = getattr(config.device.config, field, None) if hasattr(base_device, field) \
                else getattr(config.periphery, field)
            assert new in (0, 0.0, None) or set(new) == {0.0}, (name, field, new)
        assert config.drift_compensation == default.drift_compensation
        seen.append(frozenset(changed))
    assert len(set(seen)) == len(seen)  # no two variants switch off the same thing


def test_ablation_measures_every_configuration_and_writes_outputs(tmp_path,
                                                                 self_labelled_tiny_net):
    example = load_example("nonideality_ablation")
    net, split = self_labelled_tiny_net
    digital, results = example.ablation(net, split, time_s=1e5, reps=1, batch_size=32)
    assert digital == 1.0
    assert set(results) == set(example.ablation_configs())
    assert all(len(runs) == 1 and 0.0 <= runs[0] <= 1.0 for runs in results.values())
    assert results[example.DEFAULT][0] < 1.0  # the analog network misses some of its own labels
    # each variant is read with its own configuration, not the default's
    assert any(runs != results[example.DEFAULT] for name, runs in results.items()
               if name != example.DEFAULT)
    example.write_table(digital, results, tmp_path / "a.md", "tiny")
    example.plot_given_back(digital, results, tmp_path / "a.png", "tiny")
    table = (tmp_path / "a.md").read_text()
    assert "| no drift |" in table and "digital (these weights, no tiles): 100.00%" in table
    assert "| every non-ideality (default) |" in table and "+0.00 ± 0.00 |" in table
    assert (tmp_path / "a.png").stat().st_size > 0


def test_points_given_back_are_paired_per_programming():
    example = load_example("nonideality_ablation")
    results = {example.DEFAULT: [0.80, 0.90, 0.70], "no drift": [0.82, 0.93, 0.71]}
    gains = example.given_back(results)
    assert gains[example.DEFAULT] == (0.0, 0.0)
    mean, se = gains["no drift"]
    assert abs(mean - 2.0) < 1e-9  # (2 + 3 + 1) / 3 points
    assert abs(se - 1.0 / 3 ** 0.5) < 1e-9  # std of (2, 3, 1) is 1: the shared spread cancels


def test_probe_runs_adabs_after_every_read(monkeypatch):
    """``adabs`` batches re-measure the batch norms once per programming, after its read, and
    change what a network with batch norms reads."""
    import numpy as np
    import torch
    from torch import nn

    import aimcsim.experiments.probe as probe
    from aimcsim.data import CifarSplit

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Flatten(), nn.Linear(8 * 8 * 8, 10)).eval()
    rng = np.random.default_rng(0)
    split = CifarSplit(rng.integers(0, 256, (64, 3, 32, 32), dtype=np.uint8),
                       rng.integers(0, 10, 64).astype(np.int64))
    calls = []
    real_adapt, real_read = probe.adapt_batchnorm, probe.set_time

    def spy_adapt(model, inputs):
        calls.append("adabs")
        return real_adapt(model, inputs)

    def spy_read(model, t, **kwargs):
        calls.append("read")
        return real_read(model, t, **kwargs)

    monkeypatch.setattr(probe, "adapt_batchnorm", spy_adapt)
    monkeypatch.setattr(probe, "set_time", spy_read)
    batch = [torch.rand(32, 3, 32, 32) * 4.0 + 1.0]  # far from the stored statistics (0, 1)
    plain = probe.analog_accuracies(net, split, 1e5, reps=2, batch_size=32)
    assert calls == ["read", "read"]
    calls.clear()
    adapted = probe.analog_accuracies(net, split, 1e5, reps=2, batch_size=32, adabs=batch)
    assert calls == ["read", "adabs", "read", "adabs"]  # after every read
    assert plain != adapted
