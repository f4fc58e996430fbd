"""Knowledge distillation from a float teacher: the training loss of a student network (for
example a hardware-aware network with the device model in its forward pass) that learns the
teacher's soft predictions beside the labels.

Loss of one batch, with student logits ``s``, teacher logits ``z`` (no gradient), labels ``y``,
weight ``a`` and temperature ``T`` (Hinton et al. 2015)::

    L = (1 - a) * CE(s, y) + a * T^2 * KL( softmax(z / T) || softmax(s / T) )

The ``T^2`` keeps the soft term's gradient on the scale of the hard one as ``T`` changes. For
noisy (analog) students the teacher's soft targets say which wrong classes are near, which a
noisy forward pass otherwise has to learn from one-hot labels alone (Zhou et al. 2020, "Noisy
machines"). ``a = 0`` is plain cross-entropy.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from aimcsim.validation import check_float

#: Share ``a`` of the distillation term used when distillation is asked for without one
#: (``train --distill-from``); the measured recipes of docs/results use it.
DEFAULT_DISTILL_WEIGHT = 0.9
#: Softmax temperature ``T`` of the distillation term by default.
DEFAULT_DISTILL_TEMPERATURE = 4.0


class DistillationLoss(nn.Module):
    """``(1 - weight) * CE + weight * T^2 * KL(teacher || student)`` at temperature ``T``.

    Args:
        teacher: the float network whose logits are the soft targets; it is put in eval mode
            and called without gradients (its batch-norm statistics never change).
        weight: ``a`` in [0, 1], the share of the soft term.
        temperature: ``T`` > 0, the softmax temperature of both soft distributions.
    """

    def __init__(self, teacher: nn.Module, weight: float, temperature: float) -> None:
        super().__init__()
        self.weight = check_float(weight, "distillation weight", 0, 1)
        self.temperature = check_float(temperature, "distillation temperature", 0, 1e3,
                                       low_open=True)
        self.teacher = teacher.eval()
        for param in self.teacher.parameters():
            param.requires_grad_(False)

    def train(self, mode: bool = True) -> DistillationLoss:
        """The teacher stays in eval mode whatever the trainer asks."""
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, x: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
                ) -> torch.Tensor:
        """The loss of the student's ``logits`` on inputs ``x`` with ``labels``."""
        hard = F.cross_entropy(logits, labels)
        if self.weight == 0.0:
            return hard
        with torch.no_grad():
            target = F.softmax(self.teacher(x) / self.temperature, dim=1)
        soft = F.kl_div(F.log_softmax(logits / self.temperature, dim=1), target,
                        reduction="batchmean") * self.temperature ** 2
        return (1.0 - self.weight) * hard + self.weight * soft
