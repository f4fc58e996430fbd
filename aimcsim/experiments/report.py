"""A drift study's results as Markdown: every measured point, and for the F1 network the
published F1 readings beside them (targets.md F1).

The published figure gives approximate readings, not tables; ``PUBLISHED_F1`` holds them as
(low, high) ranges in % at the times they were read off. ``f1_report`` picks, per series, the
study's time point nearest (in log time, within half a decade) to each reading time and says
whether the measured mean lies inside the range. The readings belong to the F1 network only:
:func:`study_report` shows them for ``f1net`` and, for any other network, the measured table
alone.
"""
from __future__ import annotations

import math

#: Readings of figure F1 (targets.md): series -> [(time in s, low %, high %, note)].
#: "~0" means right after programming: compared with the study's earliest time.
PUBLISHED_F1: dict[str, list[tuple[float, float, float, str]]] = {
    "fp32": [(0.0, 90.0, 92.0, "about 92% (90% in another version)")],
    "hwa": [(0.0, 90.0, 92.0, "about 91% right after programming"),
            (10.0, 89.0, 91.0, "90% at 10 s"),
            (1e5, 89.0, 90.0, "89-90% at 1e5 s")],
    "direct": [(0.0, 85.0, 89.0, "about 89% (85%) right after programming"),
               (10.0, 68.0, 85.0, "about 75% near 10 s, single runs 68-85%"),
               (1e5, 68.0, 85.0, "ending near 81%, single runs 68-85%")],
}
SERIES_NAMES = {"fp32": "FP32", "hwa": "custom (hardware-aware)", "direct": "direct mapping"}
#: A reading is compared with a measured time at most this far away, in decades of time.
MAX_LOG10_DISTANCE = 0.5


def _log_distance(row: dict, t: float) -> float:
    return abs(math.log10(max(row["t"], 1e-12)) - math.log10(t))


def _nearest(rows: list[dict], t: float) -> dict | None:
    """The row whose time is nearest to ``t`` in log time (t = 0: the earliest row), or None
    when no row lies within :data:`MAX_LOG10_DISTANCE` decades of ``t``."""
    if not rows:
        return None
    if t <= 0:
        return min(rows, key=lambda r: r["t"])
    row = min(rows, key=lambda r: _log_distance(r, t))
    return row if _log_distance(row, t) <= MAX_LOG10_DISTANCE else None


def _cell(row: dict) -> str:
    return (f"{100 * row['mean']:.2f} ± {100 * row['std']:.2f} "
            f"({100 * row['min']:.2f}-{100 * row['max']:.2f})")


def measured_table(results: dict, gdc: bool = True) -> str:
    """Markdown table of every measured point of one GDC setting: per series and time, the
    accuracy mean ± std (min-max) over programmings in %, and the number of programmings."""
    lines = [f"Measured ({results['model']}, GDC {'on' if gdc else 'off'}):", "",
             "| series | t (s) | accuracy mean ± std (min-max), % | programmings |",
             "|---|---:|---|---:|"]
    if results.get("fp32") is not None:
        lines.append(f"| FP32 | - | {100 * results['fp32']:.2f} | - |")
    for row in results["rows"]:
        if row["gdc"] == gdc:
            lines.append(f"| {SERIES_NAMES[row['series']]} | {row['t']:.3g} | {_cell(row)} "
                         f"| {row['n']} |")
    return "\n".join(lines)


def study_device(results: dict):
    """The device model a study ran on (from its analog config), or None for results that
    do not record one."""
    from aimcsim.devices import device_from_dict
    try:
        return device_from_dict(results["config"]["analog"]["device"])
    except (KeyError, TypeError, ValueError):
        return None


def study_report(results: dict, gdc_settings=(True, False)) -> str:
    """The report of a drift study: the device model, the measured table per GDC setting, and
    for the F1 network (``f1net``) on the PCM model the comparison with the published F1
    readings (which were measured with PCM)."""
    device = study_device(results)
    parts = [f"Device model: {device.label}."] if device is not None else []
    on_pcm = device is None or type(device).__name__ == "PCMDevice"
    for gdc in gdc_settings:
        parts.append(measured_table(results, gdc))
        if results["model"] == "f1net" and on_pcm:
            parts.append(f1_report(results, gdc))
    return "\n\n".join(parts)


def f1_report(results: dict, gdc: bool = True) -> str:
    """Markdown table: per series and published reading, the measured mean +- std (min-max
    over programmings) at the nearest time (readings with no measured time within half a
    decade are left out), the published range, and whether it falls inside."""
    lines = [f"Measured ({results['model']}, GDC {'on' if gdc else 'off'}) beside the readings "
             f"of F1 (targets.md):", "",
             "| series | t (s) | measured mean ± std (min-max), % | published | inside |",
             "|---|---:|---|---|---|"]
    for series, readings in PUBLISHED_F1.items():
        for t, low, high, note in readings:
            if series == "fp32":
                if results.get("fp32") is None:
                    continue
                acc = 100 * results["fp32"]
                cell, t_cell, inside = f"{acc:.2f}", "-", low <= acc <= high
            else:
                rows = [r for r in results["rows"] if r["series"] == series and r["gdc"] == gdc]
                row = _nearest(rows, t)
                if row is None:
                    continue
                mean = 100 * row["mean"]
                cell, t_cell, inside = _cell(row), f"{row['t']:.3g}", low <= mean <= high
            lines.append(f"| {SERIES_NAMES[series]} | {t_cell} | {cell} | {note} | "
                         f"{'yes' if inside else 'no'} |")
    return "\n".join(lines)
