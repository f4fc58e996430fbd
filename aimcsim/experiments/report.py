"""A drift study's results beside the published F1 readings (targets.md F1), as Markdown.

The published figure gives approximate readings, not tables; ``PUBLISHED_F1`` holds them as
(low, high) ranges in % at the times they were read off. ``f1_report`` picks, per series, the
study's time point nearest (in log time) to each reading time and says whether the measured
mean lies inside the range.
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


def _nearest(rows: list[dict], t: float) -> dict | None:
    """The row whose time is nearest to ``t`` in log time (t = 0: the earliest row)."""
    if not rows:
        return None
    if t <= 0:
        return min(rows, key=lambda r: r["t"])
    return min(rows, key=lambda r: abs(math.log10(max(r["t"], 1e-12)) - math.log10(t)))


def f1_report(results: dict, gdc: bool = True) -> str:
    """Markdown table: per series and published reading, the measured mean +- std (min-max
    over programmings) at the nearest time, the published range, and whether it falls inside."""
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
                cell = (f"{mean:.2f} ± {100 * row['std']:.2f} "
                        f"({100 * row['min']:.2f}-{100 * row['max']:.2f})")
                t_cell, inside = f"{row['t']:.3g}", low <= mean <= high
            lines.append(f"| {SERIES_NAMES[series]} | {t_cell} | {cell} | {note} | "
                         f"{'yes' if inside else 'no'} |")
    return "\n".join(lines)
