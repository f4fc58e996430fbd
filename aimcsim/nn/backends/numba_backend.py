"""The Numba backend: inference of programmed tiles on the CPU.

Each row block of tiles runs the fused Numba periphery of :mod:`aimcsim.tiles.engine` around
the layer's native torch GEMM (:meth:`aimcsim.nn.geometry.LayerGeometry.gemm`: a matrix
product, or a convolution over the block's input channels that never unfolds its input):

- linear layers and ``input_scaling="per_image"``: :func:`~aimcsim.tiles.engine.analog_pass`,
  one input vector per sample;
- ``per_patch`` and ``static``: :func:`~aimcsim.tiles.engine.analog_pass_per_vector`, one
  input vector per output position, its scales from ``kernels.periphery.dac_per_patch`` (or a
  constant);
- ``per_patch_exact``: every patch unfolded and run as one input vector (the slow reference).

With ``gemm_precision="bfloat16"`` (the default) the GEMM's operands and outputs are
bfloat16: the per-vector path hands the GEMM the DAC kernel's bfloat16 bits and the ADC
kernel widens the outputs' bits, around oneDNN's native bfloat16 convolutions where the CPU
has them (else a float32 convolution of the same values, its output rounded); linear layers
multiply in bfloat16 between torch's casts where native, and ``per_image`` and the unfolded
reference round around a float32 GEMM (:func:`rounded_gemm`).

No autograd: a pass that needs gradients, or a tensor on another device, runs the torch
backend. Tensors are handed to the kernels as numpy views (channels-last inputs keep their
layout), and the outputs of the tiles are summed in place.
"""
from __future__ import annotations

import platform
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from aimcsim.kernels.bfloat16 import round_to_bfloat16, widen_bfloat16
from aimcsim.kernels.periphery import absmax_per_pixel, dac_patches, dac_pixels
from aimcsim.nn.backends.base import Backend
from aimcsim.tiles.engine import analog_pass, analog_pass_per_vector, safe_vector_scale
from aimcsim.tiles.scratch import scratch_buffer, squared

if TYPE_CHECKING:
    from aimcsim.nn.analog_mvm import AnalogMVM


def as_channel_view(t: torch.Tensor, channels_last: bool) -> np.ndarray:
    """(N, C, *S) tensor -> numpy (N, C, prod S) or, channels_last, (N, prod S, C); a
    bfloat16 tensor gives its bits (uint16)."""
    n, c = t.shape[0], t.shape[1]
    bits = t.dtype == torch.bfloat16
    if bits:
        t = t.view(torch.int16)
    if channels_last:
        a = t.permute(0, 2, 3, 1).numpy().reshape(n, -1, c)
    else:
        a = t.numpy().reshape(n, c, -1)
    return a.view(np.uint16) if bits else a


def from_channel_view(a: np.ndarray, channels: int, spatial: tuple[int, ...],
                      channels_last: bool) -> torch.Tensor:
    """Inverse of :func:`as_channel_view` (a view of the same memory; uint16 bits give a
    bfloat16 tensor)."""
    n = a.shape[0]
    if a.dtype == np.uint16:
        t = torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    else:
        t = torch.from_numpy(a)
    if channels_last:
        return t.view(n, *spatial, channels).permute(0, 3, 1, 2)
    return t.view(n, channels, *spatial)


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo (Linux), or None where it cannot be read."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def bfloat16_convolutions() -> bool:
    """True when oneDNN runs bfloat16 convolutions natively on this CPU (AVX512-BF16 or
    AMX); elsewhere they are emulated and slower than float32 (and a torch build without the
    query, a private one, counts as elsewhere). torch's query also answers True for AVX-512
    CPUs without the bfloat16 instructions, which oneDNN emulates; where /proc/cpuinfo is
    readable, its flags must name ``avx512_bf16`` or ``amx_bf16``."""
    try:
        supported = bool(torch.backends.mkldnn.is_available()
                         and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
    flags = _cpu_flags()
    if supported and flags is not None and platform.machine().lower() in ("x86_64", "amd64"):
        return bool(flags & {"avx512_bf16", "amx_bf16"})
    return supported


_BF16 = bfloat16_convolutions()


def rounded(values: np.ndarray) -> np.ndarray:
    """float32 ``values`` rounded to bfloat16 (nearest, ties to even), as float32."""
    return widen_bfloat16(round_to_bfloat16(values))


def rounded_gemm(gemm: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A float32 ``gemm`` (numpy in and out) with its input and its output rounded to
    bfloat16: ``gemm_precision="bfloat16"`` where the tile pass has no bfloat16 path of its
    own (linear layers, ``per_image``, the unfolded reference). Its weights must be rounded
    by the caller."""
    def gemm_bfloat16(xq: np.ndarray) -> np.ndarray:
        return rounded(gemm(rounded(xq)))
    return gemm_bfloat16


def variance_conv(geometry, xq: np.ndarray, view: Callable[[np.ndarray], torch.Tensor],
                  variance: torch.Tensor, groups: int, bf16: bool | None = None
                  ) -> torch.Tensor:
    """The read-noise variance of every output of a convolution with per-MVM read noise,
    ``var = conv(xq^2, sigma_w^2)`` (input units squared), float32; ``view`` turns the DAC
    output ``xq`` (numpy channel view) into the convolution's input tensor.

    Where the CPU has native bfloat16 convolutions (``bf16`` None: detected), it is computed
    from bfloat16 operands (8-bit mantissa) with float32 accumulation and a bfloat16 result:
    2.2-2.8 times faster than float32 for ResNet-32's layers (benchmarks/README.md). An
    approximation of a variance only: its relative error is bounded by about 1% per output
    (the rounding of x, of its square, of sigma_w^2 and of the result, 2^-9 each); measured
    against float64 on a 16-to-32-channel 3x3 layer (``tests/test_input_scaling.py``): 0.6% at
    most, 0.15% on average, i.e. at most 0.3% on the read-noise standard deviation it feeds,
    far inside the uncertainty of the read-noise model. Without native bfloat16 it is
    float32. ``xq`` may hold bfloat16 bits (uint16; ``gemm_precision="bfloat16"``)."""
    if bf16 if bf16 is not None else _BF16:
        t = view(xq)  # (bfloat16 bits: a view of the DAC buffer, so squared out of place)
        squares = t.square() if t.dtype == torch.bfloat16 else t.to(torch.bfloat16).square_()
        return geometry.gemm(squares, variance.to(torch.bfloat16), groups).float()
    if xq.dtype == np.uint16:
        return geometry.gemm(view(xq).float().square_(), variance, groups)
    return geometry.gemm(view(squared(xq)), variance, groups)


class NumbaBackend(Backend):
    """Programmed tiles on the CPU through the fused Numba periphery (see module docstring)."""

    name = "numba"

    def infer(self, mvm: "AnalogMVM", x: torch.Tensor) -> torch.Tensor:
        if not mvm.geometry.is_conv:
            return self._rows(mvm, x)
        if mvm.config.periphery.input_scaling == "per_patch_exact":
            return self._unfolded(mvm, x)
        return self._conv(mvm, x)

    @staticmethod
    def _per_vector(mvm: "AnalogMVM") -> bool:
        """Whether ``infer`` runs ``mvm`` through the per-vector ADC: convolutions by
        :meth:`_conv`, every input scaling but ``per_image`` (and ``per_patch_exact``, which
        :meth:`infer` sends to the unfolded reference)."""
        return mvm.geometry.is_conv and mvm.config.periphery.input_scaling not in (
            "per_image", "per_patch_exact")

    def checks_output(self, mvm: "AnalogMVM") -> bool:
        """The per-vector ADC's kernel counts non-finite values as it converts."""
        return self._per_vector(mvm)

    # ------------------------------------------------------------------ linear layers
    def _rows(self, mvm: "AnalogMVM", x: torch.Tensor) -> torch.Tensor:
        """A linear layer: every sample one input vector, tile outputs summed in place."""
        periphery = mvm.row_periphery()
        geometry = mvm.geometry
        x = x.detach().contiguous()
        n = x.shape[0]
        xn = x.numpy().reshape(n, 1, -1)
        out = np.zeros((n, 1, mvm.out_channels), np.float32)
        seeds = mvm.tiles.pass_seeds()
        low = mvm.config.gemm_precision == "bfloat16"
        for b, (block, cache) in enumerate(zip(mvm.tiles.blocks, mvm.tiles.cache)):
            i0, i1 = block.in_channels
            o0, o1 = block.out_channels

            if low and _BF16:  # native bfloat16 matrix product, torch's casts around it
                def gemm(xq, weight=mvm.tiles.bfloat16_weights()[b]):
                    v = torch.from_numpy(xq.reshape(xq.shape[0], -1)).to(torch.bfloat16)
                    y = geometry.gemm(v, weight, 1).float()
                    return y.numpy().reshape(xq.shape[0], 1, -1)
            else:
                def gemm(xq, weight=mvm.tiles.bfloat16_weights(widened=True)[b] if low
                         else cache.weight):
                    v = torch.from_numpy(xq.reshape(xq.shape[0], -1))
                    return geometry.gemm(v, weight, 1).numpy().reshape(xq.shape[0], 1, -1)
                if low:
                    gemm = rounded_gemm(gemm)
            var_gemm = None
            if cache.variance is not None:
                def var_gemm(xq, var=cache.variance):
                    sq = torch.from_numpy(squared(xq).reshape(xq.shape[0], -1))
                    return geometry.gemm(sq, var, 1).numpy().reshape(xq.shape[0], 1, -1)
            analog_pass(xn[:, :, i0:i1], gemm, out[:, :, o0:o1], cache.scale.numpy(), 2,
                        periphery, np.random.default_rng(seeds[b]), accumulate=True,
                        var_gemm=var_gemm, stats=mvm.stats)
        return torch.from_numpy(out.reshape(n, -1))

    # ------------------------------------------------------------------ convolutions
    def _conv(self, mvm: "AnalogMVM", x: torch.Tensor) -> torch.Tensor:
        """A convolution around each row block's native convolution (no unfolding)."""
        periphery = mvm.config.periphery
        geometry = mvm.geometry
        c_out = mvm.out_channels
        x = geometry.prepare(x).detach()
        channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last)
        if not channels_last:
            x = x.contiguous()
        xn = as_channel_view(x, channels_last)
        axis = 2 if channels_last else 1
        dac_step = self._dac_step(mvm, x, axis)
        out_t = None
        out_n = None
        written: list[tuple[int, int]] = []  # output-channel ranges already written
        seeds = mvm.tiles.pass_seeds()
        per_vector = self._per_vector(mvm)
        low = mvm.config.gemm_precision == "bfloat16"
        native = per_vector and _BF16  # bfloat16 convolutions; else float32 on rounded values
        low_weights = mvm.tiles.bfloat16_weights(widened=not native) if low else None
        for b, (block, cache) in enumerate(zip(mvm.tiles.blocks, mvm.tiles.cache)):
            i0, i1 = block.in_channels
            o0, o1 = block.out_channels
            xs = xn[:, :, i0:i1] if channels_last else xn[:, i0:i1]
            shape = {}
            weight = cache.weight
            if low:  # bfloat16 operands: native, emulated in float32, or rounded around
                weight = low_weights[b]

            def gemm(xq, weight=weight, groups=block.groups, channels=i1 - i0, shape=shape):
                t = from_channel_view(xq, channels, x.shape[2:], channels_last)
                if t.dtype == torch.bfloat16 and weight.dtype != torch.bfloat16:
                    y = geometry.gemm(t.float(), weight, groups).to(torch.bfloat16)
                else:
                    y = geometry.gemm(t, weight, groups)
                shape["spatial"] = tuple(y.shape[2:])
                return as_channel_view(y, channels_last)
            if low and not per_vector:
                gemm = rounded_gemm(gemm)
            var_gemm = None
            if cache.variance is not None:
                def var_gemm(xq, var=cache.variance, groups=block.groups, channels=i1 - i0):
                    def view(a: np.ndarray) -> torch.Tensor:
                        return from_channel_view(a, channels, x.shape[2:], channels_last)
                    return as_channel_view(variance_conv(geometry, xq, view, var, groups),
                                           channels_last)
            col_scale = cache.scale.numpy()
            whole = out_n is None and o0 == 0 and o1 == c_out
            if not whole and out_n is None:
                out_t = torch.empty(geometry.output_shape(x, c_out), dtype=torch.float32,
                                    memory_format=torch.channels_last if channels_last
                                    else torch.contiguous_format)
                out_n = as_channel_view(out_t, channels_last)
            dest = None if whole else (out_n[:, :, o0:o1] if channels_last else out_n[:, o0:o1])
            accumulate = any(a < o1 and o0 < b for a, b in written)
            if not per_vector:  # per_image
                res = analog_pass(xs, gemm, dest, col_scale, axis, periphery,
                                  np.random.default_rng(seeds[b]), accumulate=accumulate,
                                  var_gemm=var_gemm, stats=mvm.stats)
            else:
                safe = safe_vector_scale(periphery, *mvm.tiles.maxima[b])
                res = analog_pass_per_vector(xs, dac_step, gemm, dest, col_scale, axis,
                                             periphery, seeds[b], accumulate=accumulate,
                                             var_gemm=var_gemm, stats=mvm.stats,
                                             safe_scale=safe, bfloat16=low)
            if whole:
                out_t = from_channel_view(res, o1 - o0, shape["spatial"], channels_last)
                out_n = res
            written.append((o0, o1))
        reach = 0  # channels no tile writes (cannot happen for valid plans)
        for a, b in sorted(written):
            if a > reach:
                break
            reach = max(reach, b)
        if reach < c_out:
            raise RuntimeError(f"{mvm.name}: output channels left unwritten")
        return out_t

    @staticmethod
    def _dac_step(mvm: "AnalogMVM", x: torch.Tensor, axis: int):
        """The DAC step of :func:`analog_pass_per_vector` for the prepared 4-D input ``x``:
        per-patch abs-max scales (``dac_per_patch``) or one constant scale (static range,
        constant or no noise management)."""
        periphery = mvm.config.periphery
        h, w = x.shape[2:]
        window = mvm.geometry.window().kernel_parameters(h, w)
        positions = int(window[10] * window[11])
        bound, step = periphery.inp_bound, periphery.inp_step
        name = mvm.name

        def per_patch(xs: np.ndarray, xq: np.ndarray) -> np.ndarray:
            scales = np.empty((xs.shape[0], positions), np.float32)
            if not dac_patches(xs, xq, axis, h, w, window, scales, bound, step):
                raise ValueError(f"{name} input contains NaN or inf values")
            return scales

        def constant(xs: np.ndarray, xq: np.ndarray) -> np.ndarray:
            n = xs.shape[0]
            if not absmax_per_pixel(xs, axis, np.empty((n, h * w), np.float32)):
                raise ValueError(f"{name} input contains NaN or inf values")
            value = mvm.constant_scale()
            wide = scratch_buffer("dac_wide", xq.shape) if xq.dtype == np.uint16 else xq
            dac_pixels(xs, wide, np.full((n, h * w), value, np.float32), axis, bound, step)
            if wide is not xq:
                round_to_bfloat16(wide, xq)
            return np.full((n, positions), value, np.float32)

        abs_max = periphery.input_scaling == "per_patch" and \
            periphery.noise_management == "abs_max"
        return per_patch if abs_max else constant

    # ------------------------------------------------------------------ exact reference
    @staticmethod
    def _unfolded(mvm: "AnalogMVM", x: torch.Tensor) -> torch.Tensor:
        """The exact per-patch reference: every patch unfolded and run through its tiles as
        one input vector (DAC with its own scale, bound management repeating its own DAC).
        Slow (k x k copies of the input); ``input_scaling="per_patch_exact"``."""
        geometry = mvm.geometry
        x = geometry.prepare(x).detach()
        window = geometry.window()
        if any(window.pad):
            x = F.pad(x, window.pad)
        n = x.shape[0]
        spatial = [(size - d * (k - 1) - 1) // s + 1 for size, k, s, d in
                   zip(x.shape[2:], window.kernel, window.stride, window.dilation)]
        out = torch.zeros([n, mvm.out_channels] + spatial, dtype=torch.float32)
        seeds = mvm.tiles.pass_seeds()
        for b, (block, cache) in enumerate(zip(mvm.tiles.blocks, mvm.tiles.cache)):
            i0, i1 = block.in_channels
            o0, o1 = block.out_channels
            cols = F.unfold(x[:, i0:i1], window.kernel, window.dilation, 0, window.stride)
            positions = cols.shape[2]
            vectors = cols.transpose(1, 2).reshape(n * positions, 1, -1).contiguous().numpy()
            weight = cache.weight
            low = mvm.config.gemm_precision == "bfloat16"
            if low:
                weight = mvm.tiles.bfloat16_weights(widened=True)[b]
            matrix = geometry.dense_block_matrix(weight, block, i1 - i0)
            var_gemm = None
            if cache.variance is not None:
                var_matrix = geometry.dense_block_matrix(cache.variance, block, i1 - i0)

                def var_gemm(v, m=var_matrix):
                    return (torch.from_numpy(v * v).squeeze(1) @ m.t()).numpy()[:, None]

            def gemm(v, m=matrix):
                return (torch.from_numpy(v).squeeze(1) @ m.t()).numpy()[:, None]
            if low:
                gemm = rounded_gemm(gemm)
            y = analog_pass(vectors, gemm, None, cache.scale.numpy(), 2,
                            mvm.config.periphery, np.random.default_rng(seeds[b]),
                            accumulate=False, var_gemm=var_gemm, stats=mvm.stats)
            y = torch.from_numpy(y).view(n, positions, o1 - o0).transpose(1, 2)
            out[:, o0:o1] += y.reshape(n, o1 - o0, *out.shape[2:])
        return out
