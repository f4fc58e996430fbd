"""Every measured point is named by its seeds alone: a drift study run in another order, split
over processes, or killed with SIGKILL and resumed gives the same points file, bit for bit."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from aimcsim.data import CifarSplit, default_root
from aimcsim.experiments.drift import DriftStudyConfig, run_drift_study
from aimcsim.models import build_model

REPO = Path(__file__).resolve().parents[1]


def points(folder: Path) -> list[str]:
    return sorted(line for line in (folder / "points.jsonl").read_text().splitlines() if line)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "f1net.pt"
    torch.save(build_model("f1net").state_dict(), path)
    return path


def random_test_set() -> CifarSplit:
    rng = np.random.default_rng(0)
    return CifarSplit(rng.integers(0, 256, (40, 3, 32, 32), dtype=np.uint8),
                      rng.integers(0, 10, 40))


def test_order_and_split_do_not_change_any_point(weights, tmp_path):
    test = random_test_set()
    common = dict(model="f1net", fp32_weights=str(weights), repetitions=2, gdc=(True,),
                  batch_size=20)
    run_drift_study(DriftStudyConfig(times=(1.0, 3600.0, 1e5), **common), test,
                    tmp_path / "a", progress=False)
    run_drift_study(DriftStudyConfig(times=(1e5, 1.0), **common), test, tmp_path / "b",
                    progress=False)
    run_drift_study(DriftStudyConfig(times=(3600.0,), **common), test, tmp_path / "b",
                    progress=False)
    assert points(tmp_path / "a") == points(tmp_path / "b")


@pytest.mark.skipif(default_root() is None, reason="needs CIFAR-10 (the drift command reads it)")
def test_a_study_killed_with_sigkill_resumes_to_the_same_points(weights, tmp_path):
    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "aimcsim", "drift", "--model", "f1net", "--fp32",
                str(weights), "--times", "1,60,3600,86400,1e6", "--reps", "2", "--gdc", "on",
                "--series", "direct", "--limit", "60", "--batch-size", "30", "--threads", "1",
                "--out", str(out)]

    env = dict(os.environ, PYTHONPATH=str(REPO))
    subprocess.run(command(tmp_path / "whole"), check=True, capture_output=True, env=env,
                   cwd=REPO, timeout=600)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, cwd=REPO)
    deadline = time.time() + 300
    file = killed / "points.jsonl"
    while time.time() < deadline:
        if file.exists() and len(file.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len([line for line in file.read_text().splitlines() if line.strip()])
    assert 3 <= done < 10, "the kill must land mid-study"
    subprocess.run(command(killed), check=True, capture_output=True, env=env, cwd=REPO,
                   timeout=600)
    whole, resumed = points(tmp_path / "whole"), points(killed)
    assert len(whole) == 10 and resumed == whole
    assert all(json.loads(line)["series"] == "direct" for line in whole)


def test_missing_points_are_each_point_once_in_measuring_order(weights):
    """FP32 first, then (series, GDC, programming, time); a time repeated (to 6 digits) and
    the points already measured are left out."""
    from aimcsim.experiments.drift import missing_points
    config = DriftStudyConfig(model="f1net", fp32_weights=str(weights), repetitions=2,
                              gdc=(True, False), times=(1.0, 3600.0, 1.0000001))
    todo = missing_points(config, {"direct|1|0|1": {}})
    assert todo[0] == ("fp32", False, 0, 0.0) and len(todo) == 1 + 2 * 2 * 2 - 1
    assert todo[1:4] == [("direct", True, 0, 3600.0), ("direct", True, 1, 1.0),
                         ("direct", True, 1, 3600.0)]
    assert missing_points(config, {})[1:3] == [("direct", True, 0, 1.0),
                                               ("direct", True, 0, 3600.0)]
