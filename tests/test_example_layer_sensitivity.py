"""examples/layer_sensitivity.py and the accuracy probe it uses, on a tiny network."""
from __future__ import annotations

import pytest
from conftest import load_example

from aimcsim.experiments.probe import analog_accuracies, analog_accuracy


def test_every_layer_measured_and_outputs_written(tmp_path, self_labelled_tiny_net):
    example = load_example("layer_sensitivity")
    net, split = self_labelled_tiny_net
    # two programmings: on 64 images the accuracies of one programming can coincide (with the
    # kernels' normals of 2026-12-02 programming 0 gives 59/64 in all three runs, though their
    # outputs differ), so the runs are compared on the mean of two, as in the probe test below
    fp32, results = example.layer_sensitivity(net, split, time_s=1.0, reps=2, batch_size=32)
    assert fp32 == 1.0
    assert set(results) == {example.ALL_LAYERS, "0", "3"}
    assert all(0.0 <= acc <= 1.0 for acc in results.values())
    assert len(set(results.values())) > 1  # each run keeps another layer on tiles
    example.write_table(fp32, results, tmp_path / "s.md", "tiny")
    example.plot_drops(fp32, results, tmp_path / "s.png", "tiny")
    table = (tmp_path / "s.md").read_text()
    assert "| `0` |" in table and "| `3` |" in table and "FP32: 100.00%" in table
    assert (tmp_path / "s.png").stat().st_size > 0


def test_single_layer_runs_differ_from_each_other_and_repeat_with_seed(self_labelled_tiny_net):
    net, split = self_labelled_tiny_net
    first = analog_accuracy(net, split, 1e5, reps=2, batch_size=32, exclude=["3"])
    again = analog_accuracy(net, split, 1e5, reps=2, batch_size=32, exclude=["3"])
    assert first == again  # programming and read seeds fixed per repetition
    assert first < 1.0  # the analog conv misclassifies some images of its own labels
    runs = analog_accuracies(net, split, 1e5, reps=4, batch_size=32, exclude=["3"])
    assert first == sum(runs[:2]) / 2  # the first two programmings are those of reps=2
    # programmings read differently, and excluding layer 3 changes what is read (on 64
    # images two accuracies can coincide, so four programmings are compared)
    assert len(set(runs)) > 1
    assert analog_accuracies(net, split, 1e5, reps=4, batch_size=32) != runs


def test_every_layer_digital_is_refused(self_labelled_tiny_net):
    net, split = self_labelled_tiny_net
    with pytest.raises(ValueError, match="no analog layers"):
        analog_accuracy(net, split, 1.0, reps=1, batch_size=32, exclude=["0", "3"])


def test_probe_refuses_zero_programmings(self_labelled_tiny_net):
    net, split = self_labelled_tiny_net
    with pytest.raises(ValueError, match="reps must be at least 1"):
        analog_accuracy(net, split, 1.0, reps=0)


def test_an_attention_block_is_one_unit_and_runs_alone():
    """The attention's out_proj converts with its block, so it is not a unit of its own (it
    would leave no analog layer when measured alone)."""
    import torch
    from torch import nn

    example = load_example("layer_sensitivity")

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.attn(x, x, x, need_weights=False)[0].mean(1))

    net = Tiny()
    units = example.analog_units(net)
    assert units == ["attn", "head"]
    x = torch.randn(2, 4, 8)
    from aimcsim.nn import convert_to_analog, program, set_time
    analog = convert_to_analog(net, exclude=["head"]).eval()
    program(analog, seed=0)
    set_time(analog, 1.0)
    assert type(analog.head) is nn.Linear and type(analog.attn) is not nn.MultiheadAttention
    with torch.no_grad():
        y = analog(x)
        assert torch.isfinite(y).all() and not torch.equal(y, net(x))
