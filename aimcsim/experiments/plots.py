"""Figures of the experiments: accuracy over log-time after programming (layout of F1), and
the bar charts of the diagnostic examples."""
from __future__ import annotations

import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STYLE = {"direct": ("tab:red", "Direct mapping of FP32 weights"),
         "hwa": ("tab:blue", "Custom (hardware-aware) training")}


def accuracy_axis_limits(results: dict, floor: float = 60.0) -> tuple[float, float]:
    """Accuracy axis in %: 60-100 as in F1, lowered in steps of 5 points when a single run
    lies below it, so no measured point falls off the picture."""
    lowest = min((100 * r["min"] for r in results["rows"]), default=floor)
    if results.get("fp32") is not None:
        lowest = min(lowest, 100 * results["fp32"])
    return (min(floor, 5.0 * np.floor((lowest - 1.0) / 5.0)), 100.0)


def plot_accuracy_over_time(results: dict, path: str | os.PathLike, title: str | None = None,
                            ylim: tuple[float, float] | None = None) -> tuple[float, float]:
    """One panel per GDC setting: FP32 (dashed), and per analog series the mean with a min-max
    band over programmings plus every single run (thin lines). Log time axis, accuracy in %
    (``ylim``, default :func:`accuracy_axis_limits`). Returns the accuracy axis limits used."""
    ylim = ylim or accuracy_axis_limits(results)
    gdc_values = sorted({r["gdc"] for r in results["rows"]}, reverse=True) or [True]
    fig, axes = plt.subplots(1, len(gdc_values), figsize=(6.2 * len(gdc_values), 4.4),
                             squeeze=False, sharey=True)
    for ax, gdc in zip(axes[0], gdc_values):
        rows = [r for r in results["rows"] if r["gdc"] == gdc]
        times = sorted({r["t"] for r in rows})
        t_min = max(min(times), 1e-5) if times else 1e-5
        t_plot = lambda ts: np.maximum(np.asarray(ts, float), t_min)  # noqa: E731
        if results.get("fp32") is not None:
            ax.axhline(100 * results["fp32"], color="k", ls="--", lw=1.5,
                       label=f"FP32 ({100 * results['fp32']:.2f}%)")
        for series, (colour, label) in STYLE.items():
            srows = sorted((r for r in rows if r["series"] == series), key=lambda r: r["t"])
            if not srows:
                continue
            ts = t_plot([r["t"] for r in srows])
            mean = np.array([100 * r["mean"] for r in srows])
            lo = np.array([100 * r["min"] for r in srows])
            hi = np.array([100 * r["max"] for r in srows])
            runs = np.array([[100 * a for a in r["runs"]] for r in srows
                             if len(r["runs"]) == len(srows[0]["runs"])])
            if runs.shape[0] == len(srows):
                for k in range(runs.shape[1]):
                    ax.plot(ts, runs[:, k], color=colour, lw=0.6, alpha=0.35)
            ax.fill_between(ts, lo, hi, color=colour, alpha=0.15)
            ax.plot(ts, mean, color=colour, lw=2, marker="o", ms=3.5,
                    label=f"{label} (mean of {srows[0]['n']}, band min-max)")
        ax.set_xscale("log")
        ax.set_xlim(1e-5 * 0.7, max(1e5, max(times) if times else 1e5) * 1.4)
        ax.set_ylim(*ylim)
        ax.set_xlabel("time since programming t (s)")
        ax.set_title(f"GDC {'on' if gdc else 'off'}")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("CIFAR-10 test accuracy (%)")
    axes[0][-1].legend(loc="lower left", fontsize=8)
    fig.suptitle(title or f"{results['model']}: PCM accuracy over time after programming")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return ylim


def plot_points_per_item(names: list[str], points: list[float], path: str | os.PathLike,
                         xlabel: str, title: str, color: str = "tab:red") -> None:
    """One horizontal bar per item, first item at the top, with a zero line: the accuracy
    points each layer or setting costs or gives back (the diagnostic examples' charts).
    Title lines longer than 56 characters are wrapped."""
    if len(names) != len(points):
        raise ValueError(f"{len(names)} names but {len(points)} values")
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(names) + 1.6))
    ax.barh(range(len(names)), points, color=color)
    ax.set_yticks(range(len(names)), names, fontsize=8 if len(names) < 16 else 7)
    ax.invert_yaxis()
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_title("\n".join(textwrap.fill(line, 56) for line in title.splitlines()), fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
