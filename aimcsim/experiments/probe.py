"""One measurement used by the diagnostic examples: the test accuracy of a network on analog
tiles, ``time_s`` seconds after programming, averaged over several programmings."""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from aimcsim.data.cifar10 import CifarSplit
from aimcsim.nn import convert_to_analog, program, set_time
from aimcsim.tiles.config import AnalogConfig
from aimcsim.training.trainer import evaluate


def analog_accuracy(base: nn.Module, test: CifarSplit, time_s: float, reps: int,
                    batch_size: int = 250, *, config: AnalogConfig | None = None,
                    exclude: Iterable[str] = ()) -> float:
    """Mean top-1 accuracy (fraction 0-1) over ``reps`` programmings of ``base`` converted
    with ``config`` (default ``AnalogConfig()``), each read ``time_s`` seconds after
    programming. Layers named in ``exclude`` stay digital. Programming ``r`` and its read use
    seed ``r``, so a call repeats exactly and two configs see the same seeds."""
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    exclude = list(exclude)
    accuracies = []
    for rep in range(reps):
        analog = convert_to_analog(base, config, exclude=exclude).eval()
        program(analog, seed=rep)
        set_time(analog, time_s, seed=rep)
        with torch.no_grad():
            accuracies.append(evaluate(analog, test, batch_size))
    return sum(accuracies) / reps
