"""End to end on a tiny budget: train two batches, fine-tune hardware-aware, program, read at
three times, plot; the drift study resumes without lost or duplicated points."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from aimcsim.data import CifarSplit, default_root, load_cifar10
from aimcsim.experiments.compare import compare_table
from aimcsim.tiles.config import AnalogConfig
from aimcsim.experiments.drift import DriftStudyConfig, run_drift_study
from aimcsim.experiments.plots import plot_accuracy_over_time
from aimcsim.models import build_model
from aimcsim.nn import HardwareAwareConfig
from aimcsim.training import TrainConfig, train_classifier
from aimcsim.training.hwa import hardware_aware_finetune
from aimcsim.training.state_file import load_state


def tiny_data() -> tuple[CifarSplit, CifarSplit]:
    if default_root() is not None:
        return load_cifar10(train=True, limit=256), load_cifar10(train=False, limit=120)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (256, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, 256)
    return CifarSplit(images, labels), CifarSplit(images[:120], labels[:120])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    train, test = tiny_data()
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=1, batch_size=128, lr=0.05)
    train_classifier(build_model("f1net"), train, test, cfg, root / "fp32", progress=False)
    model = build_model("f1net")
    model.load_state_dict(torch.load(root / "fp32" / "model.pt", weights_only=True))
    _, history = hardware_aware_finetune(model, train, test, cfg, root / "hwa",
                                         HardwareAwareConfig(weight_noise=0.04),
                                         progress=False)
    assert 0 <= history["test_acc"] <= 1
    return root, test


def test_drift_study_end_to_end_and_resume(trained):
    root, test = trained
    config = DriftStudyConfig(model="f1net", fp32_weights=str(root / "fp32" / "model.pt"),
                              hwa_weights=str(root / "hwa" / "model.pt"),
                              times=(1e-5, 3600.0, 1e5), repetitions=2, gdc=(True,),
                              batch_size=60)
    out = root / "drift"
    results = run_drift_study(config, test, out, progress=False)
    lines = (out / "points.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 2 * 2 * 3  # fp32 + 2 series x 2 programmings x 3 times
    assert {(r["series"], r["t"]) for r in results["rows"]} == {
        (s, t) for s in ("direct", "hwa") for t in (1e-5, 3600.0, 1e5)}
    assert all(0 <= r["mean"] <= 1 and r["n"] == 2 for r in results["rows"])
    # a kill that lost the last two points and cut a line in half: resumed, same numbers
    (out / "points.jsonl").write_text("\n".join(lines[:-2]) + "\n" + lines[-2][:10])
    with pytest.warns(UserWarning, match=r"points\.jsonl: skipped 1 unreadable line"):
        again = run_drift_study(config, test, out, progress=False)
    assert again["rows"] == results["rows"]
    # binary garbage and a key-less line (a damaged disk, a stray write): skipped, not a crash
    with open(out / "points.jsonl", "ab") as fh:
        fh.write(b"\x00\xff\xfe garbage\n{\"series\": \"direct\"}\n")
    with pytest.warns(UserWarning, match=r"skipped 3 unreadable line"):
        assert run_drift_study(config, test, out, progress=False)["rows"] == results["rows"]
    kept = [json.loads(x) for x in (out / "points.jsonl").read_text(errors="replace").splitlines()
            if x.strip().endswith("}") and "accuracy" in x]
    keys = [(p["series"], p["gdc"], p["rep"], p["t"]) for p in kept]
    assert len(keys) == len(set(keys)) == 13
    # nothing to do on a complete study
    with pytest.warns(UserWarning):
        run_drift_study(config, test, out, progress=False)
    assert len((out / "points.jsonl").read_text(errors="replace").splitlines()) == len(kept) + 3
    assert (out / "summary.csv").read_text().count("\n") == 1 + 1 + 6
    png = out / "f1.png"
    plot_accuracy_over_time(again, png)
    assert png.stat().st_size > 10_000
    table, rows = compare_table([out], series="hwa", gdc=True, times=(1e-5, 1e5))
    assert "f1net" in table and len(rows) == 1


def test_hardware_aware_model_pt_holds_the_clipped_weights(trained):
    """model.pt: each layer's weights clipped at 2.5 std, as the training forward saw them;
    checkpoint.pt keeps the raw weights to resume from."""
    root, _ = trained
    raw = load_state(root / "hwa" / "checkpoint.pt")["model"]
    baked = torch.load(root / "hwa" / "model.pt", weights_only=True)
    name = "stem.0.weight"
    bound = 2.5 * raw[name].std()
    torch.testing.assert_close(baked[name], raw[name].clamp(-bound, bound))
    assert json.loads((root / "hwa" / "history.json").read_text())["model_pt"]


def test_drift_study_refuses_to_mix_studies(trained, tmp_path):
    """The hardware-aware series may join a study later; other weights may not."""
    root, test = trained
    fp32, hwa = str(root / "fp32" / "model.pt"), str(root / "hwa" / "model.pt")
    small = dict(model="f1net", times=(1.0,), repetitions=1, gdc=(True,), limit=60,
                 batch_size=60)
    out = tmp_path / "study"
    run_drift_study(DriftStudyConfig(fp32_weights=fp32, **small), test, out, progress=False)
    both = run_drift_study(DriftStudyConfig(fp32_weights=fp32, hwa_weights=hwa, **small),
                           test, out, progress=False)
    assert {r["series"] for r in both["rows"]} == {"direct", "hwa"}
    # a run without the hardware-aware weights afterwards is fine and keeps their record
    run_drift_study(DriftStudyConfig(fp32_weights=fp32, **small), test, out, progress=False)
    assert json.loads((out / "config.json").read_text())["hwa_sha256"]
    # series measured apart (as two processes would) add up to the same study, nothing twice
    split = tmp_path / "split"
    for part in (("hwa",), ("fp32", "direct")):
        run_drift_study(DriftStudyConfig(fp32_weights=fp32, hwa_weights=hwa, series=part,
                                         **small), test, split, progress=False)
    assert len((split / "points.jsonl").read_text().splitlines()) == 3
    whole = run_drift_study(DriftStudyConfig(fp32_weights=fp32, hwa_weights=hwa, **small),
                            test, split, progress=False)
    assert whole["rows"] == both["rows"] and whole["fp32"] == both["fp32"]
    with pytest.raises(ValueError, match="series"):
        DriftStudyConfig(fp32_weights=fp32, series=("hwa",), **small)
    with pytest.raises(ValueError, match="fp32_sha256 changed"):
        run_drift_study(DriftStudyConfig(fp32_weights=hwa, hwa_weights=hwa, **small),
                        test, out, progress=False)
    with pytest.raises(ValueError, match="seed changed"):
        run_drift_study(DriftStudyConfig(fp32_weights=fp32, hwa_weights=hwa, seed=1, **small),
                        test, out, progress=False)
    # a study stored before a config field existed (here: ir_drop) resumes when the new field
    # keeps its default, and is refused when it does not
    stored = json.loads((out / "config.json").read_text())
    del stored["analog"]["ir_drop"]
    (out / "config.json").write_text(json.dumps(stored))
    assert run_drift_study(DriftStudyConfig(fp32_weights=fp32, hwa_weights=hwa, **small),
                           test, out, progress=False)["rows"] == both["rows"]
    (out / "config.json").write_text(json.dumps(stored))
    wired = AnalogConfig().replace(**{"ir_drop.r_row_ohm": 1.0, "ir_drop.r_col_ohm": 1.0})
    with pytest.raises(ValueError, match="analog changed"):
        run_drift_study(DriftStudyConfig(fp32_weights=fp32, hwa_weights=hwa, analog=wired,
                                         **small), test, out, progress=False)


def test_drift_config_validation(tmp_path):
    with pytest.raises(ValueError, match="fp32_weights"):
        DriftStudyConfig(model="f1net", fp32_weights=str(tmp_path / "missing.pt"))
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    with pytest.raises(ValueError, match="repetitions"):
        DriftStudyConfig(model="f1net", fp32_weights=str(weights), repetitions=0)
    with pytest.raises(ValueError, match="times"):
        DriftStudyConfig(model="f1net", fp32_weights=str(weights), times=(-1.0,))


def test_f1_plus_f2_preset_holds_every_f2_reading():
    from aimcsim.experiments.drift import F1_TIMES, F2_TIMES, TIME_PRESETS
    both = TIME_PRESETS["f1+f2"]
    assert len(both) == 20 and list(both) == sorted(both)
    assert set(F1_TIMES) | set(F2_TIMES) == set(both)


def test_f1_report_compares_with_published_readings():
    """The report picks the nearest time in log time and flags means outside the readings."""
    from aimcsim.experiments.report import f1_report

    def row(series, t, mean):
        return {"series": series, "gdc": True, "t": t, "n": 2, "mean": mean, "std": 0.01,
                "min": mean - 0.01, "max": mean + 0.01, "runs": [mean - 0.01, mean + 0.01]}
    results = {"model": "f1net", "fp32": 0.915,
               "rows": [row("hwa", 1e-5, 0.91), row("hwa", 12.0, 0.80), row("hwa", 1e5, 0.895),
                        row("direct", 1e-5, 0.88), row("direct", 9.0, 0.75),
                        row("direct", 1e5, 0.60)]}
    lines = f1_report(results).splitlines()
    body = [line for line in lines if line.startswith("| ") and "series" not in line]
    assert len(body) == 7
    assert body[0].startswith("| FP32 | - | 91.50 |") and body[0].endswith("yes |")
    assert "| 12 | 80.00" in body[2] and body[2].endswith("no |")  # 80% at 10 s: outside
    assert body[3].endswith("yes |")
    assert "| 9 | 75.00" in body[5] and body[5].endswith("yes |")
    assert body[6].endswith("no |")  # 60% at 1e5 s: below the 68-85% band


def test_accuracy_axis_keeps_every_single_run_in_the_picture(tmp_path):
    """60-100% as in F1 while the runs fit; lowered in 5-point steps when one falls below."""
    from aimcsim.experiments.plots import accuracy_axis_limits

    def results(low):
        return {"model": "resnet32", "fp32": 0.91, "rows": [
            {"series": "direct", "gdc": True, "t": t, "n": 2, "mean": m, "std": 0.01,
             "min": lo, "max": m + 0.01, "runs": [lo, m + 0.01]}
            for t, m, lo in ((1.0, 0.84, 0.83), (2.6e6, 0.62, low))]}
    assert accuracy_axis_limits(results(0.61)) == (60.0, 100.0)
    assert accuracy_axis_limits(results(0.5479)) == (50.0, 100.0)
    assert accuracy_axis_limits(results(0.10)) == (5.0, 100.0)
    assert plot_accuracy_over_time(results(0.5479), tmp_path / "a.png") == (50.0, 100.0)
    assert (tmp_path / "a.png").stat().st_size > 0


def test_study_report_shows_f1_readings_only_for_the_f1_network():
    """Every network gets its measured table; the published F1 readings only the F1 network,
    and a reading with no measured time within half a decade is left out."""
    from aimcsim.experiments.report import study_report

    def row(series, t, mean):
        return {"series": series, "gdc": True, "t": t, "n": 5, "mean": mean, "std": 0.01,
                "min": mean - 0.01, "max": mean + 0.01, "runs": [mean]}
    rows = [row("direct", 1.0, 0.84), row("direct", 86400.0, 0.75)]
    other = study_report({"model": "resnet32", "fp32": 0.91, "rows": rows}, (True,))
    assert "readings of F1" not in other
    assert "| direct mapping | 8.64e+04 | 75.00 ± 1.00 (74.00-76.00) | 5 |" in other
    f1 = study_report({"model": "f1net", "fp32": 0.91, "rows": rows}, (True,))
    compared = f1.split("readings of F1")[1]
    assert "near 10 s" not in compared  # 1 s and 1 day are both more than half a decade away
    assert "ending near 81%" in compared  # 1e5 s: 86,400 s is 0.06 decades away


def test_compare_table_reports_drop_and_one_day_gap(tmp_path):
    """F2 table: accuracy per time, drop from 1 s to 1 month, and T500 minus ResNet-32 at 1 day."""
    def study(model, means):
        rows = [{"series": "hwa", "gdc": True, "t": t, "n": 3, "mean": m, "std": 0.002}
                for t, m in zip((1.0, 3600.0, 86400.0, 2592000.0), means)]
        folder = tmp_path / model
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(
            {"model": model, "fp32": 0.93, "rows": rows}))
        return folder
    runs = [study("resnet32", (0.91, 0.90, 0.885, 0.86)), study("t500", (0.915, 0.91, 0.905, 0.90))]
    table, rows = compare_table(runs)
    lines = table.splitlines()
    assert lines[2].startswith("| resnet32 | 93.00 | 91.00 ± 0.20 [0.12] |")  # SE 0.2 / sqrt(3)
    assert "programmings per cell: 3." in table
    assert lines[2].endswith("| 5.00 | 5.04 |") and lines[3].endswith("| 1.50 | 1.8 |")
    # each network's loss from its own FP32, with the standard error of the mean
    assert "| resnet32 | 2.00 ± 0.12 | 3.00 ± 0.12 | 4.50 ± 0.12 | 7.00 ± 0.12 |" in lines
    # the published claims checked against the standard errors (unpaired: no single runs)
    assert lines[-3] == ("- T500 ahead at 1 day: +2.00 ± 0.16 points (published +1.86): "
                         "**reproduced**.")
    assert lines[-2] == ("- Loss from its own FP32 at 1 day: T500 2.50, ResNet-32 4.50; T500 "
                         "loses +2.00 ± 0.16 points less (published: T500 the more robust): "
                         "**reproduced**.")
    assert lines[-1].startswith("- Drop from 1 s to 1 month (paired over programmings): T500 "
                                "1.50 ± 0.16, ResNet-32 5.00 ± 0.16; T500 loses +3.50 ± 0.23")
    assert lines[-1].endswith("(published +3.24): **reproduced**.")
    assert "ahead at 1 day" not in compare_table(runs[:1])[0]
    from aimcsim.__main__ import main
    main(["compare", *map(str, runs), "--series", "hwa", "--out", str(tmp_path / "f2")])
    md = (tmp_path / "f2" / "compare_hwa_gdc_on.md").read_text()
    assert md.startswith("Accuracy after programming (hardware-aware trained, GDC on)")
    assert (tmp_path / "f2" / "compare_hwa_gdc_on.png").stat().st_size > 0
    assert "| 88.50 ± 0.20 [0.12] |" in md
    main(["compare", str(runs[0]), str(runs[0]), "--labels", "plain,adabs", "--times",
          "1,86400", "--out", str(tmp_path / "two")])
    md = (tmp_path / "two" / "compare_hwa_gdc_on.md").read_text()
    assert "| plain | 93.00 | 91.00 ± 0.20 [0.12] | 88.50 ± 0.20 [0.12] | 2.50 | 5.04 |" in md
    assert "| adabs |" in md
    with pytest.raises(ValueError, match="labels"):
        compare_table(runs, labels=["one"])
    direct_md = compare_table(runs, series="direct")[0]  # the studies hold no direct rows
    assert direct_md.splitlines()[2].startswith("| resnet32 | 93.00 | n/a | n/a |")
    # the published numbers belong to hardware-aware networks: not beside the direct series
    assert "published drop" not in direct_md and "5.04" not in direct_md
    assert direct_md.splitlines()[-1].endswith("compare them with `--series hwa`.")
    with pytest.raises(FileNotFoundError, match="finished 'python -m aimcsim drift' run"):
        compare_table([tmp_path / "nowhere"])
    with pytest.raises(ValueError, match="series must be one of"):
        compare_table(runs, series="fp32")


def test_f2_verdicts_use_paired_drops_and_a_t_test_on_their_degrees_of_freedom():
    """A drop is paired over programmings when the single runs are there (the shared part of
    the programmings' spread cancels; n - 1 degrees of freedom), else unpaired (Welch's); a
    difference not resolved by a two-sided 95% t-test is noise, and one of the other sign
    than published is reported as reversed."""
    from aimcsim.experiments.compare import drop_with_error, verdict
    first = {"mean": 0.90, "std": 0.01, "n": 4, "runs": [0.89, 0.90, 0.91, 0.90]}
    last = {"mean": 0.88, "std": 0.01, "n": 4, "runs": [0.87, 0.88, 0.89, 0.88]}
    drop, se, dof = drop_with_error(first, last)
    assert drop == pytest.approx(0.02) and se == pytest.approx(0.0, abs=1e-12) and dof == 3
    unpaired = drop_with_error({k: v for k, v in first.items() if k != "runs"}, last)
    assert unpaired[1] == pytest.approx(math.hypot(0.005, 0.005))
    assert unpaired[2] == pytest.approx(6.0)  # Welch with equal errors: n_a + n_b - 2
    # runs of different programmings (a partial study) are not paired
    other = drop_with_error({**first, "reps": [0, 1, 2, 3]}, {**last, "reps": [0, 1, 2, 5]})
    assert other[1] == pytest.approx(math.hypot(0.005, 0.005)) and other[2] == pytest.approx(6)
    assert drop_with_error({**first, "reps": [0, 1, 2, 3]},
                           {**last, "reps": [0, 1, 2, 3]})[1] == pytest.approx(0.0, abs=1e-12)
    assert verdict(0.03, 0.01, 1.86, 7) == "reproduced"  # 3 SE, t_0.975(7) = 2.36
    assert verdict(-0.03, 0.01, 1.86, 7) == "not reproduced (reversed)"
    assert verdict(0.03, 0.01, 1.86, 2) == "within noise"  # t_0.975(2) = 4.30
    assert verdict(0.021, 0.01, 1.86, 1e6) == "reproduced"  # 1.96 in the normal limit
    assert verdict(0.015, 0.01, 1.86, 7) == verdict(-0.022, 0.01, 1.86, 7) == "within noise"
    assert verdict(0.5, float("nan"), 1.86, 7) == verdict(0.5, 0.01, 1.86, None) \
        == "within noise"


@pytest.mark.skipif(default_root() is None, reason="CIFAR-10 not found (set AIMCSIM_CIFAR10)")
def test_drift_command_line(trained, tmp_path, capsys):
    """The one command of the drift study, on 60 real test images: files and report."""
    from aimcsim.__main__ import main
    root, _ = trained
    out = tmp_path / "cli"
    main(["drift", "--model", "f1net", "--fp32", str(root / "fp32" / "model.pt"),
          "--quick", "--limit", "60", "--reps", "1", "--gdc", "on", "--threads", "1",
          "--series", "fp32,direct", "--out", str(out)])
    for name in ("points.jsonl", "summary.csv", "results.json", "report.md", "config.json",
                 "accuracy_over_time_f1net.png"):
        assert (out / name).stat().st_size > 0, name
    assert len((out / "points.jsonl").read_text().splitlines()) == 1 + 4
    assert "FP32" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["drift", "--model", "f1net", "--fp32", "x", "--series", "bogus", "--out", "y"])


def test_bar_chart_needs_one_value_per_name(tmp_path):
    from aimcsim.experiments.plots import plot_points_per_item
    with pytest.raises(ValueError, match="2 names but 1 values"):
        plot_points_per_item(["a", "b"], [1.0], tmp_path / "x.png", "points", "title")
    plot_points_per_item(["a", "b"], [1.0, -0.5], tmp_path / "x.png", "points", "t\n" + "w" * 90)
    assert (tmp_path / "x.png").stat().st_size > 0


def test_points_file_skips_unreadable_lines_with_a_warning(tmp_path):
    """Binary, key-less, non-object, wrongly typed and cut lines are skipped with one warning
    naming the file and the lines; the good points are kept."""
    from aimcsim.experiments.drift import _load_points
    good = [{"series": "direct", "gdc": True, "rep": 0, "t": 1.0, "accuracy": 0.5},
            {"series": "fp32", "gdc": False, "rep": 0, "t": 0.0, "accuracy": 0.9}]
    bad = [b"\x00\x81\xff", b'{"series": "direct"}', b"[1, 2]", b"17",
           b'{"series": "direct", "gdc": true, "rep": "0", "t": 1.0, "accuracy": 0.5}',
           b'{"series": "direct", "gdc": true, "rep": 0, "t": NaN, "accuracy": 0.5}',
           b'{"series": "nope", "gdc": true, "rep": 0, "t": 1.0, "accuracy": 0.5}',
           b'{"series": "direct", "gdc": true, "rep": 0, "t": 1.0, "accuracy": 1.5}',
           json.dumps(good[0]).encode()[:15]]
    path = tmp_path / "points.jsonl"
    path.write_bytes(b"\n".join([json.dumps(good[0]).encode()] + bad[:-1]
                                + [json.dumps(good[1]).encode(), b"", bad[-1]]))
    with pytest.warns(UserWarning, match=r"points\.jsonl: skipped 9 unreadable line\(s\) "
                                         r"\(2, 3, 4, 5, 6, 7, 8, 9, 12\)"):
        points = _load_points(path)
    assert sorted(points.values(), key=lambda p: p["series"]) == good


def test_drift_analog_config_from_a_json_file_and_flags(tmp_path):
    """``drift --analog-config`` reads a whole AnalogConfig from JSON (what a study's
    config.json holds), ``--device`` and ``--gdc-granularity`` apply on top; a device given
    both ways, unknown keys and unreadable files are refused with the file named."""
    from aimcsim.devices import make_device
    from aimcsim.experiments.cli import analog_config_from_args
    from aimcsim.tiles.config import AnalogConfig
    assert analog_config_from_args(None, None, None).to_dict() == AnalogConfig().to_dict()
    column = analog_config_from_args(None, None, "column")
    assert column.drift_compensation.granularity == "column"
    custom = AnalogConfig().replace(**{"periphery.out_noise": 0.02, "mapping.rows": 256})
    path = tmp_path / "analog.json"
    path.write_text(json.dumps(custom.to_dict()))
    loaded = analog_config_from_args(None, str(path), "column")
    assert loaded.periphery.out_noise == 0.02 and loaded.mapping.rows == 256
    assert loaded.drift_compensation.granularity == "column"
    with pytest.raises(SystemExit, match="give one"):
        analog_config_from_args(make_device("rram"), str(path), None)
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"periphery": {"out_noise": 0.0}}))
    rram = analog_config_from_args(make_device("rram"), str(partial), None)
    assert type(rram.device).__name__ == type(make_device("rram")).__name__
    assert rram.periphery.out_noise == 0.0 and rram.periphery.inp_bits == 7
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"periphery": {"out_noise": 0.0}, "wires": 1}))
    with pytest.raises(SystemExit, match="bad.json: unknown AnalogConfig keys"):
        analog_config_from_args(None, str(bad), None)
    with pytest.raises(SystemExit, match="nowhere.json"):
        analog_config_from_args(None, str(tmp_path / "nowhere.json"), None)
    # GDC on / off comes from --gdc: a file that turns it off is refused unless --gdc agrees
    off = tmp_path / "gdc_off.json"
    off.write_text(json.dumps({"drift_compensation": {"enabled": False}}))
    with pytest.raises(SystemExit, match="--gdc decides"):
        analog_config_from_args(None, str(off), None, (True, False))
    assert not analog_config_from_args(None, str(off), None, (False,)).drift_compensation.enabled
    from aimcsim.__main__ import main
    with pytest.raises(SystemExit):
        main(["drift", "--model", "f1net", "--fp32", "x.pt", "--gdc-granularity", "row",
              "--out", str(tmp_path / "o")])


def test_adabs_calibration_images_are_augmented_by_default_and_seeded():
    """AdaBS calibration batches: the first N images, channels-last, with the training
    augmentation (crop + flip) drawn from the seed unless ``images="plain"``."""
    from aimcsim.data import calibration_batches
    train, _ = tiny_data()
    plain = calibration_batches(train, 100, 64, "plain")
    augmented = calibration_batches(train, 100, 64)
    assert [x.shape[0] for x in plain] == [x.shape[0] for x in augmented] == [64, 36]
    assert all(x.is_contiguous(memory_format=torch.channels_last) for x in augmented)
    plain_x, aug_x = torch.cat(plain), torch.cat(augmented)
    assert not torch.equal(plain_x, aug_x)
    # the same seed draws the same crops and flips; another seed others
    assert torch.equal(torch.cat(calibration_batches(train, 100, 64, seed=0)), aug_x)
    assert not torch.equal(torch.cat(calibration_batches(train, 100, 64, seed=1)), aug_x)
    for bad in (0, len(train) + 1, 2.5):
        with pytest.raises(ValueError, match="count"):
            calibration_batches(train, bad, 64)
    with pytest.raises(ValueError, match="images"):
        calibration_batches(train, 10, 64, "cropped")


def test_an_adabs_study_of_plain_calibration_images_resumes_only_as_plain(trained, tmp_path):
    """Studies stored before ``adabs_images`` existed calibrated on plain images: resumed as
    plain they continue, with the new default (augmented) they are refused; a study without
    AdaBS resumes whatever the field says."""
    root, test = trained
    train, _ = tiny_data()
    small = dict(model="f1net", fp32_weights=str(root / "fp32" / "model.pt"), times=(1.0,),
                 repetitions=1, gdc=(True,), limit=60, batch_size=60, series=("direct",))
    out = tmp_path / "adabs"
    run_drift_study(DriftStudyConfig(adabs=50, adabs_images="plain", **small), test, out,
                    train=train, progress=False)
    stored = json.loads((out / "config.json").read_text())
    assert stored["adabs_images"] == "plain"
    del stored["adabs_images"]
    (out / "config.json").write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="adabs_images changed"):
        run_drift_study(DriftStudyConfig(adabs=50, **small), test, out, train=train,
                        progress=False)
    again = run_drift_study(DriftStudyConfig(adabs=50, adabs_images="plain", **small), test,
                            out, train=train, progress=False)
    assert len(again["rows"]) == 1
    no_adabs = tmp_path / "plain_study"
    run_drift_study(DriftStudyConfig(**small), test, no_adabs, progress=False)
    run_drift_study(DriftStudyConfig(adabs_images="plain", **small), test, no_adabs,
                    progress=False)
    with pytest.raises(ValueError, match="adabs_images"):
        DriftStudyConfig(adabs=50, adabs_images="cropped", **small)


def test_compare_takes_one_series_per_run_for_the_f1_figure(tmp_path):
    """The F1 figure puts the direct mapping of one study beside hardware-aware studies:
    ``--series direct,hwa`` picks each run's series; a wrong count or name is refused."""
    from aimcsim.__main__ import main
    times = (1e-5, 1e5)
    folder = tmp_path / "study"
    folder.mkdir()
    rows = [{"series": s, "gdc": True, "t": t, "n": 2, "mean": m, "std": 0.01}
            for s, means in (("direct", (0.85, 0.80)), ("hwa", (0.90, 0.89)))
            for t, m in zip(times, means)]
    (folder / "results.json").write_text(json.dumps({"model": "f1net", "fp32": 0.91,
                                                     "rows": rows}))
    table, got = compare_table([folder, folder], ["direct", "hwa"], times=times,
                               labels=["direct", "custom"])
    assert "| direct | 91.00 | 85.00 ± 1.00 [0.71] | 80.00 ± 1.00 [0.71] | 5.00 |" in table
    assert "| custom | 91.00 | 90.00 ± 1.00 [0.71] | 89.00 ± 1.00 [0.71] | 1.00 |" in table
    assert [r["series"] for r in got] == ["direct", "hwa"]
    assert "published" not in table and "--series hwa" not in table
    main(["compare", str(folder), str(folder), "--series", "direct,hwa", "--labels",
          "direct,custom", "--times", "1e-5,1e5", "--out", str(tmp_path / "f1")])
    md = (tmp_path / "f1" / "compare_mixed_gdc_on.md").read_text()
    assert md.startswith("Accuracy after programming (series per row, GDC on)")
    assert (tmp_path / "f1" / "compare_mixed_gdc_on.png").stat().st_size > 0
    with pytest.raises(ValueError, match="2 series for 1 runs"):
        compare_table([folder], ["direct", "hwa"])
    with pytest.raises(SystemExit, match="series must be one of"):
        main(["compare", str(folder), str(folder), "--series", "direct,fp32", "--out",
              str(tmp_path / "bad")])
