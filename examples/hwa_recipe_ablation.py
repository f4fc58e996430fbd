"""What does each piece of the hardware-aware recipe buy? Several trained networks of one model
(e.g. the FP32 network mapped directly, Gaussian-noise HWA, device-model HWA) read at a few
times after programming, each with and without adaptive batch-norm statistics (AdaBS) and with
tile-wise or column-wise weight scaling, on paired seeds: programming ``r`` of every recipe and
mapping uses the programming seed of drift-study repetition ``r`` and the same read seeds, so
differences between rows are paired.

    python examples/hwa_recipe_ablation.py --model resnet32 \\
        --recipe direct=checkpoints/resnet32_swa_low/model.pt \\
        --recipe gaussian=checkpoints/resnet32_hwa/model.pt \\
        --recipe device=checkpoints/resnet32_hwa_dev/model.pt \\
        [--times 86400,2592000] [--limit 2000] [--reps 3] [--adabs 500] \\
        [--out docs/results/f2/resnet32_hwa_recipes]

Writes ``<out>.md`` (accuracy per recipe, mapping, AdaBS and time: mean over programmings,
standard error, and the drop from the recipe's own digital accuracy) and ``<out>.json`` (every
programming's accuracy). AdaBS re-measures the batch norms on the first ``--adabs`` training
images (with the training augmentation unless ``--adabs-images plain``) after each read; the
network's own statistics are restored before the next read.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from aimcsim.data import CALIBRATION_IMAGES, calibration_batches, load_cifar10
from aimcsim.data.cifar10 import CifarSplit
from aimcsim.experiments.drift import programming_seed, read_seed
from aimcsim.experiments.stats import mean_and_se
from aimcsim.models import MODEL_NAMES, build_model
from aimcsim.nn import adapt_batchnorm, convert_to_analog, program, set_time
from aimcsim.nn.batchnorm import batchnorm_layers
from aimcsim.tiles.config import AnalogConfig
from aimcsim.training.hwa import load_weights
from aimcsim.training.trainer import evaluate

MAPPINGS = ("tile", "column")


def batchnorm_buffers(model: nn.Module) -> list[dict[str, torch.Tensor]]:
    """A copy of every batch norm's running statistics (to undo AdaBS)."""
    return [copy.deepcopy({k: v for k, v in m.state_dict().items() if "running" in k
                           or "num_batches" in k}) for m in batchnorm_layers(model)]


def restore_batchnorm(model: nn.Module, saved: list[dict[str, torch.Tensor]]) -> None:
    for m, state in zip(batchnorm_layers(model), saved):
        m.load_state_dict(state, strict=False)


def measure_recipe(base: nn.Module, test: CifarSplit, calibration: list[torch.Tensor],
                   times: list[float], reps: int, mapping: str, seed: int,
                   batch_size: int) -> dict[str, dict[str, list[float]]]:
    """{"plain" | "adabs": {time: [accuracy of each programming]}} for one network and one
    weight mapping."""
    config = AnalogConfig().replace(**{"mapping.weight_scaling": mapping})
    out: dict[str, dict[str, list[float]]] = {"plain": {}, "adabs": {}}
    for rep in range(reps):
        with torch.no_grad():
            analog = convert_to_analog(base, config).eval()
            program(analog, seed=programming_seed(seed, rep))
        saved = batchnorm_buffers(analog)
        for t in times:
            set_time(analog, t, seed=read_seed(seed, rep, t))
            with torch.no_grad():
                out["plain"].setdefault(f"{t:g}", []).append(evaluate(analog, test, batch_size))
            adapt_batchnorm(analog, calibration)
            with torch.no_grad():
                out["adabs"].setdefault(f"{t:g}", []).append(evaluate(analog, test, batch_size))
            restore_batchnorm(analog, saved)
    return out


def table(results: dict, digital: dict[str, float], title: str, times: list[str]) -> str:
    lines = [f"# {title}", "",
             "Accuracy (%): mean over programmings +- standard error; in brackets the drop from "
             "the recipe's own digital accuracy.", "",
             "| recipe | digital | weight scaling | AdaBS | " + " | ".join(
                 f"t = {t} s" for t in times) + " |",
             "|---|---:|---|---|" + "---:|" * len(times)]
    for recipe, by_mapping in results.items():
        for mapping, by_adabs in by_mapping.items():
            for adabs, by_time in by_adabs.items():
                cells = []
                for t in times:
                    mean, se = mean_and_se(100 * np.array(by_time[t]))
                    cells.append(f"{mean:.2f} +- {se:.2f} "
                                 f"({mean - 100 * digital[recipe]:+.2f})")
                lines.append(f"| {recipe} | {100 * digital[recipe]:.2f} | {mapping} | "
                             f"{'yes' if adabs == 'adabs' else 'no'} | " + " | ".join(cells)
                             + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, choices=MODEL_NAMES)
    parser.add_argument("--recipe", action="append", required=True,
                        help="NAME=WEIGHTS (model.pt); repeat for each recipe")
    parser.add_argument("--times", default="86400,2592000", help="comma-separated seconds")
    parser.add_argument("--mappings", default=",".join(MAPPINGS))
    parser.add_argument("--limit", type=int, default=2000, help="first N test images")
    parser.add_argument("--reps", type=int, default=3, help="programmings per configuration")
    parser.add_argument("--adabs", type=int, default=500, help="AdaBS calibration images")
    parser.add_argument("--adabs-images", choices=CALIBRATION_IMAGES, default="augmented",
                        help="calibration images with the training augmentation (default) or "
                             "as stored (the tables measured before 2026-11-30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--data", default=None, help="CIFAR-10 root (default: shared copy)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    recipes = {}
    for item in args.recipe:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--recipe wants NAME=WEIGHTS, got {item!r}")
        recipes[name] = path
    mappings = args.mappings.split(",")
    if any(m not in MAPPINGS for m in mappings):
        parser.error(f"--mappings must be from {MAPPINGS}, got {args.mappings!r}")
    if args.limit < 1 or args.reps < 1 or args.adabs < 1:
        parser.error("--limit, --reps and --adabs must be positive")
    times = [float(t) for t in args.times.split(",")]
    torch.set_num_threads(args.threads)
    test = load_cifar10(args.data, train=False)
    test = CifarSplit(test.images[:args.limit], test.labels[:args.limit])
    train = load_cifar10(args.data, train=True)
    calibration = calibration_batches(train, args.adabs, args.batch_size, args.adabs_images,
                                      seed=args.seed)
    results: dict = {}
    digital: dict[str, float] = {}
    start = time.perf_counter()
    for name, path in tqdm(recipes.items(), desc="recipes"):
        base = load_weights(build_model(args.model), path).eval()
        with torch.no_grad():
            digital[name] = evaluate(base, test, args.batch_size)
        for mapping in mappings:
            results.setdefault(name, {})[mapping] = measure_recipe(
                base, test, calibration, times, args.reps, mapping, args.seed, args.batch_size)
    stem = Path(args.out or f"docs/results/{args.model}_hwa_recipes")
    stem.parent.mkdir(parents=True, exist_ok=True)
    title = (f"{args.model}: hardware-aware recipes, {args.reps} programmings, first "
             f"{args.limit} test images, GDC on, AdaBS on {args.adabs} {args.adabs_images} "
             "training images")
    time_keys = [f"{t:g}" for t in times]
    stem.with_suffix(".md").write_text(table(results, digital, title, time_keys) + "\n")
    stem.with_suffix(".json").write_text(json.dumps(
        {"recipes": recipes, "digital": digital, "results": results, "args": vars(args),
         "seconds": time.perf_counter() - start}, indent=1) + "\n")
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
