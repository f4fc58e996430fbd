"""The table and plot of the architecture-trait sweep (:mod:`aimcsim.experiments.trait_sweep`),
computed from its points files alone (``<points>/<network>/points.jsonl`` and
``config.json``), so ``python -m aimcsim compare --traits <points>`` reproduces them from the
committed files. Stage 4's points (AdaBS on, ``<points>/<network>/adabs/``) give a second
report of the same form, ``traits_adabs.md``, ``.json`` and ``.png``.

Per network and read time t (GDC on), over the N programmings r = 0..N-1 of the
hardware-aware network:

- accuracy a_r(t); mean m(t), standard deviation s(t) (ddof 1) and standard error
  s(t) / sqrt(N);
- loss to the analog hardware L(t) = A_FP32 - m(t), where A_FP32 is the accuracy of the
  network's FP32 weights (stage 1) on the same test images. A_FP32 is one deterministic
  evaluation, so the standard error of L(t) is that of m(t). The same against the
  hardware-aware network's own digital accuracy A_HWA (its clipped float weights, the weights
  that are programmed; from ``training.json``), L_HWA(t) = A_HWA - m(t): the loss of the
  hardware alone, without what the fine-tuning gained or lost digitally;
- difference to the reference's loss, D(t) = L(t) - L_ref(t). When both networks were read
  with the same seed, test images and programmings, repetition r of one is paired with
  repetition r of the other: d_r = (A_FP32 - a_r) - (A_FP32,ref - a_ref,r), D = mean d_r,
  SE = std(d_r) / sqrt(N). Otherwise SE = sqrt(SE_L^2 + SE_Lref^2) (marked "unpaired").
- whether D is resolved: a two-sided t-test at 95%, |D| > t_0.975(nu) SE, with nu = N - 1
  degrees of freedom when paired and Welch's nu = SE^4 / (SE_L^4 / (N_L - 1) + SE_Lref^4 /
  (N_ref - 1)) when unpaired. With 3 programmings a paired difference needs 4.30 standard
  errors (2 SE would be an 82% test), with 8 it needs 2.36.

Neither standard error covers the spread between training runs: each network of a sweep is
trained once (one seed). Replicates measure that spread: a second sweep of some networks with
the same recipe but another seed (its own ``--root`` and ``--points``), passed as
``replicates``, adds a row per replicated network, named ``<network> (seed S)`` and compared
with the reference and with the same network of the main sweep (unpaired: other seeds). The
latter, L_S(t) - L(t), is the training-to-training difference of the loss; a trait's
difference smaller than it is not resolved by the sweep.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from aimcsim.experiments.stats import resolved, t_critical, welch_dof

#: The network every other one is compared with.
REFERENCE = "t500"
TIME_LABELS = {1.0: "1 s", 3600.0: "1 h", 86400.0: "1 day", 172800.0: "2 days",
               2592000.0: "1 month"}
STEM = "traits"
#: The file stem of stage 4's report (AdaBS on).
ADABS_STEM = "traits_adabs"
#: Points folders of replicate sweeps (one folder or several).
Replicates = Iterable[str | os.PathLike] | str | os.PathLike


def _time_label(t: float) -> str:
    return TIME_LABELS.get(float(t), f"{t:g} s")


def _same_time(a: float, b: float) -> bool:
    return f"{a:.6g}" == f"{b:.6g}"


def measured_networks(points_root: str | os.PathLike, adabs: bool = False) -> list[Path]:
    """The sweep's study folders under ``points_root`` (``<network>``, or with ``adabs``
    ``<network>/adabs``, holding ``points.jsonl`` and ``config.json``), in the sweep's order,
    other networks after them by name."""
    from aimcsim.experiments.trait_sweep import ADABS_FOLDER, DEFAULT_NETWORKS
    root = Path(points_root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder of trait-sweep points")
    studies = [d / ADABS_FOLDER if adabs else d for d in root.iterdir() if d.is_dir()]
    found = [d for d in studies
             if (d / "points.jsonl").is_file() and (d / "config.json").is_file()]
    order = {n: i for i, n in enumerate(DEFAULT_NETWORKS)}

    def network(d: Path) -> str:
        return d.parent.name if adabs else d.name
    return sorted(found, key=lambda d: (order.get(network(d), len(order)), network(d)))


def read_network(folder: Path) -> dict:
    """One network's measurement: ``{"network", "seed", "limit", "repetitions", "times",
    "fp32", "hwa_digital", "hwa": {time: {rep: accuracy}}}`` from its points and study config
    (hardware-aware series, GDC on, repetitions below the study's count) and, when present,
    ``training.json`` (the hardware-aware network's digital test accuracy, None otherwise)."""
    from aimcsim.experiments.drift import read_points
    config = json.loads((folder / "config.json").read_text())
    points = read_points(folder / "points.jsonl").values()
    fp32 = [p["accuracy"] for p in points if p["series"] == "fp32"]
    reps = int(config["repetitions"])
    hwa: dict[float, dict[int, float]] = {}
    for p in points:
        if p["series"] == "hwa" and p["gdc"] and p["rep"] < reps:
            hwa.setdefault(float(p["t"]), {})[int(p["rep"])] = float(p["accuracy"])
    training = folder / "training.json"
    if not training.is_file() and config.get("adabs"):
        training = folder.parent / "training.json"  # stage 4 beside stage 3's folder
    runs = json.loads(training.read_text()) if training.is_file() else {}
    hwa_run = runs.get("hwa")
    digital = hwa_run.get("test_acc") if hwa_run and hwa_run.get("finished") else None
    return {"network": config["model"], "seed": config["seed"], "limit": config["limit"],
            "repetitions": reps, "times": [float(t) for t in config["times"]],
            "adabs": int(config.get("adabs") or 0),
            "fp32": fp32[0] if fp32 else None, "hwa_digital": digital, "hwa": hwa,
            "training_hours": {stage: _stage_hours(runs.get(stage)) for stage in ("fp32", "hwa")}}


def _stage_hours(run: dict | None) -> float | None:
    """Wall time of a finished training stage, hours: the sum of its epochs' seconds as
    ``training.json`` recorded them (None when unfinished or not recorded)."""
    if not run or not run.get("finished"):
        return None
    seconds = [e.get("seconds") for e in run.get("epochs", [])]
    if not seconds or any(x is None for x in seconds):
        return None
    return float(sum(seconds)) / 3600.0


def _runs_at(net: dict, t: float) -> dict[int, float]:
    for time, runs in net["hwa"].items():
        if _same_time(time, t):
            return runs
    return {}


def _cell(net: dict, t: float) -> dict | None:
    """Statistics of one network at time ``t`` (None when nothing was measured there)."""
    runs = _runs_at(net, t)
    if not runs:
        return None
    accs = np.array([runs[r] for r in sorted(runs)])
    n = int(accs.size)
    std = float(accs.std(ddof=1)) if n > 1 else None
    se = std / math.sqrt(n) if std is not None else None
    mean = float(accs.mean())
    return {"t": float(t), "n": n, "mean": mean, "std": std, "se": se,
            "loss": None if net["fp32"] is None else net["fp32"] - mean,
            "loss_digital": None if net["hwa_digital"] is None else net["hwa_digital"] - mean,
            "loss_se": se, "runs": {str(r): runs[r] for r in sorted(runs)}}


#: What a loss is measured from: the FP32 weights' accuracy, or the hardware-aware
#: network's digital accuracy (key of :func:`read_network`, key of the loss in :func:`_cell`).
BASELINES = {"fp32": "loss", "hwa_digital": "loss_digital"}


def loss_difference(net: dict, ref: dict, t: float, baseline: str = "fp32") -> dict | None:
    """D(t) = L(t) - L_ref(t) with its standard error (module docstring), the losses measured
    from ``baseline`` ("fp32" or "hwa_digital"): paired by repetition when both share seed,
    test images and programmings, else unpaired. None when either loss is missing."""
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {sorted(BASELINES)}, got {baseline!r}")
    a, b = _runs_at(net, t), _runs_at(ref, t)
    if not a or not b or net[baseline] is None or ref[baseline] is None:
        return None
    paired = (net["seed"] == ref["seed"] and net["limit"] == ref["limit"]
              and sorted(a) == sorted(b) and len(a) > 1)
    if paired:
        d = np.array([(net[baseline] - a[r]) - (ref[baseline] - b[r]) for r in sorted(a)])
        se = float(d.std(ddof=1) / math.sqrt(d.size))
        return _with_test({"t": float(t), "difference": float(d.mean()), "se": se,
                           "n": int(d.size), "paired": True}, float(d.size - 1))
    ca, cb = _cell(net, t), _cell(ref, t)
    se = (math.hypot(ca["se"], cb["se"]) if ca["se"] is not None and cb["se"] is not None
          else None)
    key = BASELINES[baseline]
    return _with_test({"t": float(t), "difference": ca[key] - cb[key], "se": se,
                       "n": min(ca["n"], cb["n"]), "paired": False},
                      welch_dof(ca["se"], ca["n"], cb["se"], cb["n"]))


def _with_test(difference: dict, dof: float | None) -> dict:
    """Add the two-sided 95% t-test of ``difference`` (module docstring;
    :func:`aimcsim.experiments.stats.resolved`): ``dof``, ``t_critical`` and ``resolved``
    (None when no spread is known)."""
    result = resolved(difference["difference"], difference["se"], dof)
    return {**difference, "dof": None if result is None else float(dof),
            "t_critical": None if result is None else t_critical(dof), "resolved": result}


def _describe(name: str) -> tuple[str, str | None]:
    """(trait moved toward ResNet-32, base network) of a sweep network."""
    from aimcsim.models.traits import STEPS
    for step in STEPS:
        if step.name == name:
            return f"{step.trait}: {step.change}", step.base
    if name == REFERENCE:
        return "(the reference)", None
    if name == "resnet32":
        return "(the far end: every trait)", None
    return "-", None


def _parameters(name: str) -> int | None:
    from aimcsim.models import MODEL_NAMES, build_model, count_parameters
    return count_parameters(build_model(name)) if name in MODEL_NAMES else None


def _read_recipe(points_root: str | os.PathLike) -> dict | None:
    path = Path(points_root) / "sweep.json"
    return json.loads(path.read_text()) if path.is_file() else None


def read_replicates(points_root: str | os.PathLike, replicates: Iterable[str | os.PathLike],
                    adabs: bool = False) -> list[dict]:
    """The networks of the replicate sweeps ``replicates`` (points folders), each as
    :func:`read_network` gives it plus ``"replicate_of"`` (the network's name) and
    ``"network"`` renamed ``<name> (seed S)``. Raises ValueError when a replicate shares the
    main sweep's seed or ran another recipe (fields other than the seed and the extendable
    ones: a different training is not a replicate)."""
    from aimcsim.experiments.trait_sweep import EXTENDABLE, RECORDED_BEFORE
    main = _read_recipe(points_root)
    out: list[dict] = []
    for folder in replicates:
        recipe = _read_recipe(folder)
        if main is not None and recipe is not None:
            a, b = {**RECORDED_BEFORE, **main}, {**RECORDED_BEFORE, **recipe}
            changed = sorted(k for k in set(a) | set(b)
                             if k not in EXTENDABLE and k != "seed" and a.get(k) != b.get(k))
            if changed:
                listed = ", ".join(f"{k}={b.get(k)!r} (main sweep {a.get(k)!r})"
                                   for k in changed)
                raise ValueError(f"{folder} ran another recipe than {points_root}: {listed}; "
                                 "a replicate changes the seed only")
        for d in measured_networks(folder, adabs):
            net = read_network(d)
            if main is not None and net["seed"] == main["seed"]:
                raise ValueError(f"{d} has the main sweep's seed ({net['seed']}): a replicate "
                                 "needs another seed")
            net["replicate_of"] = net["network"]
            net["network"] = f"{net['network']} (seed {net['seed']})"
            out.append(net)
    return out


def trait_data(points_root: str | os.PathLike, times=None,
               reference: str = REFERENCE, adabs: bool = False,
               replicates: Replicates = ()) -> dict:
    """Everything the table and plot show, as JSON-ready data (accuracies and losses as
    fractions; see the module docstring), from stage 3's points or with ``adabs`` from stage
    4's. ``times`` defaults to every time any network was measured at. ``replicates``: points
    folders of sweeps with the main one's recipe and another seed (:func:`read_replicates`);
    their networks follow as rows compared with the reference and with their own network.
    Raises ValueError when the networks were tested on different test images or calibrated
    with different AdaBS image counts."""
    if isinstance(replicates, (str, os.PathLike)):
        replicates = (replicates,)
    nets = [read_network(d) for d in measured_networks(points_root, adabs)]
    if not nets:
        where = "<network>/adabs folders" if adabs else "network folders"
        raise FileNotFoundError(f"no {where} with points.jsonl and config.json in "
                                f"{points_root}: run 'python -m aimcsim sweep' first")
    nets += read_replicates(points_root, replicates, adabs)
    limits = {n["limit"] for n in nets}
    if len(limits) > 1:
        listed = ", ".join(f"{n['network']}: {n['limit']}" for n in nets)
        raise ValueError(f"the networks were tested on different test images (limit {listed}); "
                         "their losses are not comparable")
    calibrations = {n["adabs"] for n in nets}
    if len(calibrations) > 1:
        listed = ", ".join(f"{n['network']}: {n['adabs']}" for n in nets)
        raise ValueError(f"the networks were calibrated with different AdaBS image counts "
                         f"({listed}); their losses are not comparable")
    if times is None:
        times = sorted({t for n in nets for t in n["hwa"]})
    times = [float(t) for t in times]
    by_name = {n["network"]: n for n in nets}
    rows = []
    for net in nets:
        name = net.get("replicate_of", net["network"])
        if "replicate_of" in net:
            trait, base = f"training replicate of {name} (another seed)", name
            base_net = by_name.get(name)
        else:
            trait, base = _describe(name)
            base_net = by_name.get(base) if base not in (None, reference) else None
        ref = by_name.get(reference)
        row = {"network": net["network"], "trait": trait, "base": base,
               "replicate_of": net.get("replicate_of"),
               "parameters": _parameters(name), "fp32": net["fp32"],
               "hwa_digital": net["hwa_digital"], "seed": net["seed"],
               "training_hours": net["training_hours"],
               "cells": [_cell(net, t) for t in times]}
        for baseline, suffix in (("fp32", ""), ("hwa_digital", "_digital")):
            row["vs_reference" + suffix] = [
                loss_difference(net, ref, t, baseline) if ref is not None and net is not ref
                else None for t in times]
            row["vs_base" + suffix] = ([loss_difference(net, base_net, t, baseline)
                                        for t in times] if base_net is not None else None)
        rows.append(row)
    return {"reference": reference, "times": times, "test_images": limits.pop(),
            "adabs": calibrations.pop(),
            "recipe": _read_recipe(points_root),
            "replicate_seeds": sorted({n["seed"] for n in nets if "replicate_of" in n}),
            "networks": rows}


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def _pm(x: float | None, se: float | None, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    return _pct(x, signed) + (f" ± {100 * se:.2f}" if se is not None else " ± n/a")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _recipe_text(data: dict) -> str:
    r = data["recipe"]
    images = (f"the first {data['test_images']:,} test images" if data["test_images"]
              else "the full test set (10,000 images)")
    adabs = (f", AdaBS on (batch norms re-measured after every read over the first "
             f"{data['adabs']:,} training images, augmented)" if data.get("adabs") else "")
    if r is None:
        return f"Measured on {images}, GDC on{adabs}."
    train = (f"first {r['train_limit']:,} training images" if r["train_limit"]
             else "all 50,000 training images")
    seeds = data.get("replicate_seeds") or []
    replicas = (f" (the rows named '(seed S)': the same recipe with seed "
                f"{', '.join(str(s) for s in seeds)})" if seeds else "")
    return (f"Every network trained alike: FP32 {_count(r['epochs'], 'epoch')} one-cycle "
            f"(peak lr {r['lr']:g}, batch {r['batch_size']}, weight decay "
            f"{r['weight_decay']:g}), then {_count(r['hwa_epochs'], 'epoch')} hardware-aware "
            f"with the {r['device']} device model in the loop (read at log-uniform times in "
            f"{r['t_min']:g}-{r['t_max']:g} s, clip {r['clip_sigma']:g} sigma, cosine lr "
            f"{r['hwa_lr']:g}), {train}, seed {r['seed']}{replicas}. Measured on {images}, "
            f"GDC on{adabs}, {_programmings_text(data, int(r['repetitions']))}.")


def _programmings_text(data: dict, recipe_reps: int) -> str:
    """How many programmings the cells average: the recipe's count, or, when some networks
    were measured before the recipe's count was raised, the range with a pointer to N."""
    counts = {c["n"] for row in data["networks"] for c in row["cells"] if c}
    if not counts:
        return _count(recipe_reps, "programming")
    if len(counts) == 1:
        return _count(counts.pop(), "programming")
    return (f"{min(counts)} to {max(counts)} programmings per network (N in each cell: "
            f"networks measured before the sweep's count was raised to {recipe_reps} keep "
            f"their {min(counts)})")


def _loss_table(data: dict, baseline: str) -> tuple[list[str], bool]:
    """Rows of one loss table (loss per time, then its difference to the reference's), and
    whether any difference is unpaired."""
    times, ref = data["times"], data["reference"]
    labels = [_time_label(t) for t in times]
    key, suffix = BASELINES[baseline], "" if baseline == "fp32" else "_digital"
    lines = ["| network | " + " | ".join(f"loss {x}" for x in labels) + " | "
             + " | ".join(f"minus {ref}'s, {x}" for x in labels) + " |",
             "|---|" + "---:|" * (2 * len(times))]
    unpaired = False
    for row in data["networks"]:
        losses = [_pm(c[key], c["loss_se"]) if c else "n/a" for c in row["cells"]]
        diffs = []
        for d in row["vs_reference" + suffix]:
            if d is None:
                diffs.append("-" if row["network"] == ref else "n/a")
                continue
            unpaired |= not d["paired"]
            diffs.append(_pm(d["difference"], d["se"], signed=True)
                         + ("" if d["paired"] else " (u)") + (" *" if d.get("resolved") else ""))
        lines.append(f"| {row['network']} | " + " | ".join(losses + diffs) + " |")
    return lines, unpaired


def trait_markdown(data: dict) -> str:
    """The tables (accuracy; the loss against FP32 and against the hardware-aware network's
    own digital accuracy, each with its difference to the reference's) in Markdown."""
    times, ref = data["times"], data["reference"]
    labels = [_time_label(t) for t in times]
    lines = ["Architecture-trait sweep (issue 22)" + (", AdaBS on" if data.get("adabs") else "")
             + ": T500 with one trait at a time moved toward ResNet-32. " + _recipe_text(data),
             "",
             "Accuracy (%): FP32 weights, the hardware-aware network's clipped float weights "
             "digitally (HWA digital), and on the analog hardware (mean ± standard error over "
             "programmings, N programmings)", "",
             "| network | trait moved toward ResNet-32 | parameters | FP32 | HWA digital | "
             + " | ".join(labels) + " |",
             "|---|---|---:|---:|---:|" + "---:|" * len(times)]
    for row in data["networks"]:
        cells = [f"{_pm(c['mean'], c['se'])} ({c['n']})" if c else "n/a" for c in row["cells"]]
        params = f"{row['parameters']:,}" if row["parameters"] is not None else "?"
        lines.append(f"| {row['network']} | {row['trait']} | {params} | {_pct(row['fp32'])} | "
                     f"{_pct(row['hwa_digital'])} | " + " | ".join(cells) + " |")
    fp32_table, unpaired = _loss_table(data, "fp32")
    digital_table, unpaired_digital = _loss_table(data, "hwa_digital")
    lines += ["", f"Loss to the analog hardware: FP32 minus analog (points, ± standard error), "
              f"and its difference to {ref}'s (positive: loses more than {ref})", ""]
    lines += fp32_table
    lines += ["", "The same from the hardware-aware network's own digital accuracy (HWA "
              "digital minus analog: the same weights, the loss of the hardware alone)", ""]
    lines += digital_table
    lines += ["", "Differences are paired by programming (same seeds and test images) "
              + ("except those marked (u), which are unpaired."
                 if unpaired or unpaired_digital else "throughout.")
              + " * marks a difference resolved by a two-sided t-test at 95% (paired: N - 1 "
              "degrees of freedom, so 4.30 standard errors for 3 programmings, 2.36 for 8; "
              "unpaired: "
              "Welch's); the others are within noise."
              + " The standard errors cover the programmings only, not the spread between "
              "training runs" + (": the replicate rows (another seed) measure that spread."
                                 if data.get("replicate_seeds") else
                                 " (one trained network per architecture).")]
    lines += _training_time_table(data)
    for row in data["networks"]:
        if not row["vs_base"]:
            continue
        relation = ("the training-run difference, unpaired" if row.get("replicate_of")
                    else "its base: the step alone")
        for suffix, what in (("", "from FP32"), ("_digital", "from its own digital "
                                                             "accuracy")):
            parts = [f"{_pm(d['difference'], d['se'], signed=True)}"
                     f"{' *' if d.get('resolved') else ''} at {x}" if d else
                     f"n/a at {x}" for d, x in zip(row["vs_base" + suffix], labels)]
            lines += ["", f"{row['network']} minus {row['base']} ({relation}), "
                      f"loss {what}: " + ", ".join(parts) + " points."]
    return "\n".join(lines)


def _training_time_table(data: dict) -> list[str]:
    """Markdown lines of the measured training wall times (hours, from ``training.json``)."""
    rows = [r for r in data["networks"] if any(
        h is not None for h in (r.get("training_hours") or {}).values())]
    if not rows:
        return []

    def hours(x: float | None) -> str:
        return f"{x:.2f}" if x is not None else "n/a"

    lines = ["", "Training wall time (hours, as recorded per epoch in each network's "
             "training.json: the training steps, without the test evaluations; one thread per "
             "process, two processes sharing two cores; the measurement's time is not "
             "recorded)", "",
             "| network | FP32 stage | hardware-aware stage | both |", "|---|---:|---:|---:|"]
    for row in rows:
        fp32, hwa = row["training_hours"].get("fp32"), row["training_hours"].get("hwa")
        both = fp32 + hwa if fp32 is not None and hwa is not None else None
        lines.append(f"| {row['network']} | {hours(fp32)} | {hours(hwa)} | {hours(both)} |")
    return lines


def plot_traits(data: dict, path: str | os.PathLike) -> None:
    """Two panels of horizontal bars, one row per network and one bar per time: the loss to
    the analog hardware, and its difference to the reference's, error bars one standard
    error."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, times = data["networks"], data["times"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.55 * len(rows) + 1.8), sharey=True)
    height = 0.8 / max(len(times), 1)
    ys = np.arange(len(rows))
    for k, t in enumerate(times):
        offset = ys - 0.4 + height * (k + 0.5)
        for ax, key in ((axes[0], "loss"), (axes[1], "difference")):
            vals, errs = [], []
            for row in rows:
                item = row["cells"][k] if key == "loss" else row["vs_reference"][k]
                value = item.get(key) if item else None
                se = (item.get("loss_se") if key == "loss" else item.get("se")) if item else None
                vals.append(100 * value if value is not None else np.nan)
                errs.append(100 * se if se is not None else 0.0)
            ax.barh(offset, vals, height, xerr=errs, capsize=2, label=_time_label(t))
    axes[0].set_yticks(ys, [r["network"] for r in rows])
    axes[0].invert_yaxis()
    axes[0].set_xlabel("loss to the analog hardware: FP32 minus analog (points)")
    axes[1].set_xlabel(f"loss minus {data['reference']}'s loss (points)")
    for ax in axes:
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.grid(axis="x", alpha=0.3)
    axes[0].legend(title="after programming", fontsize=8)
    fig.suptitle("Which trait buys robustness: T500 with one trait moved toward ResNet-32"
                 + (", AdaBS on" if data.get("adabs") else "")
                 + " (error bars: one standard error)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_trait_report(points_root: str | os.PathLike, out: str | os.PathLike | None = None,
                       times=None, reference: str = REFERENCE, adabs: bool = False,
                       replicates: Replicates = ()) -> str:
    """Write ``traits.md``, ``traits.json`` and ``traits.png`` (with ``adabs``, stage 4's
    ``traits_adabs.*``) into ``out`` (default: ``points_root``) and return the Markdown;
    ``replicates`` as :func:`trait_data`."""
    data = trait_data(points_root, times, reference, adabs, replicates)
    out = Path(out if out is not None else points_root)
    out.mkdir(parents=True, exist_ok=True)
    markdown = trait_markdown(data)
    stem = ADABS_STEM if adabs else STEM
    (out / f"{stem}.md").write_text(markdown + "\n")
    (out / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")
    plot_traits(data, out / f"{stem}.png")
    return markdown


def write_trait_reports(points_root: str | os.PathLike, out: str | os.PathLike | None = None,
                        times=None, reference: str = REFERENCE,
                        replicates: Replicates = ()) -> str:
    """:func:`write_trait_report` without AdaBS, and with it when any network has stage 4's
    points; returns both Markdown texts."""
    texts = [write_trait_report(points_root, out, times, reference, replicates=replicates)]
    if measured_networks(points_root, adabs=True):
        texts.append(write_trait_report(points_root, out, times, reference, adabs=True,
                                        replicates=replicates))
    return "\n\n".join(texts)
