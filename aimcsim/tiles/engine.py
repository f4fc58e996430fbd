"""One analog MVM pass of a tile around an arbitrary GEMM: DAC -> GEMM -> noise + ADC -> scale,
with iterative bound management.

The GEMM is a callback, so the same periphery serves a plain matrix product (``AnalogTile``) and
a native convolution (the conv layers), which never unfold their input.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from aimcsim.kernels.periphery import adc, dac
from aimcsim.kernels.rng import NORMAL_TABLE, seed_from
from aimcsim.tiles.periphery import NOISE_MANAGEMENT, PeripheryConfig

Gemm = Callable[[np.ndarray], np.ndarray]
_NO_VAR = np.zeros((1, 1, 1), np.float32)


@dataclass
class SaturationStats:
    """Counters of one tile's ADC: outputs converted, outputs clipped after bound management,
    and input vectors that bound management had to repeat."""

    outputs: int = 0
    clipped: int = 0
    repeated_vectors: int = 0

    def add(self, other: "SaturationStats") -> None:
        self.outputs += other.outputs
        self.clipped += other.clipped
        self.repeated_vectors += other.repeated_vectors

    @property
    def clipped_fraction(self) -> float:
        return self.clipped / self.outputs if self.outputs else 0.0


def analog_pass(x: np.ndarray, gemm: Gemm, out: np.ndarray | None, col_scale: np.ndarray,
                channel_axis: int, periphery: PeripheryConfig, rng: np.random.Generator,
                accumulate: bool, var_gemm: Gemm | None = None,
                stats: SaturationStats | None = None) -> np.ndarray:
    """Run one tile's periphery on a batch and write (or add) the rescaled outputs to ``out``.

    Args:
        x: (N, A, B) float32 inputs of the tile (any strides; not modified).
        gemm: maps the DAC output (N, A, B) float32 (C-contiguous) to the raw outputs
            (N, A2, B2) float32, C-contiguous, freshly allocated (it is used as scratch).
        out: (N, A2, B2) float32 destination view, or None to write in place into the GEMM's
            output buffer (then ``accumulate`` must be False).
        col_scale: per output channel factor turning ADC units into output units (weight
            scale x drift compensation), indexed along ``channel_axis`` (1 or 2) of ``out``.
        periphery: DAC/ADC settings.
        rng: source of the noise-stream seeds (one draw per pass and per repetition).
        accumulate: add to ``out`` (tile outputs summed digitally) instead of overwriting.
        var_gemm: like ``gemm`` but maps the DAC output to the per-output read-noise variance
            (fresh read noise per MVM); None when read noise is fixed per evaluation.
        stats: counters to update.

    Returns:
        The destination array (``out``, or the GEMM's buffer when ``out`` is None).
    """
    if out is None and accumulate:
        raise ValueError("accumulate needs an explicit out array")
    n = x.shape[0]
    mode = NOISE_MANAGEMENT[periphery.noise_management]
    bound_iterations = (periphery.max_bound_iterations
                        if periphery.bound_management == "iterative"
                        and periphery.out_bound is not None else 0)
    scales = np.ones(n, np.float32)
    xq = np.empty(x.shape, np.float32)
    if not dac(x, xq, scales, mode, periphery.nm_constant, periphery.inp_bound,
               periphery.inp_step):
        raise ValueError("input contains NaN or inf values")
    y = gemm(xq)
    if out is None:
        out = y
    var = var_gemm(xq) if var_gemm is not None else _NO_VAR
    clipped = np.zeros(n, np.int64)
    hold = bound_iterations > 0
    adc(y, var, out, scales, col_scale, channel_axis, periphery.out_noise,
                   var_gemm is not None, periphery.out_clip, periphery.out_step,
                   np.uint64(seed_from(rng)), NORMAL_TABLE, accumulate, hold, clipped)
    pending = np.flatnonzero(clipped) if hold else np.zeros(0, np.int64)
    final_clipped = int(clipped.sum()) if not hold else 0
    repeated = 0
    for iteration in range(1, bound_iterations + 1):
        if pending.size == 0:
            break
        repeated += pending.size
        xs = np.ascontiguousarray(x[pending])
        sub_scales = np.full(pending.size, 2.0 ** iteration, np.float32)
        xq_sub = np.empty(xs.shape, np.float32)
        dac(xs, xq_sub, sub_scales, mode, periphery.nm_constant, periphery.inp_bound,
                     periphery.inp_step)
        y_sub = gemm(xq_sub)
        var_sub = var_gemm(xq_sub) if var_gemm is not None else _NO_VAR
        sub_clipped = np.zeros(pending.size, np.int64)
        adc(y_sub, var_sub, y_sub, sub_scales, col_scale, channel_axis,
                       periphery.out_noise, var_gemm is not None, periphery.out_clip,
                       periphery.out_step, np.uint64(seed_from(rng)), NORMAL_TABLE, False, False,
                       sub_clipped)
        done = (sub_clipped == 0) if iteration < bound_iterations else np.ones(pending.size, bool)
        final_clipped += int(sub_clipped[done].sum())
        if accumulate:
            out[pending[done]] += y_sub[done]
        else:
            out[pending[done]] = y_sub[done]
        pending = pending[~done]
    if stats is not None:
        stats.add(SaturationStats(outputs=int(np.prod(out.shape)), clipped=final_clipped,
                                  repeated_vectors=repeated))
    return out
