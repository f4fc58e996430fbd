"""Backends: the strategies that run a layer's DAC, GEMM, periphery and ADC, and the one switch
that picks one (:func:`select_backend`).

- ``numba`` (:mod:`~aimcsim.nn.backends.numba_backend`): programmed tiles on the CPU, no
  gradients; the fused Numba periphery around the native torch GEMM. The default for CPU inference.
- ``torch`` (:mod:`~aimcsim.nn.backends.torch_backend`): the periphery in torch ops on any torch
  device, differentiable; hardware-aware training, passes that need gradients, inference on
  GPUs. For CPU tensors the switch gives it ``cpu_kernels`` (fused Numba autograd DAC / ADC
  and the numpy device model in training); a forced ``torch`` runs plain torch ops only.

Add a backend: subclass :class:`~aimcsim.nn.backends.base.Backend`, implement ``infer`` (and
``run`` / ``run_without_periphery`` for training), and return it from :func:`select_backend`.
"""
from __future__ import annotations

import torch

from aimcsim.nn.backends.base import Backend
from aimcsim.nn.backends.numba_backend import NumbaBackend
from aimcsim.nn.backends.torch_backend import TorchBackend

#: values of ``set_backend`` / ``AnalogMVM.backend``: ``auto`` picks per pass
BACKEND_CHOICES = ("auto", "numba", "torch")
_NUMBA = NumbaBackend()
_TORCH_CPU = TorchBackend(cpu_kernels=True)
_TORCH = TorchBackend(cpu_kernels=False)


def select_backend(x: torch.Tensor, training: bool, choice: str = "auto") -> Backend:
    """The backend of one forward pass with input ``x``.

    ``auto``: Numba for CPU inference without gradients, else torch (with CPU kernels on the
    CPU). ``torch``: torch in plain torch ops, whatever the device. ``numba``: Numba, or a
    ValueError when the pass needs the torch backend (training, gradients, a non-CPU tensor).
    """
    needs_torch = training or x.device.type != "cpu" or (
        torch.is_grad_enabled() and x.requires_grad)
    if choice == "torch":
        return _TORCH
    if choice == "numba":
        if needs_torch:
            raise ValueError("the numba backend runs CPU inference without gradients only; "
                             "training, inputs that require grad and tensors on "
                             f"{x.device.type!r} need the torch backend (set_backend "
                             "'auto' or 'torch')")
        return _NUMBA
    if choice != "auto":
        raise ValueError(f"backend must be one of {BACKEND_CHOICES}, got {choice!r}")
    if needs_torch:
        return _TORCH_CPU if x.device.type == "cpu" else _TORCH
    return _NUMBA


__all__ = ["BACKEND_CHOICES", "Backend", "NumbaBackend", "TorchBackend", "select_backend"]
