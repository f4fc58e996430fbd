"""Which images should AdaBS calibrate on? Re-measure a *digital* network's batch-norm
statistics on the first N training images, plain or with the training augmentation (crop +
flip), and compare its test accuracy with its stored statistics. No tiles are involved, so
any loss is the calibration images' own bias, which AdaBS on tiles would add to the analog
network's loss.

    python examples/batchnorm_calibration_images.py --model resnet32 \\
        --weights checkpoints/resnet32_swa_low/model.pt [--counts 500,2000] \\
        [--out docs/results/adabs_images/resnet32_swa_low]

Writes ``<out>.md`` (accuracy per calibration set, full test set unless ``--limit``) and
``<out>.json``. Deterministic: the augmentation is drawn from ``--seed``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tqdm.auto import tqdm

from aimcsim.data import CALIBRATION_IMAGES, CifarSplit, calibration_batches, load_cifar10
from aimcsim.models import MODEL_NAMES, build_model
from aimcsim.nn.batchnorm import reestimate_batchnorm
from aimcsim.training.hwa import load_weights
from aimcsim.training.trainer import evaluate


def calibrated_accuracy(model_name: str, weights: str, train: CifarSplit, test: CifarSplit,
                        count: int, images: str, seed: int, batch_size: int) -> float:
    """Test accuracy (0-1) of the digital network with its batch norms re-measured on the
    first ``count`` training images prepared as ``images``."""
    model = load_weights(build_model(model_name), weights).eval()
    batches = calibration_batches(train, count, batch_size, images, seed=seed)
    reestimate_batchnorm(model, batches, only_batchnorm_trains=True)
    return evaluate(model, test, batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODEL_NAMES, required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--counts", default="500,2000", help="calibration set sizes")
    parser.add_argument("--limit", type=int, default=None, help="first N test images only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=None, help="CIFAR-10 root (default: shared copy)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    torch.set_num_threads(args.threads)
    train = load_cifar10(args.data, train=True)
    test = load_cifar10(args.data, train=False, limit=args.limit)
    stored = evaluate(load_weights(build_model(args.model), args.weights).eval(), test,
                      args.batch_size)
    rows = {"stored statistics": stored}
    for count in tqdm(counts, desc="calibration sets"):
        for images in CALIBRATION_IMAGES:
            rows[f"{count} {images}"] = calibrated_accuracy(
                args.model, args.weights, train, test, count, images, args.seed,
                args.batch_size)
    lines = [f"{args.model} `{args.weights}`, digital, batch norms re-measured on training "
             f"images; {len(test)} test images (sampling SE about "
             f"{100 * (stored * (1 - stored) / len(test)) ** 0.5:.2f} points)", "",
             "| batch-norm statistics | accuracy (%) | against stored |", "|---|---:|---:|"]
    lines += [f"| {name} | {100 * acc:.2f} | {100 * (acc - stored):+.2f} |"
              for name, acc in rows.items()]
    stem = Path(args.out or f"docs/results/adabs_images/{args.model}")
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    stem.with_suffix(".json").write_text(json.dumps({"args": vars(args), "accuracy": rows},
                                                    indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
