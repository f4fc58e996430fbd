"""``torch.compile`` of converted models: the analog layers run eagerly, the rest compiles.

An analog layer's forward calls Numba kernels and numpy (the periphery, the programmed
tiles' random streams, the device model of hardware-aware training), which TorchDynamo cannot
trace: tracing into Numba's dispatcher fails with an assertion in a fresh process. Each analog
layer's forward is therefore opaque to the compiler (:func:`torch.compiler.disable`): Dynamo
breaks the graph around it and runs it eagerly, autograd included, while the digital modules
between analog layers (normalisation, activations, attention scores, pooling, residual
additions) compile as usual.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

F = TypeVar("F", bound=Callable)

#: The reason Dynamo reports for the graph break at an analog layer.
REASON = "aimcsim analog layer: Numba / numpy tile periphery runs eagerly"


def eager_under_compile(forward: F) -> F:
    """Decorate an analog layer's ``forward``: under ``torch.compile`` it runs eagerly (a
    graph break before and after it); outside ``torch.compile`` nothing changes."""
    return torch.compiler.disable(forward, reason=REASON)
