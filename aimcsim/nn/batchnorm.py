"""Re-measuring batch-norm statistics: for weight averaging (the whole model in training
mode) and for adaptive batch-norm statistics on analog tiles (AdaBS, Joshi et al. 2020: the
analog layers read their programmed tiles, only the batch norms learn their statistics).
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable

import torch
from torch import nn

from aimcsim.nn.layers import ANALOG_LAYERS


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def reestimate_batchnorm(model: nn.Module, inputs: Iterable[torch.Tensor],
                         only_batchnorm_trains: bool = False) -> int:
    """Reset every batch-norm layer's running mean and variance and measure them again as the
    plain average over ``inputs`` (``momentum=None``), with no gradients.

    With ``only_batchnorm_trains`` the rest of the model stays in eval mode (analog layers read
    their programmed tiles, dropout is off); otherwise the whole model runs in training mode.
    Modes and momenta are restored afterwards. Batch-norm weights and biases never change.
    Returns the number of samples seen (0 for a model without batch norm, left untouched).

    Raises:
        ValueError: ``inputs`` is empty (the model is then left as it was).
    """
    norms = batchnorm_layers(model)
    if not norms:
        return 0
    inputs = iter(inputs)
    first = next(inputs, None)
    if first is None:
        raise ValueError("no batches to measure the batch-norm statistics on")
    momenta = [m.momentum for m in norms]
    modes = [(m, m.training) for m in model.modules()]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    if only_batchnorm_trains:
        model.eval()
        for m in norms:
            m.train()
    else:
        model.train()
    seen = 0
    try:
        with torch.no_grad():
            for x in itertools.chain([first], inputs):
                model(x)
                seen += x.shape[0]
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        for m, mode in modes:
            m.training = mode
    return seen


def adapt_batchnorm(model: nn.Module, inputs: Iterable[torch.Tensor]) -> int:
    """Adaptive batch-norm statistics (AdaBS) of a programmed analog model at its current read
    time: the batch norms' running mean and variance are re-measured over ``inputs``
    (calibration images, e.g. a few hundred training images) passed through the analog
    network, so they match the drifted, noisy layer outputs. Call it after
    :func:`aimcsim.program` / :func:`aimcsim.set_time`, again after every ``set_time``.
    Prepare the images as in training (:func:`aimcsim.data.calibration_batches` applies the
    crop + flip augmentation): statistics re-measured on plain images cost a digital ResNet-32
    about a point (docs/usage.md).
    Batch-norm weights and biases, and the float weights, are unchanged. Returns the number of
    images seen."""
    layers = [m for m in model.modules() if isinstance(m, ANALOG_LAYERS)]
    if not layers:
        raise ValueError("model has no analog layers; call aimcsim.convert_to_analog first")
    if not all(layer.is_programmed for layer in layers):
        raise ValueError("adapt_batchnorm needs a programmed model; call aimcsim.program first")
    return reestimate_batchnorm(model, inputs, only_batchnorm_trains=True)
