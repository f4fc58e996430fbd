"""examples/ir_drop_error.py and examples/ir_drop_accuracy.py at tiny sizes."""
from __future__ import annotations

import json

from conftest import load_example


def test_error_study_orders_the_models_and_writes_its_table(tmp_path):
    example = load_example("ir_drop_error")
    out = tmp_path / "error"
    example.main(["--sizes", "6,12", "--resistances", "1,30", "--vectors", "8",
                  "--out", str(out)])
    results = json.loads(out.with_suffix(".json").read_text())["results"]
    for n in ("6", "12"):
        for kind in example.INPUTS:
            low, high = results[n]["1"][kind], results[n]["30"][kind]
            assert 0 < low["ir_drop"] < high["ir_drop"]  # more resistance, more drop
            for e in (low, high):  # the decoupled model beats first order by far
                assert e["decoupled"] < 0.2 * e["first_order"] < 0.2 * e["ir_drop"]
    assert results["12"]["30"]["signed"]["ir_drop"] > results["6"]["30"]["signed"]["ir_drop"]
    table = out.with_suffix(".md").read_text()
    assert table.count("| 12 | 30 |") == 2 and "decoupled error" in table


def test_accuracy_study_pairs_seeds_and_reports_the_weight_kept(tmp_path,
                                                              self_labelled_tiny_net):
    example = load_example("ir_drop_accuracy")
    net, split = self_labelled_tiny_net
    results = example.measure(net, split, [0.0, 3000.0], time_s=1.0, reps=2, batch_size=32)
    assert results["0"]["weight_kept"] == 1.0
    assert 0 < results["3000"]["weight_kept"] < 0.9  # a very resistive wire loses signal
    assert all(0 <= a <= 1 for entry in results.values() for a in entry["runs"])
    again = example.measure(net, split, [0.0, 1e-9], time_s=1.0, reps=2, batch_size=32)
    assert again["0"]["runs"] == results["0"]["runs"]
    assert again["1e-09"]["runs"] == results["0"]["runs"]  # paired: same seeds at every r
    text = example.table(results, 1.0, "tiny")
    assert "| 3000 |" in text and "paired difference" in text
