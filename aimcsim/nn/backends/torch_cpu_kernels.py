"""The torch backend's CPU kernels: differentiable DAC and ADC through fused Numba kernels
(training speed on the CPU).

The plain torch periphery (:mod:`aimcsim.nn.backends.torch_periphery`) needs about a dozen
elementwise passes over every tile output per step, forward and backward; on the CPU those
passes cost more than the convolutions themselves. Here the DAC and the ADC are each one
``torch.autograd.Function`` whose forward is one Numba pass (``kernels/periphery.py``,
``kernels/training.py``) and whose backward is one more, with the same straight-through
gradients as the torch path: the quantisers pass the gradient unchanged, the clips only inside
their range, and the per-sample and per-channel scales are constants.

The torch backend uses them for float32 CPU tensors when :func:`aimcsim.nn.backends.
select_backend` gives it ``cpu_kernels`` (training on the CPU); on other devices, or with the
torch backend forced, the same equations run as plain torch ops. Output-noise draws come from
the kernels' table sampler, seeded from torch's global generator, so ``torch.manual_seed``
reproduces a run.
The kernels run single-threaded: beside torch's spinning thread pool a parallel Numba region
loses (measured in ``kernels/training.py``).
"""
from __future__ import annotations

import numpy as np
import torch

from aimcsim.kernels.periphery import NM_ABS_MAX, NM_CONSTANT, NM_NONE
from aimcsim.kernels.periphery import dac_per_patch_serial as dac_patches
from aimcsim.kernels.periphery import dac_quantize_serial as dac
from aimcsim.kernels.training import adc_backward_serial as adc_backward
from aimcsim.kernels.training import adc_forward_masked_serial as adc_forward_masked
from aimcsim.kernels.training import dac_backward_serial as dac_backward
from aimcsim.kernels.training import adc_per_vector_backward_serial as adc_per_vector_backward
from aimcsim.kernels.training import adc_per_vector_masked_serial as adc_per_vector_masked
from aimcsim.tiles.periphery import PeripheryConfig

_NM_MODES = {"none": NM_NONE, "abs_max": NM_ABS_MAX, "constant": NM_CONSTANT}


def fused_supported(x: torch.Tensor) -> bool:
    """True when the fused kernels can run on ``x``: a float32 CPU tensor of 2 to 4 dims."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and 2 <= x.dim() <= 4


def _channels_last(t: torch.Tensor) -> bool:
    """Whether ``t`` is laid out channel-innermost (channels_last 4-D, or 2-D (N, C))."""
    return t.dim() == 2 or (t.dim() == 4 and t.stride(1) == 1 and t.shape[1] > 1)


def _view(t: torch.Tensor, channels_last: bool) -> tuple[np.ndarray, int]:
    """(N, A, B) numpy view of ``t`` (a copy only when ``t``'s strides do not allow a view,
    which happens for inputs only) and the axis holding the channel."""
    t = t.detach()
    n = t.shape[0]
    if t.dim() == 2:
        return t.reshape(n, 1, t.shape[1]).numpy(), 2
    if t.dim() == 3:
        return t.numpy(), 1
    c = t.shape[1]
    if channels_last:
        return t.permute(0, 2, 3, 1).reshape(n, -1, c).numpy(), 2
    return t.reshape(n, c, -1).numpy(), 1


def _empty(shape: torch.Size, channels_last: bool) -> torch.Tensor:
    """An uninitialised float32 tensor laid out as ``_view`` expects, so its view is writable."""
    if len(shape) == 4 and channels_last:
        n, c, h, w = shape
        return torch.empty((n, h, w, c), dtype=torch.float32).permute(0, 3, 1, 2)
    return torch.empty(shape, dtype=torch.float32)


class _Dac(torch.autograd.Function):
    """v = Q_in(clip(x / s, -b_in, b_in)); returns (v, s) with s the per-sample scale."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, multipliers: torch.Tensor, mode: int, constant: float,
                bound: float, step: float):
        layout = _channels_last(x)
        xv, _ = _view(x, layout)
        out = _empty(x.shape, layout)
        ov, _ = _view(out, layout)
        scales = multipliers.detach().to(torch.float32).contiguous().clone()
        if not dac(xv, ov, scales.numpy(), mode, constant, bound, step):
            raise ValueError("input contains NaN or inf values")
        ctx.save_for_backward(x, scales)
        ctx.bound = bound
        ctx.mark_non_differentiable(scales)
        return out, scales

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor, _grad_scales):
        x, scales = ctx.saved_tensors
        layout = _channels_last(x)
        xv, _ = _view(x, layout)
        gv, _ = _view(grad_out, layout)
        grad_x = _empty(x.shape, layout)
        dac_backward(xv, gv, scales.numpy(), ctx.bound, _view(grad_x, layout)[0])
        return grad_x, None, None, None, None, None


class _Adc(torch.autograd.Function):
    """out = Q_out(clip(y + noise, -b_out, b_out)) * s_n * c_k; returns (out, clipped count)."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, in_scale: torch.Tensor, col_scale: torch.Tensor,
                out_noise: float, bound: float, step: float, seed: int):
        layout = _channels_last(y)
        yv, axis = _view(y, layout)
        out = _empty(y.shape, layout)
        inside = torch.empty(yv.shape, dtype=torch.uint8)
        saturated = torch.empty(y.shape[0], dtype=torch.int64)
        s = in_scale.detach().to(torch.float32).reshape(-1).contiguous()
        c = col_scale.detach().to(torch.float32).reshape(-1).contiguous()
        adc_forward_masked(yv, _view(out, layout)[0], inside.numpy(), s.numpy(), c.numpy(),
                           axis, out_noise, bound, step, np.uint64(seed), saturated.numpy())
        ctx.save_for_backward(inside, s, c)
        ctx.layout = layout
        ctx.mark_non_differentiable(saturated)
        return out, saturated

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor, _grad_saturated):
        inside, s, c = ctx.saved_tensors
        gv, axis = _view(grad_out, ctx.layout)
        grad_y = _empty(grad_out.shape, ctx.layout)
        adc_backward(gv, inside.numpy(), s.numpy(), c.numpy(), axis,
                     _view(grad_y, ctx.layout)[0])
        return grad_y, None, None, None, None, None, None


def fused_dac(x: torch.Tensor, multipliers: torch.Tensor,
              periphery: PeripheryConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """DAC of ``x`` (N, ...) with noise management; ``multipliers`` (N,) scale s (1, or 2^k
    during bound management). Returns (DAC output, per-sample scale s)."""
    return _Dac.apply(x, multipliers, _NM_MODES[periphery.noise_management],
                      float(periphery.nm_constant), float(periphery.inp_bound),
                      float(periphery.inp_step))


def fused_adc(y: torch.Tensor, in_scale: torch.Tensor, col_scale: torch.Tensor,
              periphery: PeripheryConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Output noise, ADC and rescale of raw tile outputs ``y`` (N, C, ...). Returns (outputs in
    weight x input units, per-sample count of clipped values)."""
    bound = periphery.out_bound if periphery.out_bound is not None else float("inf")
    seed = int(torch.randint(0, 2 ** 62, (1,)).item())
    return _Adc.apply(y, in_scale, col_scale, float(periphery.out_noise), float(bound),
                      float(periphery.out_step), seed)


class _DacPerPatch(torch.autograd.Function):
    """Per-patch DAC of a convolution's input (``kernels.periphery.dac_per_patch``): returns
    (the dequantised input, the input scale of every output position). Straight-through: the
    pixel scales are at least |x|, so with ``inp_bound >= 1`` nothing clips and the gradient
    passes unchanged."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, window: np.ndarray, bound: float, step: float):
        layout = _channels_last(x)
        xv, axis = _view(x, layout)
        out = _empty(x.shape, layout)
        n, _, height, width = x.shape
        scales = torch.empty((n, int(window[10] * window[11])), dtype=torch.float32)
        if not dac_patches(xv, _view(out, layout)[0], axis, height, width, window,
                           scales.numpy(), bound, step):
            raise ValueError("input contains NaN or inf values")
        ctx.mark_non_differentiable(scales)
        return out, scales

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor, _grad_scales):
        return grad_out, None, None, None


class _AdcPerVector(torch.autograd.Function):
    """Output noise, ADC and bound management per output position, then rescale
    (``kernels.training.adc_per_vector_masked``); gradient ``col_scale`` inside the range."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, vector_scale: torch.Tensor, col_scale: torch.Tensor,
                out_noise: float, bound: float, step: float, iterations: int, seed: int):
        layout = _channels_last(y)
        yv, axis = _view(y, layout)
        out = _empty(y.shape, layout)
        inside = torch.empty(yv.shape, dtype=torch.uint8)
        counts = torch.zeros((y.shape[0], 2), dtype=torch.int64)
        c = col_scale.detach().to(torch.float32).reshape(-1).contiguous()
        adc_per_vector_masked(yv, _view(out, layout)[0], inside.numpy(),
                              vector_scale.detach().contiguous().numpy(), c.numpy(), axis,
                              out_noise, bound, step, iterations, np.uint64(seed), counts.numpy())
        ctx.save_for_backward(inside, c)
        ctx.layout = layout
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        inside, c = ctx.saved_tensors
        gv, axis = _view(grad_out, ctx.layout)
        grad_y = _empty(grad_out.shape, ctx.layout)
        adc_per_vector_backward(gv, inside.numpy(), c.numpy(), axis,
                                _view(grad_y, ctx.layout)[0])
        return grad_y, None, None, None, None, None, None, None


def fused_per_patch_supported(x: torch.Tensor, periphery: PeripheryConfig) -> bool:
    """Whether :func:`fused_per_patch_pass` can run: a float32 CPU 4-D input, abs-max noise
    management and a DAC range of at least the full scale (so that nothing clips)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4
            and periphery.noise_management == "abs_max" and periphery.inp_bound >= 1.0)


def fused_per_patch_pass(x: torch.Tensor, window: np.ndarray, gemm, col_scale: torch.Tensor,
                         periphery: PeripheryConfig, iterations: int) -> torch.Tensor:
    """A convolution tile's per-patch periphery around ``gemm`` in two fused, differentiable
    Numba passes (the training twin of ``analog_pass_per_vector``); noise seeded from torch's
    global generator."""
    x_dac, vector_scale = _DacPerPatch.apply(x, window, float(periphery.inp_bound),
                                             float(periphery.inp_step))
    bound = periphery.out_bound if periphery.out_bound is not None else float("inf")
    seed = int(torch.randint(0, 2 ** 62, (1,)).item())
    return _AdcPerVector.apply(gemm(x_dac), vector_scale, col_scale,
                               float(periphery.out_noise), float(bound),
                               float(periphery.out_step), iterations, seed)
