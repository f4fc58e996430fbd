"""Figure F2: accuracy of several networks at fixed times after programming, and the drop."""
from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from aimcsim.experiments.drift import F2_TIMES, MONTH as MONTH_S  # noqa: E402
from aimcsim.experiments.stats import resolved, satterthwaite_dof, welch_dof  # noqa: E402

LABELS = {1.0: "1 s", 3600.0: "1 h", 86400.0: "1 day", 172800.0: "2 days",
          2592000.0: "1 month"}
#: What names a compared study: its network, or its device model.
ROW_LABELS = ("model", "device")
#: Published AnalogNAS numbers (Benmeziane et al. 2023, via targets.md F2): at one day T500 is
#: 1.86 points above ResNet-32; over one month T500 loses 1.8 points, ResNet-32 5.04.
PUBLISHED_DROP_ONE_MONTH = {"t500": 1.8, "resnet32": 5.04}
PUBLISHED_ONE_DAY_GAP_T500_MINUS_RESNET32 = 1.86
SERIES_NAMES = {"direct": "direct-mapped FP32 weights", "hwa": "hardware-aware trained"}
#: The series the published numbers belong to (AnalogNAS evaluates networks trained with noise).
PUBLISHED_SERIES = "hwa"


#: The name of a comparison whose rows are of different series (e.g. the F1 figure: the
#: direct mapping beside the hardware-aware network).
MIXED_SERIES = "mixed"


def series_per_run(series: str | list[str] | tuple[str, ...], runs: int) -> list[str]:
    """One series per compared study: ``series`` for all of them, or one each (ValueError on
    an unknown series or a count that does not match)."""
    chosen = [series] * runs if isinstance(series, str) else list(series)
    if len(chosen) != runs:
        raise ValueError(f"got {len(chosen)} series for {runs} runs (give one, or one per run)")
    for name in chosen:
        if name not in SERIES_NAMES:
            raise ValueError(f"series must be one of {sorted(SERIES_NAMES)}, got {name!r}")
    return chosen


def series_name(series: list[str]) -> str:
    """The one series of a comparison, or :data:`MIXED_SERIES`."""
    return series[0] if len(set(series)) == 1 else MIXED_SERIES


def compare_title(series: str, gdc: bool) -> str:
    """Caption of an F2 comparison of ``series`` ("direct", "hwa" or "mixed") with GDC on or
    off."""
    what = "series per row" if series == MIXED_SERIES else SERIES_NAMES[series]
    return f"Accuracy after programming ({what}, GDC {'on' if gdc else 'off'})"


def compare_stem(series: str, gdc: bool) -> str:
    """File name (no suffix) of the comparison, so both series and GDC settings can coexist."""
    return f"compare_{series}_gdc_{'on' if gdc else 'off'}"


def _row(results: dict, series: str, gdc: bool, t: float) -> dict | None:
    for r in results["rows"]:
        if r["series"] == series and r["gdc"] == gdc and abs(r["t"] - t) <= 1e-6 * max(t, 1):
            return r
    return None


def device_label(results: dict) -> str:
    """The device model of a study's ``results.json`` (its analog config), as a short name."""
    from aimcsim.experiments.report import study_device
    device = study_device(results)
    return device.label if device is not None else "unknown device"


def compare_table(run_dirs: list[str | os.PathLike],
                  series: str | list[str] | tuple[str, ...] = "hwa", gdc: bool = True,
                  times=F2_TIMES, label: str = "model",
                  labels: list[str] | None = None) -> tuple[str, list[dict]]:
    """Markdown table: per study, accuracy (mean +- std over programmings, with the standard
    error of the mean std / sqrt(n) in brackets) at ``times`` and
    the drop from the first to the last time. ``label="model"`` names each row by its network
    and, for the hardware-aware series (the one AnalogNAS published), adds the published drop
    and one-day gap; ``label="device"`` names each row by its device model (one network on
    several devices); ``labels`` names the rows explicitly (e.g. two studies of one network).
    A time a study did not measure (e.g. outside a device's characterised range) shows n/a.
    ``series`` is one series for every study or one per study (e.g. the direct mapping of one
    study beside the hardware-aware series of others, as in figure F1)."""
    per_run = series_per_run(series, len(run_dirs))
    if label not in ROW_LABELS:
        raise ValueError(f"label must be one of {ROW_LABELS}, got {label!r}")
    if labels is not None and len(labels) != len(run_dirs):
        raise ValueError(f"got {len(labels)} labels for {len(run_dirs)} runs")
    rows = []
    for i, d in enumerate(run_dirs):
        path = Path(d) / "results.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: give the output folder of a finished "
                                    "'python -m aimcsim drift' run")
        res = json.loads(path.read_text())
        cells = [_row(res, per_run[i], gdc, t) for t in times]
        rows.append({"model": res["model"], "fp32": res["fp32"], "cells": cells,
                     "series": per_run[i],
                     "label": labels[i] if labels else
                     res["model"] if label == "model" else device_label(res)})
    published = series_name(per_run) == PUBLISHED_SERIES and label == "model"
    head = (["network" if label == "model" else "device", "FP32"]
            + [LABELS.get(t, f"{t:g} s") for t in times] + ["drop (first to last)"]
            + (["published drop (1 month)"] if published else []))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = [_cell_text(c) for c in r["cells"]]
        drop = (f"{100 * (r['cells'][0]['mean'] - r['cells'][-1]['mean']):.2f}"
                if r["cells"][0] and r["cells"][-1] else "n/a")
        pub = PUBLISHED_DROP_ONE_MONTH.get(r["model"])
        lines.append("| " + " | ".join([r["label"], f"{100 * r['fp32']:.2f}" if r["fp32"]
                                        else "n/a"] + vals + [drop]
                                       + ([f"{pub}" if pub else "-"] if published else []))
                     + " |")
    counts = sorted({c["n"] for r in rows for c in r["cells"] if c})
    lines += ["", "mean ± standard deviation over programmings [standard error of the mean]; "
              f"programmings per cell: {', '.join(map(str, counts))}."]
    if any(r["fp32"] for r in rows):
        lines += ["", *loss_table(rows, times)]
    gap = one_day_gap(rows, times) if label == "model" else None
    if gap is not None and published:
        lines += ["", "The published claims, against the standard errors:",
                  *published_verdicts(rows, times)]
    elif gap is not None:
        lines += ["", f"T500 minus ResNet-32 at 1 day: {gap:+.2f} points."]
    if not published and label == "model" and series_name(per_run) != MIXED_SERIES:
        lines += ["", f"The published AnalogNAS numbers are for {SERIES_NAMES['hwa']} networks: "
                  "compare them with `--series hwa`."]
    return "\n".join(lines), rows


def _cell_text(cell: dict | None) -> str:
    """``mean ± std [SE]`` in percent for one time of one study, or n/a."""
    if not cell:
        return "n/a"
    se = cell["std"] / math.sqrt(cell["n"]) if cell["n"] > 0 else float("nan")
    return f"{100 * cell['mean']:.2f} ± {100 * cell['std']:.2f} [{100 * se:.2f}]"


def _se(cell: dict) -> float:
    """Standard error of a cell's mean accuracy (fraction), std / sqrt(n)."""
    return cell["std"] / math.sqrt(cell["n"]) if cell["n"] > 1 else float("nan")


def drop_with_error(first: dict, last: dict) -> tuple[float, float, float | None]:
    """Mean accuracy lost from cell ``first`` to cell ``last`` (fractions), its standard
    error and that error's degrees of freedom. When both cells hold the single runs of the
    same programmings (``runs``, ordered by programming, with their programming numbers in
    ``reps`` where recorded), the drop is paired: SE = std(first_r - last_r) / sqrt(n), n - 1
    degrees of freedom; otherwise the two means' errors add in quadrature (Welch's degrees of
    freedom)."""
    drop = first["mean"] - last["mean"]
    a, b = first.get("runs"), last.get("runs")
    same_reps = first.get("reps") == last.get("reps")  # both None for older results files
    if a and b and len(a) == len(b) > 1 and same_reps:
        se = statistics.stdev(x - y for x, y in zip(a, b)) / math.sqrt(len(a))
        return drop, se, float(len(a) - 1)
    return (drop, math.hypot(_se(first), _se(last)),
            welch_dof(_se(first), first["n"], _se(last), last["n"]))


def loss_table(rows: list[dict], times=F2_TIMES) -> list[str]:
    """Markdown lines: each network's accuracy lost to the analog hardware at each time,
    measured from its own FP32 accuracy (points, mean ± standard error over programmings; the
    FP32 accuracy is one deterministic evaluation of the same test images)."""
    head = ["network", *[f"loss at {LABELS.get(t, f'{t:g} s')}" for t in times]]
    lines = ["Accuracy lost from each network's own FP32 accuracy (points, mean ± SE):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{100 * (r['fp32'] - c['mean']):.2f} ± {100 * _se(c):.2f}"
                 if c and r["fp32"] else "n/a" for c in r["cells"]]
        lines.append("| " + " | ".join([r["label"], *cells]) + " |")
    return lines


def verdict(difference: float, standard_error: float, published: float,
            dof: float | None) -> str:
    """Whether a measured difference reproduces a published one of the same meaning, by a
    two-sided t-test at 95% on ``dof`` degrees of freedom
    (:func:`aimcsim.experiments.stats.resolved`): "reproduced" when the difference is resolved
    from 0 with the published sign, "not reproduced (reversed)" when resolved with the other
    sign, "within noise" otherwise (also when no spread or dof is known)."""
    if not resolved(difference, standard_error, dof):
        return "within noise"
    return "reproduced" if (difference > 0) == (published > 0) else "not reproduced (reversed)"


def published_verdicts(rows: list[dict], times=F2_TIMES) -> list[str]:
    """The published F2 claims checked against the standard errors, one line each: T500
    ahead of ResNet-32 at one day (as measured, and again with each network's own FP32
    accuracy taken out), and T500 losing less than ResNet-32 from the first time to one month.
    Empty when either network or time is missing."""
    by_model = {r["model"]: r for r in rows}
    t500, resnet = by_model.get("t500"), by_model.get("resnet32")
    if not t500 or not resnet or MONTH_S not in times:
        return []
    a, b = _t500_and_resnet32_at(rows, times, 86400.0)
    month = list(times).index(MONTH_S)
    out = []
    se = math.hypot(_se(a), _se(b)) if a and b else float("nan")  # of either one-day claim
    dof = welch_dof(_se(a), a["n"], _se(b), b["n"]) if a and b else None
    if a and b:
        gap = a["mean"] - b["mean"]
        out.append(f"- T500 ahead at 1 day: {100 * gap:+.2f} ± {100 * se:.2f} points (published "
                   f"{PUBLISHED_ONE_DAY_GAP_T500_MINUS_RESNET32:+.2f}): "
                   f"**{verdict(gap, se, PUBLISHED_ONE_DAY_GAP_T500_MINUS_RESNET32, dof)}**.")
    if a and b and t500["fp32"] and resnet["fp32"]:
        # the same claim with each network's own FP32 accuracy taken out (fairer when the two
        # networks reach different FP32 accuracies); published: T500 the more robust
        less = (resnet["fp32"] - b["mean"]) - (t500["fp32"] - a["mean"])
        out.append(f"- Loss from its own FP32 at 1 day: T500 {100 * (t500['fp32'] - a['mean']):.2f}"
                   f", ResNet-32 {100 * (resnet['fp32'] - b['mean']):.2f}; T500 loses "
                   f"{100 * less:+.2f} ± {100 * se:.2f} points less (published: T500 the more "
                   f"robust): **{verdict(less, se, 1.0, dof)}**.")
    if all(r["cells"][0] and r["cells"][month] for r in (t500, resnet)):
        (dt, st, nt), (dr, sr, nr) = (drop_with_error(r["cells"][0], r["cells"][month])
                                      for r in (t500, resnet))
        published = PUBLISHED_DROP_ONE_MONTH["resnet32"] - PUBLISHED_DROP_ONE_MONTH["t500"]
        less, se = dr - dt, math.hypot(st, sr)
        dof = satterthwaite_dof([(st, nt), (sr, nr)])
        first = LABELS.get(times[0], f"{times[0]:g} s")
        out.append(f"- Drop from {first} to 1 month (paired over programmings): T500 "
                   f"{100 * dt:.2f} ± {100 * st:.2f}, ResNet-32 {100 * dr:.2f} ± {100 * sr:.2f}; "
                   f"T500 loses {100 * less:+.2f} ± {100 * se:.2f} points less (published "
                   f"{published:+.2f}): **{verdict(less, se, published, dof)}**.")
    return out


def one_day_gap(rows: list[dict], times=F2_TIMES) -> float | None:
    """Accuracy of T500 minus that of ResNet-32 at one day (86,400 s), in points, or None
    when either network or that time is missing from the compared studies."""
    t500, resnet32 = _t500_and_resnet32_at(rows, times, 86400.0)
    if not t500 or not resnet32:
        return None
    return 100 * (t500["mean"] - resnet32["mean"])


def _t500_and_resnet32_at(rows: list[dict], times, t: float) -> tuple[dict | None, dict | None]:
    """The cells of T500 and of ResNet-32 at time ``t`` (None where missing)."""
    if t not in times:
        return None, None
    k = list(times).index(t)
    at_t = {r["model"]: r["cells"][k] for r in rows}
    return at_t.get("t500"), at_t.get("resnet32")


def plot_compare(rows: list[dict], path: str | os.PathLike, title: str,
                 times=F2_TIMES) -> None:
    """Accuracy (mean, error bar one std over programmings) of each network at ``times``."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    xs = range(len(times))
    fp32 = {r["fp32"] for r in rows if r["fp32"] is not None}
    if len(fp32) == 1:  # one FP32 network behind every row that measured it
        value = 100 * fp32.pop()
        ax.axhline(value, color="k", ls="--", lw=1.2, label=f"FP32 ({value:.2f}%)")
    for r in rows:
        means = [100 * c["mean"] if c else float("nan") for c in r["cells"]]
        errs = [100 * c["std"] if c else 0 for c in r["cells"]]
        ax.errorbar(xs, means, yerr=errs, marker="o", capsize=3, label=r.get("label", r["model"]))
    ax.set_xticks(list(xs), [LABELS.get(t, f"{t:.3g} s") for t in times])
    if len(times) > 6:
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.set_xlabel("time since programming")
    ax.set_ylabel("CIFAR-10 test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
