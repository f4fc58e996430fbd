"""Conductance distributions of PCM devices programmed to a few target levels, just after
programming and read at 1 s, 1 h, 1 day and 1 year (drift + read noise), one panel per time.

    python examples/plot_conductance_distributions.py [--out PNG] [--devices 100000] [--seed 0]

(default PNG: docs/results/conductance_distributions.png)

Uses the default :class:`aimcsim.devices.PCMDevice` (docs/physics.md sections 1-4). Runs in a
few seconds.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from aimcsim.devices import PCMDevice  # noqa: E402

#: Target levels as fractions of g_max.
LEVELS = (0.1, 0.3, 0.6, 1.0)
#: (label, time in seconds); None = right after programming (G_prog, no read).
TIMES = (("just programmed", None), ("t = 1 s", 1.0), ("t = 1 hour", 3600.0),
         ("t = 1 day", 86400.0), ("t = 1 year", 365 * 86400.0))
DEFAULT_OUT = Path("docs/results/conductance_distributions.png")


def simulate(devices: int, seed: int) -> tuple[PCMDevice, dict[float, list[np.ndarray]]]:
    """Program ``devices`` devices per level; return, per level, the conductances (µS) at each
    entry of TIMES."""
    device = PCMDevice()
    rng = np.random.default_rng(seed)
    results = {}
    for level in LEVELS:
        state = device.program(np.full(devices, level * device.g_max, np.float32), rng)
        results[level] = [state.g_prog if t is None else device.read(state, t, rng)
                          for _, t in TIMES]
    return device, results


def plot(device: PCMDevice, results: dict[float, list[np.ndarray]], out: Path) -> None:
    """One panel per time, one histogram per target level, targets as dashed lines."""
    g_max = device.g_max
    bins = np.linspace(0, 1.25 * g_max, 251)
    colors = plt.cm.viridis(np.linspace(0.05, 0.85, len(LEVELS)))
    fig, axes = plt.subplots(len(TIMES), 1, figsize=(11, 10), sharex=True, sharey=True)
    for row, (ax, (label, _)) in enumerate(zip(axes, TIMES)):
        for color, level in zip(colors, LEVELS):
            g = results[level][row]
            ax.hist(g, bins=bins, density=True, histtype="stepfilled", alpha=0.35, color=color)
            ax.hist(g, bins=bins, density=True, histtype="step", color=color, lw=1.2,
                    label=f"target {level * g_max:g} µS (median {np.median(g):.1f} µS)")
            ax.axvline(level * g_max, color=color, ls="--", lw=0.8)
        ax.set_title(label, loc="left", fontsize=10)
        ax.set_ylabel("density (1/µS)")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("conductance G (µS)")
    axes[-1].set_xlim(bins[0], bins[-1])
    n = len(next(iter(results.values()))[0])
    fig.suptitle(f"PCM conductance distributions ({n:,} devices per target; dashed: target)\n"
                 "programming noise, drift with per-device exponent, 1/f read noise",
                 fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    parser.add_argument("--devices", type=int, default=100_000, help="devices per target level")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.devices < 1:
        parser.error("--devices must be >= 1")
    device, results = simulate(args.devices, args.seed)
    plot(device, results, args.out)
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
