"""The drift study on Dask distributed: a two-worker local cluster writes the same points file
as the single-process loop, bit for bit up to line order, even when a worker is killed with
SIGKILL mid-study (the scheduler runs its point again; nothing is lost or written twice)."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("distributed")

from aimcsim.data import CifarSplit, iterate_batches  # noqa: E402
from aimcsim.experiments.drift import DriftStudyConfig, run_drift_study  # noqa: E402
from aimcsim.models import build_model  # noqa: E402

N_POINTS = 1 + 2 * 3  # FP32 + 2 programmings x 3 times, GDC on


def points(folder: Path) -> list[str]:
    return sorted(line for line in (folder / "points.jsonl").read_text().splitlines() if line)


@pytest.fixture(scope="module")
def one_thread():
    """Single-threaded torch and Numba in this process too (the machine is shared)."""
    import numba
    before = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(before[0])
    numba.set_num_threads(before[1])


@pytest.fixture(scope="module")
def study(tmp_path_factory, one_thread) -> tuple[DriftStudyConfig, CifarSplit, Path]:
    """A random f1net, 40 random one-colour-plus-noise images labelled with its own FP32
    answers (so analog noise flips some of them and the accuracies tell points apart), AdaBS
    over 20 of them after every read, and the single-process study's folder."""
    root = tmp_path_factory.mktemp("dist")
    torch.manual_seed(0)
    net = build_model("f1net").eval()
    rng = np.random.default_rng(0)
    images = np.clip(rng.integers(0, 256, (40, 3, 1, 1)) + rng.integers(-40, 41, (40, 3, 32, 32)),
                     0, 255).astype(np.uint8)
    split = CifarSplit(images, np.zeros(40, dtype=np.int64))
    with torch.no_grad():
        net.fc.bias.zero_()
        logits = torch.cat([net(x) for x, _ in iterate_batches(split, 40)])
        net.fc.bias.copy_(-logits.mean(0))  # centred logits: answers spread over classes
        labels = (logits - logits.mean(0)).argmax(1).numpy().astype(np.int64)
    torch.save(net.state_dict(), root / "f1net.pt")
    config = DriftStudyConfig(model="f1net", fp32_weights=str(root / "f1net.pt"),
                              times=(1.0, 3600.0, 1e5), repetitions=2, gdc=(True,),
                              batch_size=20, adabs=20)
    test = CifarSplit(images, labels)
    run_drift_study(config, test, root / "single", progress=False, train=test)
    return config, test, root / "single"


@pytest.fixture(scope="module")
def client(one_thread):
    """A local cluster of two single-threaded worker processes."""
    from aimcsim.experiments.distributed import dask_client
    with dask_client(workers=2) as local:
        yield local


def test_two_workers_write_the_single_process_points(study, client, tmp_path):
    config, test, single = study
    whole = points(single)
    accuracies = {json.loads(line)["accuracy"] for line in whole}
    assert len(whole) == N_POINTS and len(accuracies) > 2, "points must tell runs apart"
    results = run_drift_study(config, test, tmp_path / "dask", progress=False, train=test,
                              client=client)
    assert points(tmp_path / "dask") == whole
    assert results["rows"] == json.loads((single / "results.json").read_text())["rows"]


def test_a_worker_killed_mid_study_loses_only_its_point(study, client, tmp_path):
    config, test, single = study
    out = tmp_path / "killed"
    address, victim = max(client.run(os.getpid).items(), key=lambda item: item[1])
    seen: list[tuple[int, int]] = []  # (points written, points the victim held) at the kill

    def kill_after_two_points() -> None:
        file, deadline = out / "points.jsonl", time.time() + 120
        while time.time() < deadline:
            if file.exists() and len(file.read_text().splitlines()) >= 2:
                held = len(client.processing([address]).get(address, ()))
                seen.append((len(file.read_text().splitlines()), held))
                os.kill(victim, signal.SIGKILL)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_after_two_points)
    killer.start()
    run_drift_study(config, test, out, progress=False, train=test, client=client)
    killer.join()
    assert seen and seen[0][0] < N_POINTS and seen[0][1] >= 1, "the kill must land mid-point"
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.run(os.getpid).values(), "the killed worker was replaced"
    lines = (out / "points.jsonl").read_text().splitlines()
    assert len(lines) == N_POINTS and sorted(lines) == points(single)


def test_cluster_options_are_checked(study, tmp_path):
    config, test, _ = study
    with pytest.raises(ValueError, match="workers must be"):
        run_drift_study(config, test, tmp_path / "x", progress=False, workers=-1)
    with pytest.raises(ValueError, match="at most one of"):
        run_drift_study(config, test, tmp_path / "x", progress=False, workers=2,
                        scheduler="tcp://127.0.0.1:8786")
    from aimcsim.experiments.distributed import dask_client, measure_on_dask
    with pytest.raises(ValueError, match="exactly one of"):
        with dask_client():
            pass
    with pytest.raises(ValueError, match="no base network"):
        measure_on_dask(config, [("hwa", True, 0, 1.0)], {}, test, None, print, workers=1)


def test_drift_command_passes_workers_and_scheduler(study, tmp_path, monkeypatch):
    """--workers and --scheduler reach run_drift_study (0 / None: in process, as before)."""
    import aimcsim.data
    import aimcsim.experiments.drift as drift
    from aimcsim.__main__ import main
    config, test, _ = study
    seen = []

    def fake_study(config, test, out, train=None, workers=0, scheduler=None):
        seen.append((workers, scheduler))
        raise SystemExit(0)

    monkeypatch.setattr(aimcsim.data, "load_cifar10", lambda root, train: test)
    monkeypatch.setattr(drift, "run_drift_study", fake_study)
    base = ["drift", "--model", "f1net", "--fp32", config.fp32_weights, "--out",
            str(tmp_path / "cli")]
    for extra in ([], ["--workers", "2"], ["--scheduler", "tcp://10.0.0.1:8786"]):
        with pytest.raises(SystemExit):
            main(base + extra)
    assert seen == [(0, None), (2, None), (0, "tcp://10.0.0.1:8786")]
    with pytest.raises(SystemExit):
        main(base + ["--workers", "-1"])
    assert len(seen) == 3


def test_without_distributed_the_error_says_what_to_install(study, tmp_path, monkeypatch):
    """dask is imported only when asked for; without it the message names the extra."""
    import sys
    config, test, _ = study
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ImportError, match=r"aimcsim\[dist\]"):
        run_drift_study(config, test, tmp_path / "x", progress=False, train=test, workers=2)
