"""What does IR drop cost a network? The same network on the default analog configuration,
read at ``--time`` seconds after programming, with no wire resistance and with each segment
resistance of ``--resistances`` (rows and columns alike), with paired seeds: programming ``r``
of every resistance draws the same devices, so the differences to zero resistance are paired.

    python examples/ir_drop_accuracy.py --model resnet32 \
        --weights checkpoints/resnet32_swa_low/model.pt [--resistances 0,0.1,0.3,1,3] \
        [--time 1] [--limit 2000] [--reps 3] [--method decoupled] \
        [--out docs/results/ir_drop/resnet32]

Writes ``<out>.md`` (accuracy per resistance: mean over programmings, standard deviation, SE,
the paired difference to zero resistance with its SE, the weight kept after IR drop, seconds
per programming) and ``<out>.json`` (every programming's accuracy). The weight kept is
sum |W_eff| / sum |W| over every tile of the first programming (W_eff the differences of the
effective conductances): 1 without IR drop. GDC is on as in the default configuration; its
reference is read through the same wires, so it does not undo IR drop.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from aimcsim.data import CifarSplit, load_cifar10
from aimcsim.experiments.stats import mean_and_se, paired_difference
from aimcsim.models import MODEL_NAMES, build_model
from aimcsim.nn import convert_to_analog, program, set_time
from aimcsim.tiles.config import AnalogConfig
from aimcsim.tiles.tile import AnalogTile
from aimcsim.training.hwa import load_weights
from aimcsim.training.trainer import evaluate

#: Command-line defaults (the lead's run); the measurement functions take any values.
DEFAULT_RESISTANCES = "0,0.1,0.3,1,3"


def ir_drop_config(resistance: float, method: str = "decoupled",
                   base: AnalogConfig | None = None) -> AnalogConfig:
    """``base`` (default ``AnalogConfig()``) with every wire segment at ``resistance`` ohms."""
    return (base or AnalogConfig()).replace(**{"ir_drop.r_row_ohm": resistance,
                                               "ir_drop.r_col_ohm": resistance,
                                               "ir_drop.method": method})


def weight_kept(tiles: list[AnalogTile]) -> float:
    """sum |W_eff| / sum |W| over the tiles (1 when IR drop is off)."""
    kept = total = 0.0
    for tile in tiles:
        g = tile.read_conductances
        if g is None:
            return 1.0
        total += float(np.abs(g[0].astype(np.float64) - g[1]).sum()) / tile.config.device.g_max
        kept += float(np.abs(tile.normalized_weights.astype(np.float64)).sum())
    return kept / total if total else 1.0


def measure(base: nn.Module, test: CifarSplit, resistances: list[float], time_s: float,
            reps: int, method: str = "decoupled", batch_size: int = 250) -> dict:
    """{resistance: {"runs": [accuracy per programming], "weight_kept", "seconds"}}."""
    results: dict = {}
    for resistance in tqdm(resistances, desc="resistances"):
        config = ir_drop_config(resistance, method)
        runs, kept = [], None
        start = time.perf_counter()
        for rep in range(reps):
            analog = convert_to_analog(base, config).eval()
            program(analog, seed=rep)
            set_time(analog, time_s, seed=rep)
            if kept is None:
                kept = weight_kept([t for m in analog.modules() for t in getattr(m, "tiles", [])
                                    if isinstance(t, AnalogTile)])
            with torch.no_grad():
                runs.append(evaluate(analog, test, batch_size))
        results[f"{resistance:g}"] = {"runs": runs, "weight_kept": kept,
                                      "seconds": (time.perf_counter() - start) / reps}
    return results


def table(results: dict, digital: float, title: str) -> str:
    lines = [f"# {title}", "", f"digital (these weights, no tiles): {100 * digital:.2f}%", "",
             "| r (ohm/segment) | accuracy (%) | std between programmings | SE | "
             "paired difference to r = 0 (SE) | weight kept | s per programming |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    reference = results.get("0")
    for r, entry in results.items():
        runs = 100 * np.array(entry["runs"])
        std = runs.std(ddof=1) if runs.size > 1 else 0.0
        diff = ""
        if reference is not None and r != "0":
            d, se_d = paired_difference(runs, 100 * np.array(reference["runs"]))
            diff = f"{d:+.2f} ({se_d:.2f})"
        mean, se = mean_and_se(runs)
        lines.append(f"| {r} | {mean:.2f} | {std:.2f} | {se:.2f} "
                     f"| {diff} | {entry['weight_kept']:.4f} | {entry['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, choices=MODEL_NAMES)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--resistances", default=DEFAULT_RESISTANCES,
                        help="comma-separated segment resistances, ohms (0: no IR drop)")
    parser.add_argument("--time", type=float, default=1.0, help="seconds after programming")
    parser.add_argument("--limit", type=int, default=2000, help="first N test images")
    parser.add_argument("--reps", type=int, default=3, help="programmings per resistance")
    parser.add_argument("--method", default="decoupled", choices=("decoupled", "exact"))
    parser.add_argument("--data", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    resistances = [float(r) for r in args.resistances.split(",") if r]
    if min(resistances) < 0 or args.reps < 1 or args.limit < 1 or args.time < 0:
        parser.error("resistances and --time must be >= 0, --reps and --limit positive")
    torch.set_num_threads(args.threads)
    test = load_cifar10(args.data, train=False)
    test = CifarSplit(test.images[:args.limit], test.labels[:args.limit])
    base = load_weights(build_model(args.model), args.weights).eval()
    stem = Path(args.out or f"docs/results/ir_drop/{args.model}")
    stem.parent.mkdir(parents=True, exist_ok=True)
    digital = evaluate(base, test)
    results = measure(base, test, resistances, args.time, args.reps, args.method)
    title = (f"{args.model} ({Path(args.weights).parent.name}): IR drop at t = {args.time:g} s, "
             f"{args.reps} programmings (paired seeds), first {len(test)} test images, "
             f"default config, GDC on, {args.method} model")
    text = table(results, digital, title)
    stem.with_suffix(".md").write_text(text + "\n")
    stem.with_suffix(".json").write_text(json.dumps(
        {"digital": digital, "results": results, "args": vars(args)}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
