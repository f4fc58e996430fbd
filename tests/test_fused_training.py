"""The fused CPU periphery of hardware-aware training (aimcsim/nn/backends/torch_cpu_kernels.py,
kernels/training.py) against the plain torch periphery (aimcsim/nn/backends/torch_periphery.py):
same outputs, same gradients."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from aimcsim.nn.backends.torch_periphery import torch_analog_pass
from aimcsim.tiles.periphery import PeripheryConfig


def _run(x, w, col_scale, periphery, fused, kind, grad=None):
    x = x.detach().clone().requires_grad_(True)
    w = w.detach().clone().requires_grad_(True)
    if kind == "conv2d":
        def gemm(v):
            return F.conv2d(v, w, padding=1)
    elif kind == "conv1d":
        def gemm(v):
            return F.conv1d(v, w, padding=1)
    else:
        def gemm(v):
            return v @ w.t()
    y = torch_analog_pass(x, gemm, col_scale, periphery, fused=fused)
    if grad is None:
        grad = torch.randn(y.shape)
    gx, gw = torch.autograd.grad(y, (x, w), grad)
    return y.detach(), gx, gw, grad


def _inputs(kind, n, c_in, c_out, size, channels_last, seed):
    g = torch.Generator().manual_seed(seed)
    if kind == "conv2d":
        x = torch.randn(n, c_in, size, size, generator=g)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        w = torch.randn(c_out, c_in, 3, 3, generator=g)
    elif kind == "conv1d":
        x = torch.randn(n, c_in, size, generator=g)
        w = torch.randn(c_out, c_in, 3, generator=g)
    else:
        x = torch.randn(n, c_in, generator=g)
        w = torch.randn(c_out, c_in, generator=g)
    col_scale = torch.rand(c_out, generator=g) + 0.5
    return x, w, col_scale


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["conv2d", "conv1d", "linear"]),
       n=st.integers(1, 6), c_in=st.integers(1, 9), c_out=st.integers(1, 7),
       size=st.integers(1, 7), channels_last=st.booleans(),
       inp_bits=st.sampled_from([None, 3, 7]), out_bits=st.sampled_from([None, 4, 9]),
       out_bound=st.sampled_from([None, 0.5, 3.0, 12.0]),
       nm=st.sampled_from(["abs_max", "none", "constant"]), seed=st.integers(0, 2 ** 16))
def test_fused_equals_torch_path_without_noise(kind, n, c_in, c_out, size, channels_last,
                                               inp_bits, out_bits, out_bound, nm, seed):
    """Noise off: the fused kernels give the torch path's outputs and straight-through
    gradients, with and without clipping and bound management, in every layout."""
    periphery = PeripheryConfig(out_noise=0.0, inp_bits=inp_bits,
                                out_bits=out_bits if out_bound is not None else None,
                                out_bound=out_bound, noise_management=nm)
    x, w, col_scale = _inputs(kind, n, c_in, c_out, size, channels_last, seed)
    y_ref, gx_ref, gw_ref, grad = _run(x, w, col_scale, periphery, False, kind)
    y, gx, gw, _ = _run(x, w, col_scale, periphery, True, kind, grad)
    assert y.shape == y_ref.shape
    # same float32 periphery arithmetic; the convolution itself may sum in another order when
    # a 1x1 image's tensor is seen as channels_last (1 ulp)
    torch.testing.assert_close(y, y_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gw, gw_ref, rtol=1e-4, atol=1e-4)


def test_clipped_outputs_pass_no_gradient():
    """Values clipped by the ADC (bound management off) get zero gradient, the others get
    s_n * c_k."""
    periphery = PeripheryConfig(out_noise=0.0, out_bits=None, out_bound=1.0,
                                bound_management="none", noise_management="none",
                                inp_bits=None)
    x = torch.tensor([[0.5, 2.0, -3.0, 0.9]], requires_grad=True)
    col_scale = torch.tensor([2.0, 3.0, 4.0, 5.0])
    y = torch_analog_pass(x, lambda v: v, col_scale, periphery, fused=True)
    torch.testing.assert_close(y.detach(), torch.tensor([[1.0, 3.0, -4.0, 4.5]]))
    (gx,) = torch.autograd.grad(y.sum(), x)
    # the DAC clip at inp_bound = 1 also zeroes |x| > 1
    torch.testing.assert_close(gx, torch.tensor([[2.0, 0.0, 0.0, 5.0]]))


def test_output_noise_statistics_and_seed():
    """Output noise has the configured sigma (in normalised units, times s_n * c_k) and is
    reproduced by torch.manual_seed."""
    periphery = PeripheryConfig(out_noise=0.06, out_bits=None, out_bound=None,
                                noise_management="none", inp_bits=None)
    x = torch.zeros(64, 4096)
    col_scale = torch.full((4096,), 2.0)
    torch.manual_seed(3)
    y1 = torch_analog_pass(x, lambda v: v, col_scale, periphery, fused=True)
    torch.manual_seed(3)
    y2 = torch_analog_pass(x, lambda v: v, col_scale, periphery, fused=True)
    assert torch.equal(y1, y2)
    n = y1.numel()
    sigma = y1.double().std().item()
    assert abs(sigma - 0.12) < 3 * 0.12 / (2 * n) ** 0.5 + 1e-3
    assert abs(y1.double().mean().item()) < 3 * 0.12 / n ** 0.5


def test_nan_input_raises():
    periphery = PeripheryConfig()
    x = torch.tensor([[1.0, float("nan")]])
    with pytest.raises(ValueError, match="NaN"):
        torch_analog_pass(x, lambda v: v, torch.ones(2), periphery, fused=True)
