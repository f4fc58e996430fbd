"""Test accuracy over time after programming: FP32, direct-mapped FP32 weights, and
hardware-aware ("custom") trained weights, N programmings each, with and without global drift
compensation (figure F1 of targets.md).

Every measured point is appended to ``points.jsonl`` as soon as it exists, keyed by
(series, gdc, repetition, time); a restarted study skips the points it already has, and because
programming and read seeds are derived from those keys, a resumed study gives the same numbers
as an uninterrupted one.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from aimcsim.data.cifar10 import CifarSplit
from aimcsim.models import build_model
from aimcsim.data.loader import CALIBRATION_IMAGES, calibration_batches
from aimcsim.nn import adapt_batchnorm, convert_to_analog, program, set_time
from aimcsim.nn.persistence import config_mismatch
from aimcsim.tiles.config import AnalogConfig
from aimcsim.training.hwa import load_weights
from aimcsim.training.trainer import evaluate
from aimcsim.validation import check_bool, check_choice, check_int, is_number

if TYPE_CHECKING:
    from distributed import Client

SERIES = ("fp32", "direct", "hwa")
#: 15+ log-spaced times from 1e-5 s to 1e5 s (physics: t counts from the end of programming).
F1_TIMES = tuple(float(t) for t in np.logspace(-5, 5, 16))
MONTH = 30 * 24 * 3600.0
#: 1 s, 1 h, 1 day, 1 month: the readings of figure F2.
F2_TIMES = (1.0, 3600.0, 86400.0, MONTH)
#: f1+f2: the F1 curve plus the four F2 times (1 s, 1 h, 1 day, 1 month), 20 times in all.
TIME_PRESETS = {"f1": F1_TIMES, "f2": F2_TIMES, "f1+f2": tuple(sorted(F1_TIMES + F2_TIMES))}


@dataclass
class DriftStudyConfig:
    """What to measure.

    Attributes:
        model: zoo network name.
        fp32_weights: FP32 weights (state dict or trainer checkpoint) of the direct mapping.
        hwa_weights: hardware-aware trained weights, or None to skip that series.
        times: seconds after programming.
        repetitions: independent programmings per series and GDC setting (>= 1).
        gdc: which drift-compensation settings to run (True = on).
        seed: base seed of programming and reads.
        batch_size: test images per batch.
        limit: use only the first ``limit`` test images (quick runs).
        analog: the analog configuration (GDC is overridden per run); its device decides which
            times are valid (:meth:`~aimcsim.devices.DeviceModel.check_read_time`).
        series: which of :data:`SERIES` to measure; "hwa" is skipped when ``hwa_weights`` is
            None. Two processes may measure different series into one folder at once (each
            point is one appended line); run the study once more afterwards to summarise all.
        adabs: adaptive batch-norm statistics: after every read (``set_time``) re-measure the
            batch norms over the first ``adabs`` training images passed through the analog
            network (:func:`aimcsim.adapt_batchnorm`); 0: off.
        adabs_images: how the calibration images are prepared, "augmented" (crop + flip as in
            training, the default since 2026-11-30) or "plain" (as stored; the AdaBS series
            measured before then): :func:`aimcsim.data.calibration_batches`.
    """

    model: str
    fp32_weights: str
    hwa_weights: str | None = None
    times: tuple[float, ...] = F1_TIMES
    repetitions: int = 5
    gdc: tuple[bool, ...] = (True, False)
    seed: int = 0
    batch_size: int = 250
    limit: int | None = None
    analog: AnalogConfig = field(default_factory=AnalogConfig)
    series: tuple[str, ...] = SERIES
    adabs: int = 0
    adabs_images: str = "augmented"

    def __post_init__(self) -> None:
        unknown = set(self.series) - set(SERIES)
        if not self.series or unknown:
            raise ValueError(f"series must be a non-empty subset of {SERIES}, got {self.series}")
        if tuple(self.series) == ("hwa",) and self.hwa_weights is None:
            raise ValueError("series ('hwa',) needs hwa_weights")
        self.repetitions = check_int(self.repetitions, "repetitions", 1, 1 << 16)
        self.seed = check_int(self.seed, "seed", 0, 1 << 32)
        self.batch_size = check_int(self.batch_size, "batch_size", 1, 1 << 20)
        self.limit = check_int(self.limit, "limit", 1, allow_none=True)
        if not self.gdc or isinstance(self.gdc, (str, bytes)):
            raise ValueError(f"gdc must be a non-empty tuple of True / False, got {self.gdc!r}")
        self.gdc = tuple(check_bool(g, "gdc") for g in self.gdc)
        self.adabs = check_int(self.adabs, "adabs", 0, 1 << 20)
        check_choice(self.adabs_images, CALIBRATION_IMAGES, "adabs_images")
        if not isinstance(self.analog, AnalogConfig):
            raise ValueError(f"analog must be an AnalogConfig, got {type(self.analog).__name__}")
        if not self.times or isinstance(self.times, (str, bytes)):
            raise ValueError(f"times must be a non-empty list of seconds >= 0, got {self.times}")
        # each time valid for the device (e.g. within the RRAM model's characterised range)
        self.times = tuple(self.analog.device.check_read_time(t, "times") for t in self.times)
        for name in ("fp32_weights", "hwa_weights"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{name}: no such file {path!r}")

    def describe(self) -> dict:
        """The configuration as JSON-ready data, with the SHA-256 of each weights file."""
        d = asdict(self)
        d["analog"] = self.analog.to_dict()
        d["fp32_sha256"] = _sha256(self.fp32_weights)
        d["hwa_sha256"] = _sha256(self.hwa_weights) if self.hwa_weights else None
        return d


#: Settings that change what a stored point means; a resumed study must not differ in them.
#: (Times, repetitions, GDC settings and batch size may change: they add points or only
#: reorder random draws.)
_RESUME_INVARIANTS = ("model", "seed", "limit", "analog", "fp32_sha256", "hwa_sha256",
                      "adabs", "adabs_images")


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _with_defaults(analog: dict) -> dict | None:
    """A stored analog configuration with every field added since filled in with the value
    it had before it existed (``AnalogConfig.from_stored``), so a study written before a new
    field existed still resumes, with what it was measured with; None if it does not parse."""
    try:
        return json.loads(json.dumps(AnalogConfig.from_stored(analog).to_dict()))
    except (ValueError, TypeError, KeyError):
        return None


def _check_resumable(old: dict, new: dict, out: Path) -> None:
    """Refuse to mix points of different studies in one folder. The hardware-aware series may
    be absent on either side (``hwa_sha256`` None): added later, or not measured this time."""
    old = dict(old)
    if old.get("adabs") and "adabs_images" not in old:
        old["adabs_images"] = "plain"  # AdaBS studies written before the field calibrated so
    for name in _RESUME_INVARIANTS:
        if name not in old or old[name] == new[name]:
            continue
        if name == "adabs_images" and not new["adabs"]:
            continue  # no AdaBS: the calibration images do not matter
        if name == "analog" and _with_defaults(old[name]) == json.loads(json.dumps(new[name])):
            continue  # stored before a config field was added; the new field's default
        if name == "hwa_sha256" and None in (old[name], new[name]):
            continue
        if name == "analog":
            stored = _with_defaults(old[name])
            if stored is not None:
                diff = config_mismatch(AnalogConfig.from_dict(new[name]),
                                       AnalogConfig.from_dict(stored), ignore=())
                raise ValueError(
                    f"{out} holds points of a different study (analog changed: {diff}); "
                    f"pass the study's own config (--analog-config, e.g. "
                    f"\"gemm_precision\": \"float32\" for studies measured before "
                    f"2026-12-01), use a new --out folder or delete the old points.jsonl")
        raise ValueError(
            f"{out} holds points of a different study ({name} changed: "
            f"{str(old[name])[:80]!r} -> {str(new[name])[:80]!r}); "
            "use a new --out folder or delete the old points.jsonl")


def read_seed(seed: int, rep: int, t: float) -> int:
    """The read seed of the point (programming ``rep`` of study ``seed``, time ``t``): named by
    the point alone, so a point's value does not depend on the other times of the study."""
    digest = hashlib.sha256(f"{seed}|{rep}|{t:.6g}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _key(series: str, gdc: bool, rep: int, t: float) -> str:
    return f"{series}|{int(gdc)}|{rep}|{t:.6g}"


def _load_points(path: Path) -> dict[str, dict]:
    """The points of ``points.jsonl``, keyed as :func:`_key`. Lines that are not a complete
    point (cut by a kill, binary garbage, missing keys, values of the wrong type) are skipped
    with one ``UserWarning`` naming the file and the line numbers: those points are measured
    again."""
    points: dict[str, dict] = {}
    if not path.exists():
        return points
    bad: list[int] = []
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not raw.strip():
            continue
        p = _parse_point(raw)
        if p is None:
            bad.append(number)
            continue
        points[_key(p["series"], p["gdc"], p["rep"], p["t"])] = p
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
        warnings.warn(f"{path}: skipped {len(bad)} unreadable line(s) ({shown}); those points "
                      f"are measured again", UserWarning, stacklevel=3)
    return points


def read_points(path: str | os.PathLike) -> dict[str, dict]:
    """The valid points of a ``points.jsonl`` file (none if it does not exist), keyed by
    (series, GDC setting, repetition, time); unreadable lines are skipped with a warning
    (:func:`_load_points`)."""
    return _load_points(Path(path))


def _parse_point(raw: bytes) -> dict | None:
    """One line of ``points.jsonl`` as a point, or None if it is not a valid one."""
    try:
        p = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(p, dict):
        return None
    try:
        ok = (p["series"] in SERIES and isinstance(p["gdc"], bool)
              and isinstance(p["rep"], int) and not isinstance(p["rep"], bool) and p["rep"] >= 0
              and is_number(p["t"]) and p["t"] >= 0
              and is_number(p["accuracy"]) and 0 <= p["accuracy"] <= 1)
    except (KeyError, TypeError):
        return None
    return p if ok else None


#: One point of the study: (series, gdc, repetition, time in s). The FP32 reference is
#: ("fp32", False, 0, 0.0).
Point = tuple[str, bool, int, float]
FP32_POINT: Point = ("fp32", False, 0, 0.0)


def programming_seed(seed: int, rep: int) -> int:
    """The programming seed of repetition ``rep`` of study ``seed``."""
    return seed * 1000 + rep


def _model_with(name: str, weights: str) -> nn.Module:
    return load_weights(build_model(name), weights).eval()


def base_networks(config: DriftStudyConfig) -> dict[str, nn.Module]:
    """The digital network behind each measured series: "fp32" and "direct" share the FP32
    weights, "hwa" has the hardware-aware ones."""
    fp32 = _model_with(config.model, config.fp32_weights)
    bases = {"fp32": fp32, "direct": fp32}
    if config.hwa_weights:
        bases["hwa"] = _model_with(config.model, config.hwa_weights)
    return {s: m for s, m in bases.items() if s in config.series}


def missing_points(config: DriftStudyConfig, points: dict[str, dict]) -> list[Point]:
    """The points of ``config`` not in ``points`` (each once), FP32 first, then in measuring
    order (series, GDC setting, programming, time), so consecutive points share a
    programming."""
    todo: list[Point] = []
    if "fp32" in config.series:
        todo.append(FP32_POINT)
    todo += [(s, g, r, t) for s in ("direct", "hwa") if s in config.series
             and (s == "direct" or config.hwa_weights) for g in config.gdc
             for r in range(config.repetitions) for t in config.times]
    seen, missing = set(points), []
    for p in todo:  # times equal to 6 digits are one point
        if _key(*p) not in seen:
            seen.add(_key(*p))
            missing.append(p)
    return missing


def programmed_network(config: DriftStudyConfig, base: nn.Module, gdc: bool,
                       rep: int) -> nn.Module:
    """``base`` converted with the study's analog configuration (GDC set to ``gdc``) and
    programmed with repetition ``rep``'s seed: deterministic, so any process gets the same
    tiles."""
    analog_config = config.analog.replace(**{"drift_compensation.enabled": gdc})
    with torch.no_grad():
        analog = convert_to_analog(base, analog_config).eval()
        program(analog, seed=programming_seed(config.seed, rep))
    return analog


def measure_point(config: DriftStudyConfig, point: Point, base: nn.Module, test: CifarSplit,
                  calibration: list[torch.Tensor] | None = None,
                  analog: nn.Module | None = None) -> dict:
    """Measure one point and return its record (series, gdc, rep, t, accuracy).

    ``base`` is the series' digital network (:func:`base_networks`); the FP32 point evaluates
    it as is. An analog point reads ``analog`` (programmed for the point's series, GDC setting
    and repetition by :func:`programmed_network`; programmed here when None) at the point's time
    with its read seed, re-measures the batch norms over ``calibration`` when given (AdaBS),
    and evaluates ``test`` (already cut to ``config.limit``)."""
    series, gdc, rep, t = point
    with torch.no_grad():
        if series == "fp32":
            acc = evaluate(base, test, config.batch_size)
        else:
            if analog is None:
                analog = programmed_network(config, base, gdc, rep)
            set_time(analog, t, seed=read_seed(config.seed, rep, t))
            if calibration is not None:
                adapt_batchnorm(analog, calibration)
            acc = evaluate(analog, test, config.batch_size)
    return {"series": series, "gdc": gdc, "rep": rep, "t": t, "accuracy": acc}


def _calibration(config: DriftStudyConfig,
                 train: CifarSplit | None) -> list[torch.Tensor] | None:
    """The AdaBS calibration batches (None when ``config.adabs`` is 0)."""
    if not config.adabs:
        return None
    if train is None or len(train) < config.adabs:
        raise ValueError(f"adabs={config.adabs} needs that many training images")
    return calibration_batches(train, config.adabs, config.batch_size, config.adabs_images,
                               seed=config.seed)


def _open_points(config: DriftStudyConfig, out: Path) -> dict[str, dict]:
    """Create ``out``, load its points, refuse a different study's folder, write
    ``config.json`` and mend a last line cut by a kill."""
    out.mkdir(parents=True, exist_ok=True)
    described = json.loads(json.dumps(config.describe()))  # tuples as JSON lists, to compare
    points_path = out / "points.jsonl"
    points = _load_points(points_path)
    if points and (out / "config.json").exists():
        stored = json.loads((out / "config.json").read_text())
        _check_resumable(stored, described, out)
        if described["hwa_sha256"] is None:  # keep the record of the series already measured
            described["hwa_weights"] = stored.get("hwa_weights")
            described["hwa_sha256"] = stored.get("hwa_sha256")
    (out / "config.json").write_text(json.dumps(described, indent=1))
    if points_path.exists() and points_path.stat().st_size:
        with open(points_path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            cut = fh.read(1) != b"\n"
        if cut:  # a kill cut the last line: start a new one
            with open(points_path, "a") as fh:
                fh.write("\n")
    return points


def _measure_in_process(config: DriftStudyConfig, todo: list[Point],
                        bases: dict[str, nn.Module], test: CifarSplit,
                        calibration: list[torch.Tensor] | None,
                        record: Callable[[dict], None]) -> None:
    """Measure ``todo`` in order, programming once per (series, GDC setting, repetition)."""
    analog, programmed_for = None, None
    for point in todo:
        series, gdc, rep, _ = point
        if series != "fp32" and programmed_for != (series, gdc, rep):
            analog = programmed_network(config, bases[series], gdc, rep)
            programmed_for = (series, gdc, rep)
        record(measure_point(config, point, bases[series], test, calibration,
                             analog if series != "fp32" else None))


def run_drift_study(config: DriftStudyConfig, test: CifarSplit, out_dir: str | os.PathLike,
                    progress: bool = True, train: CifarSplit | None = None,
                    workers: int = 0, scheduler: str | None = None,
                    client: "Client | None" = None) -> dict:
    """Measure every missing point, then write ``summary.csv``, ``results.json`` and return
    the results (see :func:`summarise`). ``train`` supplies the AdaBS calibration images
    (needed when ``config.adabs`` > 0).

    Points are measured in this process by default; on Dask with ``workers`` > 0 (a local
    cluster of that many single-threaded worker processes), ``scheduler`` (the address of a
    running Dask scheduler) or ``client`` (a connected ``distributed.Client``): see
    :mod:`aimcsim.experiments.distributed`. Every way writes the same points."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an integer >= 0, got {workers!r}")
    if sum((workers > 0, scheduler is not None, client is not None)) > 1:
        raise ValueError("give at most one of workers, scheduler and client")
    calibration = _calibration(config, train)
    out = Path(out_dir)
    points = _open_points(config, out)
    if config.limit is not None:
        test = CifarSplit(test.images[:config.limit], test.labels[:config.limit])
    todo = missing_points(config, points)
    bases = base_networks(config) if todo else {}
    bar = tqdm(total=len(todo), disable=not progress, desc=f"drift {config.model}")
    with open(out / "points.jsonl", "a") as sink:
        def record(p: dict) -> None:
            points[_key(p["series"], p["gdc"], p["rep"], p["t"])] = p
            sink.write(json.dumps(p) + "\n")
            sink.flush()
            bar.update(1)
            bar.set_postfix(last=f"{p['series']} t={p['t']:.3g}s {100 * p['accuracy']:.2f}%")

        if todo and (workers or scheduler is not None or client is not None):
            from aimcsim.experiments.distributed import measure_on_dask
            measure_on_dask(config, todo, bases, test, calibration, record, workers=workers,
                            scheduler=scheduler, client=client)
        else:
            _measure_in_process(config, todo, bases, test, calibration, record)
    bar.close()
    results = summarise(list(points.values()), config)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    write_summary_csv(results, out / "summary.csv")
    return results


def summarise(points: list[dict], config: DriftStudyConfig) -> dict:
    """Group the points: per (series, gdc, t) the mean, std, min, max and the single runs."""
    wanted = {f"{t:.6g}" for t in config.times}
    fp32 = [p["accuracy"] for p in points if p["series"] == "fp32"]
    rows = []
    groups: dict[tuple, list[dict]] = {}
    for p in points:
        if p["series"] == "fp32" or f"{p['t']:.6g}" not in wanted:
            continue
        if p["rep"] >= config.repetitions or p["gdc"] not in config.gdc:
            continue
        groups.setdefault((p["series"], bool(p["gdc"]), float(p["t"])), []).append(p)
    for (s, gdc, t), ps in sorted(groups.items()):
        ps = sorted(ps, key=lambda p: p["rep"])
        accs = np.array([p["accuracy"] for p in ps])
        rows.append({"series": s, "gdc": gdc, "t": t, "n": int(accs.size),
                     "mean": float(accs.mean()), "std": float(accs.std(ddof=1)) if accs.size > 1
                     else 0.0, "min": float(accs.min()), "max": float(accs.max()),
                     "runs": accs.tolist(), "reps": [int(p["rep"]) for p in ps]})
    return {"model": config.model, "fp32": fp32[0] if fp32 else None, "rows": rows,
            "config": config.describe()}


def write_summary_csv(results: dict, path: str | os.PathLike) -> None:
    """One line per (series, gdc, t): accuracy mean, std, min, max in %, and n."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["model", "series", "gdc", "t_seconds", "n", "mean_pct", "std_pct",
                         "min_pct", "max_pct"])
        if results["fp32"] is not None:
            writer.writerow([results["model"], "fp32", "", 0, 1,
                             f"{100 * results['fp32']:.2f}", "0.00", "", ""])
        for r in results["rows"]:
            writer.writerow([results["model"], r["series"], "on" if r["gdc"] else "off",
                             f"{r['t']:.6g}", r["n"], f"{100 * r['mean']:.2f}",
                             f"{100 * r['std']:.2f}", f"{100 * r['min']:.2f}",
                             f"{100 * r['max']:.2f}"])
