"""The torch backend: the periphery in torch ops around each row block's GEMM, on any torch
device, differentiable (straight-through quantisers).

It runs hardware-aware training (the float weights perturbed by the training noise model),
every pass that needs gradients, and inference on devices other than the CPU. Per row block:

- linear layers and ``input_scaling="per_image"``: one input vector per sample
  (:func:`~aimcsim.nn.backends.torch_periphery.torch_analog_pass`);
- ``per_patch`` (and ``per_patch_exact``, which only the Numba backend unfolds) and
  ``static``: one input vector per output position
  (:func:`~aimcsim.nn.backends.torch_per_patch.torch_per_vector_pass`).

With ``cpu_kernels`` (given by :func:`aimcsim.nn.backends.select_backend` for CPU tensors)
the DAC and ADC of training steps run as fused Numba autograd functions
(:mod:`~aimcsim.nn.backends.torch_cpu_kernels`) and the device model of hardware-aware
training samples with the numpy tiles; without it every operation is a torch op on the
tensors' device (:mod:`~aimcsim.nn.backends.torch_tile_read` for the device model: device
sampling in :mod:`~aimcsim.nn.backends.torch_devices`, IR drop in
:mod:`~aimcsim.nn.backends.torch_ir_drop`; what has no torch form raises ValueError): what
runs on a GPU, and what ``set_backend(model, "torch")`` runs on the CPU.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from aimcsim.nn.backends.base import Backend
from aimcsim.nn.backends.torch_cpu_kernels import (fused_per_patch_pass, fused_per_patch_supported,
                                                   fused_supported)
from aimcsim.nn.backends.torch_per_patch import patch_scales, torch_per_vector_pass
from aimcsim.nn.backends.torch_periphery import torch_analog_pass
from aimcsim.nn.tile_array import BlockWeights
from aimcsim.tiles.engine import bound_iterations
from aimcsim.tiles.plan import RowBlock

if TYPE_CHECKING:
    from aimcsim.nn.analog_mvm import AnalogMVM


def place(out: torch.Tensor | None, y: torch.Tensor, block: RowBlock,
          c_out: int) -> torch.Tensor:
    """Add a row block's outputs ``y`` (its output channels) into the layer output ``out``
    (None before the first block)."""
    o0, o1 = block.out_channels
    if out is None and o0 == 0 and o1 == c_out:
        return y
    if out is None:
        out = torch.zeros((y.shape[0], c_out) + tuple(y.shape[2:]), dtype=y.dtype,
                          device=y.device)
    pad = [0, 0] * (y.dim() - 2) + [o0, c_out - o1]
    return out + F.pad(y, pad)


class TorchBackend(Backend):
    """The periphery in torch ops (see the module docstring).

    Args:
        cpu_kernels: use the fused Numba autograd DAC / ADC for float32 CPU tensors of
            training steps, and the numpy tiles for the training device model.
    """

    name = "torch"

    def __init__(self, cpu_kernels: bool = False) -> None:
        self.cpu_kernels = bool(cpu_kernels)

    def infer(self, mvm: "AnalogMVM", x: torch.Tensor) -> torch.Tensor:
        """Programmed tiles; noise from one generator per row block on ``x``'s device,
        seeded like the Numba backend (order-free)."""
        generators = [torch.Generator(x.device).manual_seed(seed & ((1 << 63) - 1))
                      for seed in mvm.tiles.pass_seeds()]
        blocks = mvm.tiles.cache
        low = mvm.config.gemm_precision == "bfloat16"
        if low:
            blocks = [entry._replace(weight=weight) for entry, weight
                      in zip(blocks, mvm.tiles.bfloat16_weights(widened=True))]
        return self.run(mvm, x, blocks, generators, round_bfloat16=low)

    def run(self, mvm: "AnalogMVM", x: torch.Tensor, blocks: list[BlockWeights],
            generators: list[torch.Generator] | None = None,
            round_bfloat16: bool = False) -> torch.Tensor:
        """The periphery around each row block's GEMM with the weights ``blocks``;
        ``generators``: one per block, or None for torch's global one (training);
        ``round_bfloat16``: round each GEMM's input and output to bfloat16 (the weights come
        rounded; ``AnalogConfig.gemm_precision``)."""
        geometry = mvm.geometry
        x = geometry.prepare(x)
        out = None
        for b, (block, weights) in enumerate(zip(mvm.tiles.blocks, blocks)):
            xs = geometry.block_input(x, block)

            def gemm(v, block=block, weight=weights.weight):
                if round_bfloat16:
                    y = geometry.gemm(v.to(torch.bfloat16).to(v.dtype), weight, block.groups)
                    return y.to(torch.bfloat16).to(y.dtype)
                return geometry.gemm(v, weight, block.groups)
            var_gemm = None
            if weights.variance is not None:
                def var_gemm(v, block=block, var=weights.variance):
                    return geometry.gemm(v, var, block.groups)
            generator = None if generators is None else generators[b]
            y = self._block_pass(mvm, xs, gemm, weights.scale, var_gemm, generator)
            out = place(out, y, block, mvm.out_channels)
        return out

    def run_without_periphery(self, mvm: "AnalogMVM", x: torch.Tensor,
                              blocks: list[BlockWeights]) -> torch.Tensor:
        """Each row block's GEMM with its rescaled weights, no DAC, ADC or output noise
        (hardware-aware training with ``periphery=False``)."""
        geometry = mvm.geometry
        x = geometry.prepare(x)
        out = None
        for block, weights in zip(mvm.tiles.blocks, blocks):
            w = weights.weight * weights.scale.reshape((-1,) + (1,) * (weights.weight.dim() - 1))
            y = geometry.gemm(geometry.block_input(x, block), w, block.groups)
            out = place(out, y, block, mvm.out_channels)
        return out

    def _block_pass(self, mvm: "AnalogMVM", xs, gemm, scale, var_gemm, generator
                    ) -> torch.Tensor:
        """One row block's periphery: per sample (linear, ``per_image``) or per output
        position (the other input scalings of a convolution)."""
        periphery = mvm.config.periphery
        scaling = periphery.input_scaling
        fused = self.cpu_kernels and var_gemm is None and generator is None
        if not mvm.geometry.is_conv or scaling == "per_image":
            return torch_analog_pass(xs, gemm, scale, mvm.row_periphery(), var_gemm, generator,
                                     fused=fused and fused_supported(xs))
        if scaling != "static" and fused and fused_per_patch_supported(xs, periphery):
            window = mvm.geometry.window().kernel_parameters(*xs.shape[2:])
            return fused_per_patch_pass(xs, window, gemm, scale, periphery,
                                        bound_iterations(periphery))
        if scaling != "static" and periphery.noise_management == "abs_max":
            pixel_max = xs.detach().abs().amax(dim=1, keepdim=True)
            pixel, patch = patch_scales(pixel_max, mvm.geometry.window())
        else:
            pixel = patch = torch.tensor(mvm.constant_scale(), dtype=xs.dtype,
                                         device=xs.device)
        return torch_per_vector_pass(xs, pixel, patch, gemm, scale, periphery, var_gemm,
                                     generator)
