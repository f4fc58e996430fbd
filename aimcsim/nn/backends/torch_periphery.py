"""The tile periphery in torch ops, differentiable with straight-through gradients: the
periphery of the torch backend (:mod:`aimcsim.nn.backends.torch_backend`), one input vector per
sample (a row of a linear layer, or a whole image of a convolution).

It runs wherever the Numba inference kernels cannot: during (hardware-aware) training, where
gradients must flow, and on any torch device. It computes the same equations as
``aimcsim.tiles.periphery``:
per-sample noise management, DAC clip + quantisation, the GEMM (a callback: linear or conv),
optional per-MVM read noise, additive output noise, ADC clip + quantisation with iterative bound
management, and rescaling. Quantisers use straight-through estimators (identity gradient); the
clips pass gradients only inside the range.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from aimcsim.nn.backends.torch_cpu_kernels import fused_adc, fused_dac, fused_supported
from aimcsim.tiles.engine import bound_iterations
from aimcsim.tiles.periphery import PeripheryConfig


def ste_quantize(v: torch.Tensor, step: float) -> torch.Tensor:
    """rint(v / step) * step in the forward pass, identity gradient (no-op for step <= 0).

    Computed as ``rint(v * (1 / step))`` in float32, exactly as the Numba kernels do, so both
    paths round ties the same way."""
    if step <= 0:
        return v
    return v + (torch.round(v * (1.0 / step)) * step - v).detach()


def _sample_scale(x: torch.Tensor, periphery: PeripheryConfig) -> torch.Tensor:
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    if periphery.noise_management == "abs_max":
        s = x.detach().abs().reshape(x.shape[0], -1).amax(dim=1)
        s = torch.where(s > 0, s, torch.ones_like(s))
    elif periphery.noise_management == "constant":
        s = torch.full((x.shape[0],), periphery.nm_constant, dtype=x.dtype, device=x.device)
    else:
        s = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    return s.reshape(shape)


def torch_analog_pass(x: torch.Tensor, gemm: Callable[[torch.Tensor], torch.Tensor],
                      col_scale: torch.Tensor, periphery: PeripheryConfig,
                      var_gemm: Callable[[torch.Tensor], torch.Tensor] | None = None,
                      generator: torch.Generator | None = None,
                      fused: bool = False) -> torch.Tensor:
    """One tile's periphery around ``gemm`` for a batch ``x`` (N, ...).

    Args:
        x: inputs of the tile, first dimension the input vectors (samples).
        gemm: maps DAC outputs (same shape as x) to raw outputs (N, C, ...) in ADC units.
        col_scale: (C,) output scale per channel (weight scale x drift compensation).
        periphery: DAC/ADC settings.
        var_gemm: maps DAC outputs to the read-noise variance of each output (per-MVM noise).
        generator: torch generator for the noise draws (None: the global one).
        fused: run the DAC and ADC as the fused CPU kernels of
            :mod:`aimcsim.nn.backends.torch_cpu_kernels` (a float32 CPU input without per-MVM
            read noise or an explicit generator; the torch backend decides).
    Returns:
        (N, C, ...) outputs in the units of weight x input.
    """
    if fused:
        if var_gemm is not None or generator is not None or not fused_supported(x):
            raise ValueError("the fused CPU periphery needs a float32 CPU input of 2 to 4 "
                             "dims, no per-MVM read noise and no explicit generator")
        def one_pass(xs, multipliers):
            v, s = fused_dac(xs, multipliers, periphery)
            y, saturated = fused_adc(gemm(v), s, col_scale, periphery)
            return y, saturated > 0
    else:
        def one_pass(xs, multipliers):
            return _torch_pass(xs, _sample_scale(xs, periphery), multipliers, gemm, col_scale,
                               periphery, var_gemm, generator)
    return _bound_managed(x, one_pass, periphery)


def _torch_pass(x, scale, multipliers, gemm, col_scale, periphery, var_gemm, generator):
    """DAC, GEMM, noise, ADC and rescale in torch ops; returns (outputs, clipped per sample)."""
    s = scale * multipliers.reshape(scale.shape)
    v = torch.clamp(x * s.reciprocal(), -periphery.inp_bound, periphery.inp_bound)
    v = ste_quantize(v, periphery.inp_step)
    y = gemm(v)
    if var_gemm is not None:
        std = torch.sqrt(var_gemm(v * v).clamp_min(0))
        y = y + std * torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
    if periphery.out_noise > 0:
        y = y + periphery.out_noise * torch.randn(y.shape, generator=generator,
                                                  device=y.device, dtype=y.dtype)
    if periphery.out_bound is not None:
        clipped = (y.detach().abs() > periphery.out_bound).reshape(y.shape[0], -1).any(1)
        y = torch.clamp(y, -periphery.out_bound, periphery.out_bound)
    else:
        clipped = torch.zeros(y.shape[0], dtype=torch.bool, device=y.device)
    y = ste_quantize(y, periphery.out_step)
    shape = (1, -1) + (1,) * (y.dim() - 2)
    return y * s.reshape((-1,) + (1,) * (y.dim() - 1)) * col_scale.reshape(shape), clipped


def _bound_managed(x: torch.Tensor, one_pass, periphery: PeripheryConfig) -> torch.Tensor:
    """Iterative bound management: samples with a clipped output are redone with their input
    scale doubled, up to ``max_bound_iterations`` times; ``one_pass(xs, multipliers)`` returns
    (outputs, clipped per sample) for the samples ``xs`` with scale multipliers (N,)."""
    iterations = bound_iterations(periphery)
    pending = torch.arange(x.shape[0], device=x.device)
    pieces: list[tuple[torch.Tensor, torch.Tensor]] = []
    for iteration in range(iterations + 1):
        xs = x if iteration == 0 else x[pending]
        multipliers = torch.full((pending.numel(),), 2.0 ** iteration, dtype=x.dtype,
                                 device=x.device)
        y, clipped = one_pass(xs, multipliers)
        if iteration == iterations or not bool(clipped.any()):
            pieces.append((pending, y))
            break
        keep = ~clipped
        pieces.append((pending[keep], y[keep]))
        pending = pending[clipped]
    if len(pieces) == 1:
        return pieces[0][1]
    order = torch.cat([idx for idx, _ in pieces])
    values = torch.cat([val for _, val in pieces])
    return values[torch.argsort(order)]
