"""Stochastic weight averaging (SWA): the mean of the weights at several points of training.

Izmailov et al. (2018) average the weights that SGD visits with a constant (or cyclic) learning
rate; the mean lies nearer the centre of the flat region SGD wanders in and usually tests
better than any single point of it. The batch-norm running statistics of the averaged weights
are not the average of the visited ones, so they are measured again with one pass over the
training data (:func:`recompute_batchnorm_statistics`).

    w_avg(n) = w_avg(n-1) + (w(n) - w_avg(n-1)) / n      (running mean over n snapshots)
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from aimcsim.nn.batchnorm import reestimate_batchnorm


class WeightAverage:
    """Running mean of a model's trainable parameters, one snapshot at a time.

    Only parameters are averaged; buffers (batch-norm running statistics) are measured again
    after the averaged weights are loaded.
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean: dict[str, torch.Tensor] = {}

    def add(self, model: nn.Module) -> None:
        """Add the model's current parameters as one more snapshot."""
        params = {name: p.detach() for name, p in model.named_parameters()}
        if self.count and params.keys() != self.mean.keys():
            raise ValueError("the model's parameters differ from the averaged ones")
        self.count += 1
        for name, value in params.items():
            if self.count == 1:
                self.mean[name] = value.clone().float()
            else:
                self.mean[name] += (value.float() - self.mean[name]) / self.count

    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the model's parameters with the averaged ones."""
        if not self.count:
            raise ValueError("no snapshot has been averaged yet")
        with torch.no_grad():
            for name, param in model.named_parameters():
                param.copy_(self.mean[name].to(param.dtype))

    def state_dict(self) -> dict:
        return {"count": self.count, "mean": dict(self.mean)}

    def load_state_dict(self, state: dict) -> None:
        self.count = int(state["count"])
        self.mean = {name: value.clone() for name, value in state["mean"].items()}


@torch.no_grad()
def recompute_batchnorm_statistics(model: nn.Module,
                                   batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> int:
    """Measure every batch-norm layer's running mean and variance again over ``batches``
    ((images, labels) pairs) with the whole model in training mode and no gradients
    (:func:`aimcsim.nn.batchnorm.reestimate_batchnorm`). Returns the number of images seen; a
    model without batch norm is left as it is and returns 0.

    Raises:
        ValueError: ``batches`` is empty (the model is then left as it was).
    """
    return reestimate_batchnorm(model, (x for x, _ in batches))
