"""The configuration of hardware-aware training: :class:`HardwareAwareConfig`."""
from __future__ import annotations

from dataclasses import dataclass

from aimcsim.validation import check_bool, check_choice, check_float

HWA_NOISE_MODELS = ("gaussian", "device")


@dataclass
class HardwareAwareConfig:
    """Noise model of hardware-aware training (physics.md section 7), applied per mini-batch in
    the training-mode forward pass.

    Attributes:
        noise_model: the weight perturbation of each step (:mod:`aimcsim.nn.training_weights`):
            ``gaussian`` (additive noise of std ``weight_noise``) or ``device`` (the layer's
            device model: programming noise, drift to a time drawn log-uniformly from
            [``t_min``, ``t_max``] seconds with per-device exponents, read noise, and the
            drift compensation inference applies).
        weight_noise: std of additive Gaussian weight noise relative to the tile's max|W|
            (0.02-0.08 is the useful range; above 0.08 networks stop reaching float accuracy;
            accepted: 0 to 10).
        clip_sigma: weights are clipped to +-clip_sigma x std(W) of the layer (None: off;
            accepted: > 0 and <= 1000).
        periphery: run DAC/ADC quantisation, output noise and bound management of the
            layer's AnalogConfig in the training forward pass.
        t_min, t_max: range of the read times of the ``device`` model, seconds (> 0).
        noise_scale: ``device`` model only: the read weights' deviation from the mapped
            float weights is multiplied by this factor, ``W_n = W/w_max + k (W_n(t) -
            W/w_max)`` (noise inflation: train for a harsher device than the one read at
            inference; 1: the device as it is; accepted 0 to 10).
    """

    weight_noise: float = 0.03
    clip_sigma: float | None = 2.5
    periphery: bool = True
    noise_model: str = "gaussian"
    t_min: float = 1.0
    t_max: float = 1e6
    noise_scale: float = 1.0

    def __post_init__(self) -> None:
        self.weight_noise = check_float(self.weight_noise, "weight_noise", 0, 10)
        self.clip_sigma = check_float(self.clip_sigma, "clip_sigma", 0, 1000, low_open=True,
                                      allow_none=True)
        self.periphery = check_bool(self.periphery, "periphery")
        check_choice(self.noise_model, HWA_NOISE_MODELS, "noise_model")
        self.t_min = check_float(self.t_min, "t_min", 0, 1e12, low_open=True)
        self.t_max = check_float(self.t_max, "t_max", 0, 1e12, low_open=True)
        self.noise_scale = check_float(self.noise_scale, "noise_scale", 0, 10)
        if self.t_min > self.t_max:
            raise ValueError(f"t_min must not exceed t_max, got t_min={self.t_min!r}, "
                             f"t_max={self.t_max!r}")
