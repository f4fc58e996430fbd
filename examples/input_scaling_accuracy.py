"""What does a convolution's input scaling cost? The same network read with each
``PeripheryConfig.input_scaling`` mode (per_patch, the default; per_patch_exact, its unfolded
reference; per_image; static) at a few times after programming, with paired seeds: programming
``r`` of every mode draws the same devices, so the differences between modes are paired. The
reference computes its GEMMs in float32; the other modes use the default
``gemm_precision`` (bfloat16 since 2026-12-01; the stored ``resnet32.md`` predates it and
measured every mode in float32).

    python examples/input_scaling_accuracy.py --model resnet32 \
        --weights checkpoints/resnet32_swa_low/model.pt [--times 1,86400] [--limit 2000] \
        [--reps 3] [--out docs/results/input_scaling/resnet32]

Writes ``<out>.md`` (accuracy per mode and time: mean over programmings, their standard
deviation and standard error, and the paired difference to the exact reference with its
standard error) and ``<out>.json`` (every programming's accuracy). The static mode calibrates
each layer's input range on ``--calibration`` training images (their largest input).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from aimcsim.data import iterate_batches, load_cifar10
from aimcsim.data.cifar10 import CifarSplit
from aimcsim.experiments.probe import analog_accuracies
from aimcsim.experiments.stats import mean_and_se, paired_difference
from aimcsim.models import MODEL_NAMES, build_model
from aimcsim.tiles.config import AnalogConfig
from aimcsim.tiles.periphery import INPUT_SCALING
from aimcsim.training.hwa import load_weights
from aimcsim.training.trainer import evaluate

REFERENCE = "per_patch_exact"


def measure(base, test: CifarSplit, modes: list[str], times: list[float], reps: int,
            calibration: list[torch.Tensor]) -> dict:
    """{mode: {time: {"runs": [...], "seconds": evaluation time per programming}}}."""
    results: dict = {}
    for mode in tqdm(modes, desc="modes"):
        config = AnalogConfig().replace(**{"periphery.input_scaling": mode})
        if mode == REFERENCE:  # the reference is exact in its number format too
            config = config.replace(gemm_precision="float32")
        for t in times:
            start = time.perf_counter()
            runs = analog_accuracies(base, test, t, reps, config=config,
                                     calibration=calibration if mode == "static" else None)
            results.setdefault(mode, {})[f"{t:g}"] = {
                "runs": runs, "seconds": (time.perf_counter() - start) / reps}
    return results


def table(results: dict, digital: float, title: str) -> str:
    lines = [f"# {title}", "", f"digital (these weights, no tiles): {100 * digital:.2f}%", "",
             "| mode | t (s) | accuracy (%) | std between programmings | SE | "
             f"paired difference to {REFERENCE} (SE) | s per programming |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for mode, by_time in results.items():
        for t, entry in by_time.items():
            runs = 100 * np.array(entry["runs"])
            std = runs.std(ddof=1) if runs.size > 1 else 0.0
            diff = ""
            if REFERENCE in results and mode != REFERENCE:
                d, se_d = paired_difference(runs, 100 * np.array(results[REFERENCE][t]["runs"]))
                diff = f"{d:+.2f} ({se_d:.2f})"
            mean, se = mean_and_se(runs)
            lines.append(f"| {mode} | {t} | {mean:.2f} | {std:.2f} | "
                         f"{se:.2f} | {diff} | {entry['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, choices=MODEL_NAMES)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--times", default="1,86400", help="comma-separated seconds")
    parser.add_argument("--modes", default=",".join(INPUT_SCALING))
    parser.add_argument("--limit", type=int, default=2000, help="first N test images")
    parser.add_argument("--reps", type=int, default=3, help="programmings per mode and time")
    parser.add_argument("--calibration", type=int, default=512,
                        help="training images that calibrate the static ranges")
    parser.add_argument("--data", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if set(modes) - set(INPUT_SCALING) or args.reps < 1 or args.limit < 1:
        parser.error(f"--modes takes {INPUT_SCALING}; --reps and --limit must be positive")
    torch.set_num_threads(args.threads)
    times = [float(t) for t in args.times.split(",")]
    test = load_cifar10(args.data, train=False)
    test = CifarSplit(test.images[:args.limit], test.labels[:args.limit])
    train = load_cifar10(args.data, train=True)
    calibration = [x for x, _ in iterate_batches(
        CifarSplit(train.images[:args.calibration], train.labels[:args.calibration]), 256)]
    base = load_weights(build_model(args.model), args.weights).eval()
    stem = Path(args.out or f"docs/results/input_scaling/{args.model}")
    stem.parent.mkdir(parents=True, exist_ok=True)
    digital = evaluate(base, test)
    results = measure(base, test, modes, times, args.reps, calibration)
    title = (f"{args.model} ({Path(args.weights).parent.name}): input scaling modes, "
             f"{args.reps} programmings (paired seeds), first {len(test)} test images, GDC on")
    text = table(results, digital, title)
    stem.with_suffix(".md").write_text(text + "\n")
    stem.with_suffix(".json").write_text(json.dumps(
        {"digital": digital, "results": results, "args": vars(args)}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
