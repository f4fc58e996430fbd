"""Pictures of the system model: the memory plan (F3) and the pipeline heatmap (F4)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aimcsim.system.memory import MemoryPlan
from aimcsim.system.pipeline import Schedule

KIND_COLOURS = {"conv": "#1f77b4", "pool": "#ff7f0e", "res": "#2ca02c", "fc": "#d62728",
                "cat": "#9467bd", "other": "#7f7f7f"}


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _duration(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.3g} µs"
    return f"{seconds * 1e9:.3g} ns"


def _kib(value: float) -> str:
    return f"{value / 1024:.1f} KiB" if value < 1024 ** 2 else f"{value / 1024 ** 2:.2f} MiB"


def _draw_buffers(ax, plan: MemoryPlan, label_min: float, scale: float) -> None:
    from matplotlib.patches import Rectangle
    cmap = _pyplot().get_cmap("tab20")
    left, right = -0.5, plan.steps - 0.5
    small, filters = [], 0
    for i, b in enumerate(plan.weights):
        colour = "#c7c7c7" if i % 2 else "#a5a5a5"
        if b.label.startswith("filter"):
            colour = "#8c6d31" if filters % 2 else "#bd9e39"
            filters += 1
        ax.add_patch(Rectangle((left, b.offset / scale), right - left, b.padded / scale,
                               facecolor=colour, edgecolor="white", linewidth=0.3))
        if b.padded >= label_min:
            ax.text(0.0, (b.offset + b.padded / 2) / scale, b.label, va="center", ha="left",
                    fontsize=7, clip_on=True)
        else:
            small.append(b)
    if 0 < len(plan.weights) <= 16:  # few weights: name the thin ones beside the bar
        for k, b in enumerate(small):
            ax.annotate(b.label, xy=(right, (b.offset + b.padded / 2) / scale),
                        xytext=(right + 0.15, (b.offset + b.padded / 2) / scale
                                + (k - (len(small) - 1) / 2) * label_min * 0.6 / scale),
                        fontsize=7, va="center", annotation_clip=False,
                        arrowprops={"arrowstyle": "-", "linewidth": 0.5})
    for j, b in enumerate(plan.activations):
        x0, x1 = b.first_step - 0.45, b.last_step + 0.45
        ax.add_patch(Rectangle((x0, b.offset / scale), x1 - x0, b.padded / scale,
                               facecolor=cmap(j % 20), edgecolor="black", linewidth=0.4,
                               alpha=0.9))
        if b.padded >= label_min:
            ax.text((x0 + x1) / 2, (b.offset + b.padded / 2) / scale, b.label, ha="center",
                    va="center", fontsize=7, clip_on=True)


def plot_memory_plan(plan: MemoryPlan, path: str | Path, *,
                     step_labels: Sequence[str] | None = None, title: str = "") -> Path:
    """Draw a memory plan: address (KiB) upwards, steps to the right; weights as bars across
    all steps from address 0, activations as boxes over their lifetimes below the top.
    When the activation region is small, a second panel zooms into it."""
    plt = _pyplot()
    scale = 1024.0
    zoom = plan.activation_peak < 0.25 * plan.capacity and plan.activation_peak > 0
    width = min(16.0, max(7.0, 0.28 * plan.steps + 5))
    if zoom:
        fig, (ax_zoom, ax) = plt.subplots(2, 1, figsize=(width, 9), sharex=True,
                                          gridspec_kw={"height_ratios": [1.3, 1]})
    else:
        fig, ax = plt.subplots(figsize=(width, 6))
        ax_zoom = None
    floor = plan.capacity - plan.activation_peak
    for axis, label_min in ((ax, 0.04 * plan.capacity),
                            (ax_zoom, 0.06 * plan.activation_peak)):
        if axis is None:
            continue
        _draw_buffers(axis, plan, label_min, scale)
        axis.axhline(plan.weights_end / scale, color="black", linestyle="--", linewidth=0.8)
        axis.axhline(floor / scale, color="red", linestyle="--", linewidth=0.8)
        axis.set_xlim(-0.6, plan.steps - 0.4)
        axis.set_ylabel("address (KiB)")
        axis.grid(axis="y", alpha=0.3)
    ax.set_ylim(0, plan.capacity / scale * 1.02)
    ax.text(plan.steps - 0.5, plan.weights_end / scale, f"weights end {_kib(plan.weights_end)} ",
            ha="right", va="top", fontsize=8)
    ax.text(plan.steps - 0.5, floor / scale, f"activation floor (peak "
            f"{_kib(plan.activation_peak)}) ", ha="right", va="bottom", fontsize=8, color="red")
    ax.annotate("", xy=(-0.55, plan.weights_end / scale * 0.9), xytext=(-0.55, 0),
                arrowprops={"arrowstyle": "->", "color": "black"})
    ax.annotate("", xy=(-0.55, floor / scale), xytext=(-0.55, plan.capacity / scale),
                arrowprops={"arrowstyle": "->", "color": "red"})
    if ax_zoom is not None:
        margin = 0.04 * plan.activation_peak
        ax_zoom.set_ylim((floor - margin) / scale, (plan.capacity + margin) / scale)
    ticks = list(range(plan.steps))
    labels = list(step_labels) if step_labels is not None else [str(s) for s in ticks]
    if len(labels) != plan.steps:
        raise ValueError(f"step_labels has {len(labels)} entries for {plan.steps} steps")
    every = max(1, math.ceil(plan.steps / 40))
    ax.set_xticks(ticks[::every])
    ax.set_xticklabels(labels[::every], rotation=60 if plan.steps > 8 else 0, ha="right"
                       if plan.steps > 8 else "center", fontsize=8)
    ax.set_xlabel("step (0: network input; i + 1: layer i runs)")
    facts = (f"{plan.strategy}: weights {_kib(plan.weights_end)} from address 0 up, "
             f"activations peak {_kib(plan.activation_peak)} from the top down\n"
             f"(without reuse {_kib(plan.no_reuse_bytes)}; boxes: buffers over their "
             f"lifetimes)")
    if ax_zoom is not None:
        ax_zoom.set_title("activation region (zoom)", fontsize=9)
        ax.set_title("whole memory", fontsize=9)
        fig.suptitle((title + "\n" if title else "") + facts, fontsize=10)
    else:
        ax.set_title((title + "\n" if title else "") + facts, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def occupancy(schedule: Schedule, step_s: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(busy fraction, batch) per layer and time step of ``step_s`` seconds; batch -1 = idle."""
    n = len(schedule.times)
    busy = np.zeros((n, steps))
    batch = -np.ones((n, steps), dtype=int)
    for layer in range(n):
        for k in range(steps):
            t0, t1 = k * step_s, (k + 1) * step_s
            busy[layer, k] = schedule.busy(layer, t0, t1) / step_s
            b = schedule.batch_at(layer, t0, t1)
            batch[layer, k] = -1 if b is None or busy[layer, k] == 0 else b
    return busy, batch


def plot_pipeline(schedule: Schedule, path: str | Path, *, step_s: float | None = None,
                  title: str = "", max_steps: int = 80) -> Path:
    """Heatmap of the pipeline: one row per layer, one column per time step, coloured by layer
    type where the layer is busy (shade = busy fraction of the step), the batch number written
    in the cell. Default step: the pipeline interval."""
    plt = _pyplot()
    from matplotlib.patches import Patch
    from matplotlib.colors import to_rgb
    if step_s is None:
        step_s = schedule.interval or schedule.makespan or 1.0
    if not step_s > 0:
        raise ValueError(f"step_s must be > 0, got {step_s}")
    steps = max(1, min(max_steps, math.ceil(schedule.makespan / step_s - 1e-9)))
    busy, batch = occupancy(schedule, step_s, steps)
    n = len(schedule.times)
    image = np.ones((n, steps, 3))
    for layer, t in enumerate(schedule.times):
        colour = np.array(to_rgb(KIND_COLOURS.get(t.kind, KIND_COLOURS["other"])))
        shade = np.where(busy[layer] > 0, 0.35 + 0.65 * np.clip(busy[layer], 0, 1), 0.0)
        image[layer] = 1 - shade[:, None] * (1 - colour[None, :])
    fig, ax = plt.subplots(figsize=(min(18, max(8, 3 + 0.4 * steps)), min(14, 2 + 0.3 * n)))
    ax.imshow(image, aspect="auto", interpolation="nearest")
    if steps <= 60 and n <= 60:
        for layer in range(n):
            for k in range(steps):
                if batch[layer, k] >= 0:
                    dark = busy[layer, k] > 0.5
                    ax.text(k, layer, str(batch[layer, k]), ha="center", va="center",
                            fontsize=7, color="white" if dark else "black")
    ax.set_yticks(range(n))
    ax.set_yticklabels([f"{i} {t.kind}" for i, t in enumerate(schedule.times)], fontsize=7)
    ax.set_xticks(range(0, steps, max(1, steps // 20)))
    ax.set_xlabel(f"time step ({_duration(step_s)} each)")
    ax.set_ylabel("layer")
    ax.set_xticks(np.arange(-0.5, steps, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, n, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    kinds = [k for k in KIND_COLOURS if any(t.kind == k for t in schedule.times)]
    ax.legend(handles=[Patch(color=KIND_COLOURS[k], label=k) for k in kinds],
              loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncol=len(kinds),
              frameon=False)
    facts = (f"{schedule.batches} batches, one enters every {_duration(schedule.interval)}; "
             f"latency {_duration(float(schedule.latencies[0]))}\n"
             f"cell: batch number; shade: busy fraction of the step")
    ax.set_title((title + "\n" if title else "") + facts, fontsize=9, loc="left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
