"""The periphery of a tile: DAC, noise and bound management, output noise, ADC.

Units: a tile computes in normalised units. Inputs after the DAC are in [-inp_bound, inp_bound]
(1 = full-scale input voltage); weights are conductance differences divided by g_max, so in
[-1, 1]; the raw output ``y = W_n^T x_n`` is in the same units, and the ADC clips it to
``[-out_bound, out_bound]`` (default 12) before quantising.

Equations (physics.md section 5):
- DAC: ``x_q = rint(clip(x / s, -b_in, b_in) / d_in) * d_in``, ``d_in = 2 b_in / (2^bits - 2)``.
- noise management: s = max|x| of the input vector (``abs_max``), a constant, or 1 (``none``).
- ADC: ``y_q = rint(clip(y + sigma_out xi, -b_out, b_out) / d_out) * d_out``,
  ``d_out = 2 b_out / (2^bits - 2)``.
- iterative bound management: while an output of a vector is clipped, halve that vector's
  input (s -> 2 s) and repeat, up to ``max_bound_iterations`` times.

This module holds the config and plain numpy reference functions; the fast path is the fused
Numba kernels of ``kernels/periphery.py``, which the tests hold against these references.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aimcsim.kernels.periphery import NM_ABS_MAX, NM_CONSTANT, NM_NONE
from aimcsim.validation import check_bits, check_choice, check_float, check_int

NOISE_MANAGEMENT = {"none": NM_NONE, "abs_max": NM_ABS_MAX, "constant": NM_CONSTANT}
BOUND_MANAGEMENT = ("none", "iterative")
#: Granularity of a convolution's input vector (see :class:`PeripheryConfig`).
INPUT_SCALING = ("per_patch", "per_patch_exact", "per_image", "static")
#: Upper limit of the bounds, the divisor and the output noise (normalised units): a tile's
#: output is at most rows x 1 x inp_bound, so larger values only lose float32 precision.
MAX_LEVEL = 1e6
#: Upper limit of ``max_bound_iterations``: the input scale grows by 2^iterations.
MAX_BOUND_ITERATIONS = 32


def quantization_step(bits: int | None, bound: float) -> float:
    """Step of a converter with ``2^bits - 2`` equal steps over ``[-bound, bound]``; 0 for
    ``bits=None`` (no quantisation)."""
    if bits is None:
        return 0.0
    return 2.0 * bound / (2 ** bits - 2)


@dataclass
class PeripheryConfig:
    """DAC/ADC and management settings of every tile.

    Every field is checked at construction (ValueError naming the field). Upper limits: bits
    <= 24 (``aimcsim.validation.MAX_CONVERTER_BITS``): a float32 value carries 24 significant
    bits, so a finer step is not representable in the float32 periphery, and from 128 bits on
    2^bits overflows float32 altogether; bounds, ``nm_constant`` and ``out_noise`` <= 1e6
    (:data:`MAX_LEVEL`); ``max_bound_iterations`` <= 32.

    Attributes:
        inp_bits: DAC resolution in bits (2 to 24), or None for an ideal DAC.
        inp_bound: DAC clip bound, normalised input units (> 0).
        out_bits: ADC resolution in bits (2 to 24), or None for an ideal ADC.
        out_bound: ADC clip bound, normalised output units (> 0), or None for no clipping.
        out_noise: standard deviation of the additive output noise before the ADC,
            normalised output units (>= 0); default 0.06.
        noise_management: ``abs_max`` (divide each input vector by its max |x|), ``constant``
            (divide by ``nm_constant``) or ``none``.
        nm_constant: the divisor of ``constant`` noise management (> 0).
        bound_management: ``iterative`` (halve the input while the ADC saturates) or ``none``.
        max_bound_iterations: how many halvings at most (0 to 32).
        input_scaling: what one input vector of a convolution is, i.e. what noise and bound
            management act on (linear layers: always one row per vector):

            - ``per_patch`` (default): each patch, as on a real tile (one MVM per output
              position), computed without unfolding: per-patch scales from a max-pool of the
              channel-wise abs-max, the DAC relative to the abs-max of the window centred on
              each pixel (the one approximation, measured in docs/physics.md);
            - ``per_patch_exact``: the same, exactly, by unfolding every patch through the
              tile: the slow reference of ``per_patch`` (inference only: hardware-aware
              training runs the ``per_patch`` pass for it);
            - ``per_image``: one scale per image and tile for all its patches (coarser; the
              default before 2026-11-29);
            - ``static``: a fixed input range per layer, calibrated from data
              (``aimcsim.calibrate_input_ranges``), as a chip with a fixed DAC range; replaces
              noise management, inputs beyond the range clip at the DAC.
    """

    inp_bits: int | None = 7
    inp_bound: float = 1.0
    out_bits: int | None = 9
    out_bound: float | None = 12.0
    out_noise: float = 0.06
    noise_management: str = "abs_max"
    nm_constant: float = 1.0
    bound_management: str = "iterative"
    max_bound_iterations: int = 5
    input_scaling: str = "per_patch"

    def __post_init__(self) -> None:
        self.inp_bits = check_bits(self.inp_bits, "inp_bits")
        self.out_bits = check_bits(self.out_bits, "out_bits")
        for name in ("inp_bound", "nm_constant"):
            setattr(self, name, check_float(getattr(self, name), name, 0, MAX_LEVEL,
                                            low_open=True))
        self.out_bound = check_float(self.out_bound, "out_bound", 0, MAX_LEVEL, low_open=True,
                                     allow_none=True)
        if self.out_bits is not None and self.out_bound is None:
            raise ValueError("out_bits needs a finite out_bound (the ADC range)")
        self.out_noise = check_float(self.out_noise, "out_noise", 0, MAX_LEVEL)
        check_choice(self.noise_management, NOISE_MANAGEMENT, "noise_management")
        check_choice(self.bound_management, BOUND_MANAGEMENT, "bound_management")
        self.max_bound_iterations = check_int(self.max_bound_iterations, "max_bound_iterations",
                                              0, MAX_BOUND_ITERATIONS)
        check_choice(self.input_scaling, INPUT_SCALING, "input_scaling")

    @property
    def inp_step(self) -> float:
        """DAC step, normalised input units (0: ideal)."""
        return quantization_step(self.inp_bits, self.inp_bound)

    @property
    def out_step(self) -> float:
        """ADC step, normalised output units (0: ideal)."""
        return quantization_step(self.out_bits, self.out_bound or np.inf)

    @property
    def out_clip(self) -> float:
        """ADC clip bound (np.inf when unbounded)."""
        return float(self.out_bound) if self.out_bound is not None else float(np.inf)

    @classmethod
    def ideal(cls) -> "PeripheryConfig":
        """No quantisation, no clipping, no output noise, no management."""
        return cls(inp_bits=None, inp_bound=1.0, out_bits=None, out_bound=None, out_noise=0.0,
                   noise_management="abs_max", bound_management="none")


def reference_dac(x: np.ndarray, config: PeripheryConfig,
                  scale_multiplier: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Numpy reference of the DAC on (N, ...) input vectors; returns (x_q, s) with x ~ s x_q."""
    x = np.asarray(x, dtype=np.float32)
    flat = x.reshape(x.shape[0], -1)
    if config.noise_management == "abs_max":
        s = np.abs(flat).max(axis=1) if flat.shape[1] else np.zeros(x.shape[0], np.float32)
        s = np.where(s == 0, 1.0, s).astype(np.float32)
    elif config.noise_management == "constant":
        s = np.full(x.shape[0], config.nm_constant, np.float32)
    else:
        s = np.ones(x.shape[0], np.float32)
    if scale_multiplier is not None:
        s = (s * scale_multiplier).astype(np.float32)
    v = np.clip(flat * (np.float32(1.0) / s)[:, None], -config.inp_bound, config.inp_bound)
    if config.inp_step > 0:
        v = np.rint(v / np.float32(config.inp_step)) * np.float32(config.inp_step)
    return v.reshape(x.shape).astype(np.float32), s


def reference_adc(y: np.ndarray, config: PeripheryConfig,
                  noise: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Numpy reference of output noise + ADC on (N, ...) outputs; ``noise`` are standard normal
    draws (same shape) or None for no output noise. Returns (y_q, clipped count per sample)."""
    v = np.asarray(y, dtype=np.float32)
    if noise is not None and config.out_noise > 0:
        v = v + np.float32(config.out_noise) * noise
    clipped = (np.abs(v) > config.out_clip).reshape(v.shape[0], -1).sum(axis=1)
    v = np.clip(v, -config.out_clip, config.out_clip)
    if config.out_step > 0:
        v = np.rint(v / np.float32(config.out_step)) * np.float32(config.out_step)
    return v.astype(np.float32), clipped
