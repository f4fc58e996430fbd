"""Per-patch input scaling of convolutions without unfolding, and its pass in torch ops (the
torch backend's periphery of a convolution tile; differentiable).

A real tile computes one matrix-vector product per output position: the patch of the input
under the kernel window is one input vector, with its own noise-management scale and its own
bound management (``PeripheryConfig.input_scaling = "per_patch"``). Unfolding every patch costs
a k x k copy of the input, so aimcsim computes the scales from a max-pool instead:

- ``pixel_max[n, h, w] = max_c |x[n, c, h, w]|`` over the tile's input channels;
- the patch scale of output position p is ``s_p = max over p's window of pixel_max`` (the
  max-pool with the convolution's kernel, stride, padding and dilation): exactly the abs-max
  of the patch;
- the DAC scale of pixel i is ``s_i = max over the window centred on i`` (a stride-1 max-pool,
  and at least the pixel's own max):
  every patch holding i is quantised with the step ``d_in s_i`` instead of its own
  ``d_in s_p``. Exact for 1x1 kernels and static ranges; for k x k kernels s_i is the scale
  of the patch centred on i, a neighbour of the others (error against the exact unfolded
  reference: docs/physics.md).

Output noise, ADC and bound management then act per output position relative to s_p (the
Numba backend: ``aimcsim.tiles.engine.analog_pass_per_vector``; the torch backend: below).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from aimcsim.nn.backends.torch_periphery import ste_quantize
from aimcsim.nn.geometry import ConvWindow
from aimcsim.tiles.engine import bound_iterations
from aimcsim.tiles.periphery import PeripheryConfig


def _window_max(pixel_max: torch.Tensor, window: ConvWindow, pad, stride) -> torch.Tensor:
    padded = F.pad(pixel_max, pad) if any(pad) else pixel_max  # zeros: pixel_max >= 0
    return F.max_pool2d(padded, window.kernel, stride, 0, window.dilation)


def patch_scales(pixel_max: torch.Tensor, window: ConvWindow
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixel scales (N, 1, H, W), patch scales (N, 1, H_out, W_out)) from the channel-wise
    abs-max ``pixel_max`` (N, 1, H, W); zero scales (all-zero windows) become 1."""
    patch = _window_max(pixel_max, window, window.pad, window.stride)
    if window.is_pointwise:
        pixel = pixel_max
    elif window.stride == (1, 1) and window.pad == window.centred_pad:
        # the window of output position p is centred on pixel p (an even, dilated window
        # may leave out its centre: keep the pixel's own max)
        pixel = torch.maximum(patch, pixel_max)
    else:
        pixel = torch.maximum(_window_max(pixel_max, window, window.centred_pad, (1, 1)),
                              pixel_max)
    one = torch.ones((), dtype=pixel_max.dtype, device=pixel_max.device)
    return torch.where(pixel > 0, pixel, one), torch.where(patch > 0, patch, one)


def torch_per_vector_pass(x: torch.Tensor, pixel_scale: torch.Tensor,
                          vector_scale: torch.Tensor, gemm: Callable[[torch.Tensor], torch.Tensor],
                          col_scale: torch.Tensor, periphery: PeripheryConfig,
                          var_gemm: Callable[[torch.Tensor], torch.Tensor] | None = None,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """One tile's periphery with one input vector per output position, in torch ops
    (differentiable: straight-through quantisers, clips pass the gradient inside their range,
    scales are constants).

    Args:
        x: (N, C, H, W) tile input.
        pixel_scale: DAC scale per pixel, broadcastable to (N, 1, H, W), > 0.
        vector_scale: input scale per output position, broadcastable to (N, 1, H_out, W_out).
        gemm: the convolution of the dequantised input with the normalised weights.
        col_scale: (C_out,) weight scale x drift compensation.
        var_gemm: maps x^2 to the per-output read-noise variance (per-MVM read noise).
    Returns:
        (N, C_out, H_out, W_out) outputs in weight x input units.
    """
    pixel_scale = pixel_scale.detach()
    vector_scale = vector_scale.detach()
    v = torch.clamp(x / pixel_scale, -periphery.inp_bound, periphery.inp_bound)
    x_dac = ste_quantize(v, periphery.inp_step) * pixel_scale
    y = gemm(x_dac) / vector_scale
    read_std = None
    if var_gemm is not None:
        read_std = torch.sqrt(var_gemm(x_dac * x_dac).clamp_min(0)) / vector_scale

    def noisy(multiplier):
        u = y / multiplier
        if periphery.out_noise > 0:
            u = u + periphery.out_noise * torch.randn(u.shape, generator=generator,
                                                      device=u.device, dtype=u.dtype)
        if read_std is not None:
            u = u + read_std / multiplier * torch.randn(u.shape, generator=generator,
                                                        device=u.device, dtype=u.dtype)
        return u

    iterations = bound_iterations(periphery)
    multiplier = torch.ones_like(vector_scale.expand(y.shape[0], 1, *y.shape[2:]))
    u = noisy(multiplier)
    bound = periphery.out_bound
    for _ in range(iterations):
        clipped = (u.detach().abs() > bound).any(dim=1, keepdim=True)
        if not bool(clipped.any()):
            break
        multiplier = torch.where(clipped, 2 * multiplier, multiplier)
        u = torch.where(clipped, noisy(multiplier), u)
    if bound is not None:
        u = torch.clamp(u, -bound, bound)
    q = ste_quantize(u, periphery.out_step)
    return q * (vector_scale * multiplier) * col_scale.reshape(1, -1, 1, 1)
