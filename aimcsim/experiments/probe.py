"""What the diagnostic examples (``examples/layer_sensitivity.py``,
``examples/nonideality_ablation.py``) share: their command line, and one measurement, the
test accuracy of a network on analog tiles ``time_s`` seconds after programming, averaged over
several programmings."""
from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from aimcsim.data.cifar10 import CifarSplit, load_cifar10
from aimcsim.data.loader import calibration_batches
from aimcsim.models import MODEL_NAMES, build_model
from aimcsim.nn import (adapt_batchnorm, calibrate_input_ranges, convert_to_analog, program,
                        set_time)
from aimcsim.threads import set_compute_threads
from aimcsim.tiles.config import AnalogConfig
from aimcsim.training.hwa import load_weights
from aimcsim.training.trainer import evaluate


def analog_accuracy(base: nn.Module, test: CifarSplit, time_s: float, reps: int,
                    batch_size: int = 250, *, config: AnalogConfig | None = None,
                    exclude: Iterable[str] = (),
                    calibration: Sequence[torch.Tensor] | None = None,
                    adabs: Sequence[torch.Tensor] | None = None) -> float:
    """Mean top-1 accuracy (fraction 0-1) over ``reps`` programmings: the mean of
    :func:`analog_accuracies`."""
    accuracies = analog_accuracies(base, test, time_s, reps, batch_size, config=config,
                                   exclude=exclude, calibration=calibration, adabs=adabs)
    return sum(accuracies) / reps


def analog_accuracies(base: nn.Module, test: CifarSplit, time_s: float, reps: int,
                      batch_size: int = 250, *, config: AnalogConfig | None = None,
                      exclude: Iterable[str] = (),
                      calibration: Sequence[torch.Tensor] | None = None,
                      adabs: Sequence[torch.Tensor] | None = None) -> list[float]:
    """Top-1 accuracy (fraction 0-1) of each of ``reps`` programmings of ``base`` converted
    with ``config`` (default ``AnalogConfig()``), each read ``time_s`` seconds after
    programming. Layers named in ``exclude`` stay digital; ``calibration`` (input batches)
    fixes the input ranges of ``input_scaling="static"``; ``adabs`` (training batches, e.g.
    :func:`aimcsim.data.calibration_batches`) re-measures the batch norms after the read
    (:func:`aimcsim.adapt_batchnorm`). Programming ``r`` and its read use seed ``r``, so a
    call repeats exactly and two configs see the same seeds."""
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    exclude = list(exclude)
    accuracies = []
    for rep in range(reps):
        analog = convert_to_analog(base, config, exclude=exclude).eval()
        if calibration is not None:
            calibrate_input_ranges(analog, calibration)
        program(analog, seed=rep)
        set_time(analog, time_s, seed=rep)
        if adabs is not None:
            adapt_batchnorm(analog, adabs)
        with torch.no_grad():
            accuracies.append(evaluate(analog, test, batch_size))
    return accuracies


def probe_command(description: str, default_time_s: float, out_suffix: str,
                  argv: list[str] | None = None
                  ) -> tuple[argparse.Namespace, nn.Module, CifarSplit, Path]:
    """The command line shared by the diagnostic examples: parse ``--model --weights --time
    --limit --reps --data --threads --adabs --out``, set the torch threads, load the first
    ``--limit`` test images and the weights. Returns the arguments, the network (eval mode), the test
    subset and the output stem (its folder created; default
    ``docs/results/<model>_<out_suffix>``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", required=True, choices=MODEL_NAMES)
    parser.add_argument("--weights", required=True, help="state_dict of the network (.pt)")
    parser.add_argument("--time", type=float, default=default_time_s,
                        help=f"seconds after programming (default {default_time_s:g})")
    parser.add_argument("--limit", type=int, default=1000, help="test images (default 1000)")
    parser.add_argument("--reps", type=int, default=2, help="programmings per run (default 2)")
    parser.add_argument("--data", default=None, help="CIFAR-10 root (default: shared copy)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--adabs", type=int, default=0, metavar="N",
                        help="AdaBS after every read, on the first N training images with the "
                             "training augmentation (0: off; see adabs_batches)")
    parser.add_argument("--out", default=None,
                        help=f"output stem (default docs/results/<model>_{out_suffix})")
    args = parser.parse_args(argv)
    if args.limit < 1 or args.reps < 1 or args.time < 0 or args.adabs < 0:
        parser.error("--limit and --reps must be positive, --time and --adabs non-negative")
    set_compute_threads(args.threads)
    test = load_cifar10(args.data, train=False)
    test = CifarSplit(test.images[:args.limit], test.labels[:args.limit])
    base = load_weights(build_model(args.model), args.weights).eval()
    stem = Path(args.out or f"docs/results/{args.model}_{out_suffix}")
    stem.parent.mkdir(parents=True, exist_ok=True)
    return args, base, test, stem


def adabs_batches(args: argparse.Namespace, batch_size: int = 250
                  ) -> list[torch.Tensor] | None:
    """The AdaBS calibration batches of ``--adabs N``: the first N training images with the
    training augmentation (seed 0), as the drift studies use them; None when N is 0."""
    if not args.adabs:
        return None
    return calibration_batches(load_cifar10(args.data, train=True), args.adabs, batch_size)
