"""The architecture-trait sweep (issue 22, point 4): which trait of T500 buys or costs
robustness on the analog hardware.

Every network of the sweep (``t500``, its one-trait variants of
:mod:`aimcsim.models.traits`, and ``resnet32`` as the far end) goes through the same four
stages, each resumable and skipped once its output exists:

1. **FP32 training** with one identical short schedule (:meth:`TraitSweepConfig.fp32_training`,
   default 10 epochs, one-cycle, peak lr 0.1): :func:`aimcsim.training.train_classifier`.
2. **Hardware-aware fine-tuning** from those weights with the device model in the loop, the
   recipe of ``resnet32_hwa_dev`` (clip 2.5 sigma, cosine lr 0.01; default 2 epochs):
   :func:`aimcsim.training.hwa.hardware_aware_finetune`.
3. **Drift measurement** of the fine-tuned network, GDC on, at 1 s, 1 day and 1 month (default
   3 programmings, full test set), with the FP32 point of stage 1's weights:
   :func:`aimcsim.experiments.drift.run_drift_study`, one line per point in ``points.jsonl``.
4. **The same with AdaBS** (:attr:`TraitSweepConfig.adabs` augmented training images re-measure
   the batch norms after every read; default 2,000, 0 skips the stage), in
   ``points/<network>/adabs/``: F2 showed that AdaBS can change which network is the more
   robust, so the sweep answers with and without it.

Every network uses the same seed (``TraitSweepConfig.seed``): the same initialisation seed,
data order and augmentation in training, and the same programming and read seeds in the
measurement, so repetition ``r`` of one network is paired with repetition ``r`` of another.

Layout (``root`` holds the weights, ``points`` the measurements; they may be one folder)::

    root/sweep.json                 the recipe; a rerun with another recipe is refused
    root/<network>/fp32/            stage 1: checkpoint.pt every epoch (deleted once model.pt,
                                    at the end, exists)
    root/<network>/hwa/             stage 2: the same
    root/<network>/sweep.lock       held (flock) by the process working on the network
    points/sweep.json               a copy of the recipe, beside the results
    points/<network>/points.jsonl   stage 3 (with config.json, results.json, summary.csv)
    points/<network>/adabs/         stage 4, the same files
    points/<network>/training.json  both trainings in short: accuracy and seconds per epoch

Networks are independent: processes (or machines sharing the folders) may run disjoint lists
with ``--networks``, or the same list, since a network held by one process is skipped by the
others (``--workers N`` runs N single-threaded processes on a local Dask cluster,
``--scheduler`` uses a running one). The table and plot come from the points files alone
(:mod:`aimcsim.experiments.trait_report`).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterator

from aimcsim.data.cifar10 import CifarSplit
from aimcsim.experiments.drift import MONTH
from aimcsim.threads import set_compute_threads
from aimcsim.tiles.config import STORED_BEFORE
from aimcsim.validation import check_float, check_int, check_time

#: The sweep's networks in table order: the reference, the one-trait steps, the far end.
DEFAULT_NETWORKS: tuple[str, ...] = ("t500", "t500_kernel3", "t500_branches1", "t500_shortcutA",
                                     "t500_basic", "t500_width", "t500_depth", "resnet32")
#: Times of the measurement, seconds after programming: 1 s, 1 day, 1 month.
SWEEP_TIMES: tuple[float, ...] = (1.0, 86400.0, MONTH)
#: Recipe fields that a rerun on the same folders may change: the drift study adds the
#: missing points (more programmings, other times) without measuring the others again, and
#: stage 4 only adds a measurement (a sweep recorded before it existed goes on with it; its
#: study folder refuses points of another AdaBS image count).
EXTENDABLE = ("times", "repetitions", "adabs")
#: Recipe fields added since sweeps were first recorded, with the value a recipe recorded
#: without them was run with.
RECORDED_BEFORE = {"gemm_precision": STORED_BEFORE["gemm_precision"]}
#: Subfolder of a network's points folder holding stage 4 (AdaBS on).
ADABS_FOLDER = "adabs"
LOCK_NAME = "sweep.lock"
RECORD_NAME = "sweep.json"


@dataclass
class TraitSweepConfig:
    """The recipe every network of the sweep goes through (one for all networks).

    Attributes:
        epochs: FP32 training epochs (one-cycle schedule, as ``python -m aimcsim train``).
        lr: FP32 peak learning rate.
        batch_size: images per SGD step (both trainings).
        weight_decay: L2 penalty on the weight tensors (both trainings).
        hwa_epochs: hardware-aware fine-tuning epochs (cosine schedule).
        hwa_lr: initial learning rate of the fine-tuning.
        clip_sigma: weight clipping of the fine-tuning, in standard deviations of each layer.
        t_min, t_max: range of the log-uniform read times of the device model in the
            fine-tuning loop, seconds.
        device: the device model (``make_device`` name) of fine-tuning and measurement.
        times: read times of the measurement, seconds after programming.
        repetitions: programmings per time (GDC on).
        seed: seed of every network's initialisation, data order, programming and reads.
        train_limit: train on the first N training images only (None: all 50,000).
        test_limit: test on the first N test images only (None: all 10,000).
        adabs: AdaBS calibration images of stage 4 (the first N training images, augmented
            as in training; at most ``train_limit``); 0 skips stage 4.
        gemm_precision: ``AnalogConfig.gemm_precision`` of the measurements (stages 3 and 4;
            the fine-tuning computes in float32 either way). A recipe recorded before the
            field existed ran with float32 (:data:`RECORDED_BEFORE`).
    """

    epochs: int = 10
    lr: float = 0.1
    batch_size: int = 128
    weight_decay: float = 5e-4
    hwa_epochs: int = 2
    hwa_lr: float = 0.01
    clip_sigma: float = 2.5
    t_min: float = 1.0
    t_max: float = 1e6
    device: str = "pcm"
    times: tuple[float, ...] = SWEEP_TIMES
    repetitions: int = 3
    seed: int = 0
    train_limit: int | None = None
    test_limit: int | None = None
    adabs: int = 2000
    gemm_precision: str = "bfloat16"

    def __post_init__(self) -> None:
        self.clip_sigma = check_float(self.clip_sigma, "clip_sigma", 0, 1000, low_open=True)
        self.repetitions = check_int(self.repetitions, "repetitions", 1, 1 << 16)
        self.train_limit = check_int(self.train_limit, "train_limit", 1, allow_none=True)
        self.test_limit = check_int(self.test_limit, "test_limit", 1, allow_none=True)
        self.adabs = check_int(self.adabs, "adabs", 0, 50_000)
        if self.train_limit is not None and self.adabs > self.train_limit:
            raise ValueError(f"adabs ({self.adabs} calibration images) exceeds train_limit "
                             f"({self.train_limit} training images); use at most the limit, "
                             f"or 0 to skip stage 4")
        if isinstance(self.times, (str, bytes)) or not self.times:
            raise ValueError(f"times must be a non-empty list of seconds, got {self.times!r}")
        device = self.analog_config().device  # an unknown name raises ValueError here
        self.times = tuple(device.check_read_time(check_time(t, "times"), "times")
                           for t in self.times)
        # the training settings are validated by the configs they build
        self.fp32_training()
        self.hwa_training()
        self.hardware_aware()

    def fp32_training(self, threads: int = 0):
        """The :class:`~aimcsim.training.TrainConfig` of stage 1 (one-cycle)."""
        from aimcsim.training import TrainConfig
        return TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                           weight_decay=self.weight_decay, schedule="onecycle",
                           seed=self.seed, threads=threads)

    def hwa_training(self, threads: int = 0):
        """The :class:`~aimcsim.training.TrainConfig` of stage 2 (cosine)."""
        from aimcsim.training import TrainConfig
        return TrainConfig(epochs=self.hwa_epochs, lr=self.hwa_lr, batch_size=self.batch_size,
                           weight_decay=self.weight_decay, schedule="cosine", seed=self.seed,
                           threads=threads)

    def hardware_aware(self):
        """The :class:`~aimcsim.nn.HardwareAwareConfig` of stage 2: the device model in the
        loop, read at a log-uniform time in [t_min, t_max]."""
        from aimcsim.nn import HardwareAwareConfig
        return HardwareAwareConfig(noise_model="device", clip_sigma=self.clip_sigma,
                                   t_min=self.t_min, t_max=self.t_max)

    def analog_config(self):
        """The :class:`~aimcsim.tiles.config.AnalogConfig` of stages 2 and 3: the defaults
        with :attr:`device`."""
        from aimcsim.devices import make_device
        from aimcsim.tiles.config import AnalogConfig
        return AnalogConfig(device=make_device(self.device), gemm_precision=self.gemm_precision)

    def to_dict(self) -> dict:
        """JSON-ready form (times as a list)."""
        d = asdict(self)
        d["times"] = list(self.times)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "TraitSweepConfig":
        """Inverse of :meth:`to_dict`; unknown keys or invalid values raise ValueError."""
        if not isinstance(data, dict):
            raise ValueError(f"a TraitSweepConfig dict is needed, got {type(data).__name__}")
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown TraitSweepConfig keys {sorted(unknown)}")
        data = dict(data)
        if "times" in data and isinstance(data["times"], list):
            data["times"] = tuple(data["times"])
        return cls(**data)


@dataclass(frozen=True)
class NetworkFolders:
    """Where one network's stages write (see the module docstring)."""

    weights: Path
    fp32: Path
    hwa: Path
    study: Path


def network_folders(name: str, root: str | os.PathLike,
                    points: str | os.PathLike | None = None) -> NetworkFolders:
    """The folders of network ``name`` under the weights ``root`` and the ``points`` folder
    (default: ``root``)."""
    weights = Path(root) / name
    return NetworkFolders(weights=weights, fp32=weights / "fp32", hwa=weights / "hwa",
                          study=Path(points if points is not None else root) / name)


class NetworkBusyError(RuntimeError):
    """Another process holds the network's lock."""


@contextlib.contextmanager
def network_lock(folder: Path) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``folder/sweep.lock`` (released when the process exits,
    also when it is killed), or raise :class:`NetworkBusyError` at once if another process
    holds it. The file names the holder (host and process id)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        raise NetworkBusyError(f"{path} is held by another process ({holder})") from None
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"{socket.gethostname()} pid {os.getpid()}\n")
        fh.flush()
        yield path
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def recorded_recipe(root: str | os.PathLike) -> dict | None:
    """The recipe recorded in ``root/sweep.json`` (fields added since filled in with
    :data:`RECORDED_BEFORE`), or None when there is none."""
    record = Path(root) / RECORD_NAME
    if not record.is_file():
        return None
    return {**RECORDED_BEFORE, **json.loads(record.read_text())}


def record_recipe(config: TraitSweepConfig, root: str | os.PathLike,
                  points: str | os.PathLike | None = None) -> None:
    """Write the recipe to ``root/sweep.json`` (and ``points/sweep.json``), or refuse with
    ValueError when the folder holds a sweep with another recipe (only :data:`EXTENDABLE`
    fields may change: finished stages would otherwise be skipped under the new recipe)."""
    record = Path(root) / RECORD_NAME
    new = config.to_dict()
    old = recorded_recipe(root)
    if old is not None:
        changed = {k: (old.get(k), v) for k, v in new.items()
                   if k not in EXTENDABLE and old.get(k) != v}
        if changed:
            listed = ", ".join(f"{k}={a!r} (now {b!r})" for k, (a, b) in changed.items())
            raise ValueError(f"{root} holds a sweep with another recipe: {listed}. Use the "
                             f"recipe it was started with, or a new --root and --points.")
    text = json.dumps(new, indent=1) + "\n"
    _atomic_write(record, text)
    if points is not None and Path(points).resolve() != Path(root).resolve():
        _atomic_write(Path(points) / RECORD_NAME, text)


class _Splits:
    """The training split (cut to ``train_limit``) and the full test split, each read from
    disk on first use (a network whose trainings are done needs no training images)."""

    def __init__(self, config: TraitSweepConfig, data: str | os.PathLike | None,
                 train: CifarSplit | None = None, test: CifarSplit | None = None) -> None:
        self._config, self._data = config, data
        self._train, self._test = train, test

    @property
    def train(self) -> CifarSplit:
        if self._train is None:
            from aimcsim.data import load_cifar10
            self._train = load_cifar10(self._data, train=True, limit=self._config.train_limit)
        return self._train

    @property
    def test(self) -> CifarSplit:
        if self._test is None:
            from aimcsim.data import load_cifar10
            self._test = load_cifar10(self._data, train=False)
        return self._test

    def test_cut(self) -> CifarSplit:
        """The test split cut to ``test_limit`` (what both trainings report each epoch)."""
        limit = self._config.test_limit
        test = self.test
        return test if limit is None else CifarSplit(test.images[:limit], test.labels[:limit])


def drop_training_state(folder: Path) -> None:
    """Delete a finished stage's ``checkpoint.pt`` (weights, optimizer moments, scheduler:
    what a resume needs, 2-4.5 MB per network). Once ``model.pt`` exists the stage is
    skipped and nothing reads it; ``history.json`` and ``model.pt`` stay."""
    if (folder / "model.pt").is_file():
        (folder / "checkpoint.pt").unlink(missing_ok=True)


def _train_fp32(name: str, config: TraitSweepConfig, folders: NetworkFolders,
                splits: _Splits, threads: int, progress: bool) -> str:
    """Stage 1; returns "done" or "skipped" (``model.pt`` exists)."""
    if (folders.fp32 / "model.pt").is_file():
        drop_training_state(folders.fp32)  # (left by a sweep before this rule)
        return "skipped"
    import torch
    from aimcsim.models import build_model
    from aimcsim.training import train_classifier
    torch.manual_seed(config.seed)  # the initialisation (a resumed run loads its checkpoint)
    train_classifier(build_model(name), splits.train, splits.test_cut(),
                     config.fp32_training(threads), folders.fp32, progress=progress)
    drop_training_state(folders.fp32)
    return "done"


def _finetune(name: str, config: TraitSweepConfig, folders: NetworkFolders, splits: _Splits,
              threads: int, progress: bool) -> str:
    """Stage 2 from stage 1's ``model.pt``; returns "done" or "skipped"."""
    if (folders.hwa / "model.pt").is_file():
        drop_training_state(folders.hwa)  # (left by a sweep before this rule)
        return "skipped"
    import torch
    from aimcsim.models import build_model
    from aimcsim.training.hwa import hardware_aware_finetune, load_weights
    torch.manual_seed(config.seed)  # the first epoch's noise draws (a resume restores them)
    model = load_weights(build_model(name), folders.fp32 / "model.pt")
    hardware_aware_finetune(model, splits.train, splits.test_cut(),
                            config.hwa_training(threads), folders.hwa,
                            config.hardware_aware(), analog_config=config.analog_config(),
                            progress=progress)
    drop_training_state(folders.hwa)
    return "done"


def drift_study_config(name: str, config: TraitSweepConfig, folders: NetworkFolders,
                       adabs: bool = False):
    """The :class:`~aimcsim.experiments.drift.DriftStudyConfig` of stage 3 (the FP32 point and
    the hardware-aware series, GDC on), or with ``adabs`` of stage 4 (the same with
    ``config.adabs`` augmented calibration images)."""
    from aimcsim.experiments.drift import DriftStudyConfig
    return DriftStudyConfig(model=name, fp32_weights=str(folders.fp32 / "model.pt"),
                            hwa_weights=str(folders.hwa / "model.pt"), times=config.times,
                            repetitions=config.repetitions, gdc=(True,), seed=config.seed,
                            limit=config.test_limit, series=("fp32", "hwa"),
                            adabs=config.adabs if adabs else 0, adabs_images="augmented",
                            analog=config.analog_config())


def _measure(name: str, config: TraitSweepConfig, folders: NetworkFolders, splits: _Splits,
             progress: bool, adabs: bool = False) -> str:
    """Stage 3, or with ``adabs`` stage 4 (the same study with AdaBS on, in
    :data:`ADABS_FOLDER`); returns "done", "skipped" (every point already in
    ``points.jsonl``) or "off" (stage 4 with ``config.adabs`` 0)."""
    from aimcsim.experiments.drift import missing_points, read_points, run_drift_study
    if adabs and not config.adabs:
        return "off"
    study = drift_study_config(name, config, folders, adabs)
    out = folders.study / ADABS_FOLDER if adabs else folders.study
    if not missing_points(study, read_points(out / "points.jsonl")):
        return "skipped"
    run_drift_study(study, splits.test, out, progress=progress,
                    train=splits.train if adabs else None)
    return "done"


def _history_in_short(folder: Path) -> dict | None:
    path = folder / "history.json"
    if not path.is_file():
        return None
    history = json.loads(path.read_text())
    return {"finished": (folder / "model.pt").is_file(), "test_acc": history.get("test_acc"),
            "epochs": [{k: r[k] for k in ("epoch", "test_acc", "seconds") if k in r}
                       for r in history.get("epochs", [])],
            "config": history.get("config")}


def write_training_summary(name: str, folders: NetworkFolders) -> Path:
    """``points/<network>/training.json``: the parameter count and both trainings' test
    accuracy and seconds per epoch (from their ``history.json``)."""
    from aimcsim.models import build_model, count_analog_weights, count_parameters
    model = build_model(name)
    summary = {"network": name, "parameters": count_parameters(model),
               "analog_weights": count_analog_weights(model),
               "fp32": _history_in_short(folders.fp32), "hwa": _history_in_short(folders.hwa)}
    path = folders.study / "training.json"
    _atomic_write(path, json.dumps(summary, indent=1) + "\n")
    return path


def run_network(name: str, config: TraitSweepConfig, root: str | os.PathLike,
                points: str | os.PathLike | None = None, data: str | os.PathLike | None = None,
                threads: int = 0, progress: bool = True, train: CifarSplit | None = None,
                test: CifarSplit | None = None) -> dict:
    """Run the four stages of network ``name`` (each skipped when its output exists, resumed
    from its checkpoint or points when cut short) and return its status: ``{"network",
    "fp32", "hwa", "drift", "adabs", "seconds"}`` with each stage "done" or "skipped" (stage 4
    "off" without AdaBS), or ``{"network", "busy"}`` when another process holds the network.

    ``data`` is the CIFAR-10 folder (None: the default locations); ``train`` and ``test``
    replace what it would load (``train`` already cut to ``config.train_limit``, ``test``
    the whole test split)."""
    from aimcsim.models import MODEL_NAMES
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown network {name!r}; choose among {sorted(MODEL_NAMES)}")
    folders = network_folders(name, root, points)
    started = time.time()
    try:
        with network_lock(folders.weights):
            set_compute_threads(threads)
            splits = _Splits(config, data, train, test)
            status = {"network": name}
            status["fp32"] = _train_fp32(name, config, folders, splits, threads, progress)
            write_training_summary(name, folders)
            status["hwa"] = _finetune(name, config, folders, splits, threads, progress)
            write_training_summary(name, folders)
            status["drift"] = _measure(name, config, folders, splits, progress)
            status["adabs"] = _measure(name, config, folders, splits, progress, adabs=True)
    except NetworkBusyError as busy:
        return {"network": name, "busy": str(busy)}
    status["seconds"] = time.time() - started
    return status


def _run_network_task(name: str, config: TraitSweepConfig, root: str, points: str | None,
                      data: str | None) -> dict:
    """One network as a Dask task (single-threaded, no progress bars)."""
    return run_network(name, config, root, points, data, threads=0, progress=False)


def check_networks(networks: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The requested networks, each a zoo name, none twice."""
    from aimcsim.models import MODEL_NAMES
    networks = tuple(networks)
    if not networks:
        raise ValueError("no networks given")
    unknown = [n for n in networks if n not in MODEL_NAMES]
    if unknown:
        raise ValueError(f"unknown networks {unknown}; the sweep's are {list(DEFAULT_NETWORKS)}"
                         f" (any zoo name works: {sorted(MODEL_NAMES)})")
    if len(set(networks)) != len(networks):
        raise ValueError(f"a network is listed twice: {list(networks)}")
    return networks


def run_sweep(config: TraitSweepConfig, root: str | os.PathLike,
              points: str | os.PathLike | None = None,
              networks: tuple[str, ...] = DEFAULT_NETWORKS, data: str | os.PathLike | None = None,
              threads: int = 0, workers: int = 0, scheduler: str | None = None,
              progress: bool = True, train: CifarSplit | None = None,
              test: CifarSplit | None = None) -> list[dict]:
    """Record the recipe (:func:`record_recipe`), then run every network (:func:`run_network`)
    in this process one after the other, or as one Dask task each on a local cluster of
    ``workers`` single-threaded processes or on the running ``scheduler`` (the folders and
    ``data`` must then be reachable by the workers at the same paths; ``train`` and ``test``,
    which replace what ``data`` holds, serve this process only). Returns the status of every
    network."""
    networks = check_networks(networks)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an integer >= 0, got {workers!r}")
    if workers and scheduler is not None:
        raise ValueError("give workers or scheduler, not both")
    record_recipe(config, root, points)
    if not workers and scheduler is None:
        return [run_network(n, config, root, points, data, threads, progress, train, test)
                for n in networks]
    if train is not None or test is not None:
        raise ValueError("train and test splits serve the in-process sweep only; Dask workers "
                         "read data from the data folder")
    from aimcsim.experiments.distributed import map_on_dask
    absolute = lambda p: None if p is None else str(Path(p).resolve())  # noqa: E731
    results: list[dict] = []
    map_on_dask(_run_network_task, list(networks),
                {"config": config, "root": absolute(root), "points": absolute(points),
                 "data": absolute(data)}, results.append, name="trait-sweep",
                workers=workers, scheduler=scheduler)
    order = {n: i for i, n in enumerate(networks)}
    return sorted(results, key=lambda r: order[r["network"]])
