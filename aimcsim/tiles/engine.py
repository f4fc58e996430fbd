"""One analog MVM pass of a tile around an arbitrary GEMM: DAC -> GEMM -> noise + ADC -> scale,
with iterative bound management.

Two granularities of the input vector: :func:`analog_pass` scales each sample (a row of a
matrix product, or a whole image of a convolution: ``input_scaling="per_image"``);
:func:`analog_pass_per_vector` scales each output position's patch separately (every MVM of a
real tile), from per-pixel and per-patch scales that the caller computes without unfolding.

The GEMM is a callback, so the same periphery serves a plain matrix product (``AnalogTile``) and
a native convolution (the conv layers), which never unfold their input.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from aimcsim.kernels.adc_per_vector import adc_per_vector
from aimcsim.kernels.periphery import FLOAT32_MAX, adc, dac
from aimcsim.kernels.rng import seed_from
from aimcsim.tiles.periphery import NOISE_MANAGEMENT, PeripheryConfig
from aimcsim.tiles.scratch import dac_buffer

Gemm = Callable[[np.ndarray], np.ndarray]
#: (input, DAC output buffer) -> input scale of every output position's vector (N, P_out).
DacStep = Callable[[np.ndarray, np.ndarray], np.ndarray]
_NO_VAR = np.zeros((1, 1, 1), np.float32)


class NonFiniteOutput(ValueError):
    """A pass whose GEMM output (before the ADC's clip) or rescaled output is not finite: the
    input or the weights hold NaN / inf, or a finite input so large that float32 overflowed.
    The layer turns it into an error naming itself and the cause
    (:func:`aimcsim.nn.guards.periphery_overflow`)."""


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
    iterations = bound_iterations(periphery)
    scales = np.ones(n, np.float32)
    xq = dac_buffer(x.shape)  # (reused: the GEMMs below read it, nothing keeps it)
    if not dac(x, xq, scales, mode, periphery.nm_constant, periphery.inp_bound,
               periphery.inp_step):
        raise ValueError("input contains NaN or inf values")
    y = gemm(xq)
    if out is None:
        out = y
    var = var_gemm(xq) if var_gemm is not None else _NO_VAR
    clipped = np.zeros(n, np.int64)
    hold = iterations > 0
    adc(y, var, out, scales, col_scale, channel_axis, periphery.out_noise,
                   var_gemm is not None, periphery.out_clip, periphery.out_step,
                   np.uint64(seed_from(rng)), accumulate, hold, clipped)
    pending = np.flatnonzero(clipped) if hold else np.zeros(0, np.int64)
    final_clipped = int(clipped.sum()) if not hold else 0
    repeated = 0
    for iteration in range(1, iterations + 1):
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
                       periphery.out_step, np.uint64(seed_from(rng)), False, False,
                       sub_clipped)
        done = (sub_clipped == 0) if iteration < iterations else np.ones(pending.size, bool)
        final_clipped += int(sub_clipped[done].sum())
        if accumulate:
            out[pending[done]] += y_sub[done]
        else:
            out[pending[done]] = y_sub[done]
        pending = pending[~done]
    if stats is not None:
        stats.add(SaturationStats(outputs=int(out.size), clipped=final_clipped,
                                  repeated_vectors=repeated))
    return out


def bound_iterations(periphery: PeripheryConfig) -> int:
    """How many bound-management repetitions the periphery allows (0 when off)."""
    return (periphery.max_bound_iterations if periphery.bound_management == "iterative"
            and periphery.out_bound is not None else 0)


#: Room left below the float32 maximum by :func:`safe_vector_scale`: sums over up to 1024
#: row blocks, and a factor 2 for rounding.
_SAFE_MARGIN = 2.0 ** 11
#: Largest |xi| of the per-patch kernel's normals (exact tails: r + a with a <= 53 ln 2 / r).
_MAX_NORMAL = 16.0


def safe_vector_scale(periphery: PeripheryConfig, rows: int, weight_max: float,
                      variance_max: float, scale_max: float) -> float:
    """The largest input scale s of a per-patch vector for which every value of its pass is
    finite by construction, so the ADC kernel need not check them
    (:func:`~aimcsim.kernels.adc_per_vector.adc_per_vector`'s ``safe_scale``).

    An input of a vector of scale s is at most s, and its DAC output at most x_max s with
    x_max = 2 max(1, b_in) (a value rounds to at most twice itself, and the fast per-patch
    DAC's per-pixel scale may exceed the patch's). So over ``rows`` inputs with |W_n| <= w_max:
    |y| <= rows x_max w_max s and var <= rows (x_max s)^2 var_max; the ADC value is at most
    v_max = b_out (without an ADC bound, rows x_max w_max + 16 (sigma_out + x_max
    sqrt(rows var_max)), 16 bounding the kernel's normals), and the written value at most
    v_max s 2^k col_scale_max after k bound-management halvings. Each must stay below
    FLOAT32_MAX / 2048 (room for the sum of up to 1024 row blocks, and a factor 2 for
    rounding): s at most that over the largest factor. Realistic inputs are many orders of
    magnitude below: about 5e30 for a 512-row tile with the default periphery (5 halvings),
    1.6e17 with per-MVM read noise (its variance squares the input)."""
    budget = float(FLOAT32_MAX) / _SAFE_MARGIN / 2.0 ** bound_iterations(periphery)
    x_max = 2.0 * max(1.0, periphery.inp_bound)
    y_max = rows * x_max * weight_max
    noise_max = _MAX_NORMAL * (periphery.out_noise + x_max * float(np.sqrt(rows * variance_max)))
    v_max = min(periphery.out_clip, y_max + noise_max)
    limits = [budget / max(y_max, 1e-30), budget / max(v_max * scale_max, 1e-30)]
    if variance_max > 0:
        limits.append(float(np.sqrt(budget / (rows * x_max * x_max * variance_max))))
    return min(limits)


def analog_pass_per_vector(x: np.ndarray, dac_input: DacStep, gemm: Gemm,
                           out: np.ndarray | None, col_scale: np.ndarray, channel_axis: int,
                           periphery: PeripheryConfig, seed: int, accumulate: bool,
                           var_gemm: Gemm | None = None,
                           stats: SaturationStats | None = None,
                           safe_scale: float = 0.0, bfloat16: bool = False) -> np.ndarray:
    """One tile's periphery with one input scale per output position (per patch).

    ``dac_input(x, xq)`` writes the DAC output, in input units, into ``xq`` and returns the
    input scale of every output position's vector (N, P_out): for a convolution each pixel is
    quantised relative to the abs-max of the kernel window centred on it (exact for 1x1
    kernels and static ranges; for k x k kernels an approximation of each patch's own step,
    measured in docs/physics.md) and the vector scale is the abs-max of each patch
    (kernels/periphery.py ``dac_per_patch``). The GEMM runs once on the dequantised input;
    output noise, ADC and bound management then act on each position's vector relative to its
    scale (``adc_per_vector``). A bound-management repetition reuses the GEMM output halved
    (its DAC step is not coarsened: part of the same approximation).

    Args:
        x: (N, C, P) or (N, P, C) float32 tile inputs (``channel_axis`` 1 or 2).
        dac_input: the DAC step (see above).
        gemm, var_gemm, col_scale, periphery, accumulate, stats: as in :func:`analog_pass`.
        out: destination, or None to write into the GEMM's buffer.
        seed: the noise-stream seed of this pass.
        safe_scale: input scale up to which every value is finite by construction
            (:func:`safe_vector_scale`); the ADC kernel checks the values of vectors with a
            larger scale one by one (0: every vector).
        bfloat16: the GEMM runs on bfloat16 operands (``AnalogConfig.gemm_precision``):
            ``dac_input`` writes bfloat16 bits (uint16) into ``xq``, ``gemm`` returns its
            outputs' bfloat16 bits, and the ADC widens them; ``out`` None then gets a float32
            array of its own.

    Raises:
        NonFiniteOutput: a GEMM output or a written output value is not finite (found by the
            ADC kernel as it converts, so a caller needs no second read of the output).
    """
    if out is None and accumulate:
        raise ValueError("accumulate needs an explicit out array")
    xq = dac_buffer(x.shape, np.uint16 if bfloat16 else np.float32)  # (reused: the GEMMs
    vector_scale = dac_input(x, xq)                                    # read it, none keeps it)
    y = gemm(xq)
    if out is None:
        out = np.empty(y.shape, np.float32) if bfloat16 else y
    var = var_gemm(xq) if var_gemm is not None else _NO_VAR
    counts = np.zeros((x.shape[0], 3), np.int64)
    adc_per_vector(y, var, out, vector_scale, col_scale, channel_axis, periphery.out_noise,
                   var_gemm is not None, periphery.out_clip, periphery.out_step,
                   bound_iterations(periphery), np.uint64(seed), accumulate, counts,
                   safe_scale=safe_scale)
    clipped, repeated, not_finite = counts.sum(axis=0).tolist()
    if not_finite:
        raise NonFiniteOutput(f"{not_finite} tile outputs are not finite")
    if stats is not None:
        stats.add(SaturationStats(outputs=int(out.size), clipped=clipped,
                                  repeated_vectors=repeated))
    return out
