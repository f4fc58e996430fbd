"""Hardware-aware ("custom") training: fine-tune FP32 weights with the analog noise model in the
forward pass (physics.md section 7).

The model is converted with :func:`aimcsim.convert_to_analog`; in training mode every analog
layer clips its weights at ``clip_sigma`` standard deviations, adds Gaussian weight noise
relative to each tile's max|W|, and runs the DAC/ADC quantisers (straight-through gradients),
output noise and bound management of the analog config. The loop itself is
:func:`aimcsim.training.trainer.train_classifier`, so checkpoints and resume work the same.

The clip acts in the forward pass only (straight-through), so the trained float weights keep
values beyond the bound that the network never saw. At the end the clipped weights are written
into the parameters (:func:`bake_weight_clipping_`) and ``model.pt`` holds them: programming
the raw weights instead would map those outliers onto the conductance range and waste it (on
the F1 network at epoch 3 of 6: 49% analog accuracy at 1 s with raw weights, 88% clipped).
"""
from __future__ import annotations

import os

import torch
from torch import nn

from aimcsim.data.cifar10 import CifarSplit
from aimcsim.nn import HardwareAwareConfig, analog_layers, convert_to_analog
from aimcsim.nn.attention import pack_attention_state
from aimcsim.tiles.config import AnalogConfig
from aimcsim.training.state_file import load_state
from aimcsim.training.trainer import TrainConfig, train_classifier


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a state dict (a ``model.pt`` or a trainer ``checkpoint.pt``, FP32 or hardware-aware)
    into ``model``; analog extra state is dropped when ``model`` is digital, and analog
    attention's separate q, k, v projections are packed into torch's ``in_proj_weight``
    (:func:`aimcsim.nn.attention.pack_attention_state`)."""
    state = load_state(path)
    if "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    own = model.state_dict()
    state = pack_attention_state(state, own)
    # analog metadata (tile state, configs) of a hardware-aware run: the float weights suffice
    state = {k: v for k, v in state.items() if not k.endswith("_extra_state") or k in own}
    model.load_state_dict(state)
    return model


def hardware_aware_finetune(model: nn.Module, train: CifarSplit, test: CifarSplit | None,
                            config: TrainConfig, out_dir: str | os.PathLike,
                            hwa: HardwareAwareConfig | None = None,
                            analog_config: AnalogConfig | None = None,
                            progress: bool = True, teacher: nn.Module | None = None
                            ) -> tuple[nn.Module, dict]:
    """Convert ``model`` (holding its FP32 weights) to analog layers and fine-tune it with the
    hardware noise model in the loop. Returns (analog model, history); ``out_dir/model.pt``
    holds the float weights of the analog model (load them into a converted model).
    ``teacher`` (a float network) with ``config.distill_weight > 0`` adds knowledge
    distillation to the loss (:mod:`aimcsim.training.distillation`).

    With ``hwa.noise_model == "device"`` the read times [t_min, t_max] must be valid for the
    device (e.g. within the RRAM model's characterised 1 s to 2 days), else ValueError."""
    hwa = hwa or HardwareAwareConfig()
    if hwa.noise_model == "device":
        device = (analog_config or AnalogConfig()).device
        for name in ("t_min", "t_max"):
            device.check_read_time(getattr(hwa, name), name)
    analog = convert_to_analog(model, analog_config, hwa=hwa)
    history = train_classifier(analog, train, test, config, out_dir, progress=progress,
                               finalize=bake_weight_clipping_, teacher=teacher)
    return analog, history


def bake_weight_clipping_(model: nn.Module) -> nn.Module:
    """Write into every analog layer's parameters the clipped weights its hardware-aware
    forward used (:meth:`clipped_weight`), in place; returns ``model``. Apply once, at the end
    of training: the bound is clip_sigma x std of the current weights, so a second call would
    clip a little more."""
    with torch.no_grad():
        for _, layer in analog_layers(model):
            layer.weight.copy_(layer.clipped_weight())
    return model
