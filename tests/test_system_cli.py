"""The ``system`` command: tables on stdout, CSV/JSON/PNG files, clear errors."""
from __future__ import annotations

import argparse
import json

import pytest

from aimcsim.system import SystemConfig, analyse, f4_network, text_report
from aimcsim.system.cli import add_system_parser


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="aimcsim")
    add_system_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["system", *argv])
    args.func(args)


def test_f3net_writes_tables_and_pictures(tmp_path, capsys):
    run(["--model", "f3net", "--out", str(tmp_path), "--batches", "4"])
    text = capsys.readouterr().out
    for heading in ("-- mapping", "-- memory plan", "-- pipeline", "-- energy per sample"):
        assert heading in text
    names = {p.name for p in tmp_path.iterdir()}
    assert {"summary.json", "report.txt", "stages.csv", "mapping.csv", "memory.csv",
            "pipeline.csv", "energy.csv", "memory.png", "pipeline.png"} <= names
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["tiles_used"] == 2 and summary["memory"]["activation_peak_bytes"] == 12288
    assert (tmp_path / "memory.png").read_bytes()[:4] == b"\x89PNG"
    rows = (tmp_path / "memory.csv").read_text().splitlines()
    assert rows[0].startswith("region,label") and len(rows) == 1 + 8


def test_no_fit_is_a_clear_error_and_auto_chips_split(capsys):
    with pytest.raises(SystemExit, match="needs 60 tiles"):
        run(["--model", "resnet32", "--tiles-per-chip", "16", "--no-plots"])
    run(["--model", "resnet32", "--tiles-per-chip", "16", "--chips", "auto", "--no-plots"])
    assert "60 of 64 tiles on 4 chip(s)" in capsys.readouterr().out


def test_parser_rejects_bad_values():
    for argv in (["--model", "vgg"], ["--model", "f3net", "--chips", "0"],
                 ["--model", "f3net", "--input-shape", "3,a"]):
        with pytest.raises(SystemExit):
            run(argv)


def test_analyse_api_summary():
    analysis = analyse(f4_network(), config=SystemConfig(batch=2, batches=3, balance=True),
                       name="f4net")
    summary = analysis.summary()
    assert summary["layers"] == 28 and summary["analog_layers"] == 15
    assert summary["pipeline"]["batch"] == 2 and summary["replicas"]
    assert summary["effective_tops"] > 0 and summary["power_w"] > 0
    assert "bottleneck" in text_report(analysis)
    with pytest.raises(ValueError, match="batch"):
        SystemConfig(batch=0)
