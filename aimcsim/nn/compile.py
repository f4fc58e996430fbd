"""``torch.compile`` of converted models: the analog layers run eagerly, the rest compiles.

An analog layer's forward calls Numba kernels and numpy (the periphery, the programmed
tiles' random streams, the device model of hardware-aware training), which TorchDynamo cannot
trace: tracing into Numba's dispatcher fails with an assertion in a fresh process. Each analog
layer's forward is therefore opaque to the compiler (:func:`torch.compiler.disable`): Dynamo
breaks the graph around it and runs it eagerly, autograd included, while the digital modules
between analog layers (normalisation, activations, attention scores, pooling, residual
additions) compile as usual.

The disabled forward is made on the first compiled call, not at import: ``torch.compiler.
disable`` imports TorchDynamo, which would add seconds to every ``import aimcsim.nn``. That
first call costs one extra graph break (Dynamo does not trace ``torch.compiler.disable``
itself); later traces break once before and once after each analog layer.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch

Fn = TypeVar("Fn", bound=Callable)

#: The reason Dynamo reports for the graph break at an analog layer.
REASON = "aimcsim analog layer: Numba / numpy tile periphery runs eagerly"


def eager_under_compile(forward: Fn) -> Fn:
    """Decorate an analog layer's ``forward``: under ``torch.compile`` it runs eagerly (a
    graph break before and after it); outside ``torch.compile`` it is called as it is
    (about a microsecond of overhead per call)."""
    eager: list[Callable] = []

    def disabled() -> Callable:
        if not eager:
            eager.append(torch.compiler.disable(forward, reason=REASON))
        return eager[0]

    @functools.wraps(forward)
    def wrapper(*args, **kwargs):
        if torch.compiler.is_compiling():
            return disabled()(*args, **kwargs)
        return forward(*args, **kwargs)

    wrapper.disabled = disabled  # the compiler-opaque forward (made on first use)
    return wrapper
