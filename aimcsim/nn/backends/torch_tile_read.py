"""A tile programmed and read in torch ops on the weights' device: the mapping of
:class:`~aimcsim.tiles.tile.AnalogTile` (differential pairs, w_max per tile or per column),
the device model's sampling (:mod:`aimcsim.nn.backends.torch_devices`), IR drop
(:mod:`aimcsim.nn.backends.torch_ir_drop`) and global drift compensation measured through the
torch periphery (physics.md sections 1 and 6). Used by device-model hardware-aware training on
the torch backend; no tensor leaves its device.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from aimcsim.nn.backends.torch_devices import TorchDeviceSampler
from aimcsim.nn.backends.torch_ir_drop import torch_tile_ir_drop
from aimcsim.nn.backends.torch_periphery import torch_analog_pass
from aimcsim.tiles.config import AnalogConfig
from aimcsim.tiles.tile import CALIBRATION_SEED


def calibration_inputs(config: AnalogConfig, in_size: int, device: torch.device
                       ) -> torch.Tensor:
    """The fixed calibration batch of drift compensation (as ``AnalogTile`` uses), made once
    per device and shape."""
    gdc = config.drift_compensation
    return _calibration_batch(gdc.calibration, gdc.calibration_vectors, in_size, str(device))


@functools.lru_cache(maxsize=64)
def _calibration_batch(calibration: str, vectors: int, in_size: int, device: str
                       ) -> torch.Tensor:
    if calibration == "one_hot":
        return torch.eye(in_size, dtype=torch.float32, device=device)
    rng = np.random.default_rng(CALIBRATION_SEED)
    x = rng.uniform(-1, 1, (vectors, in_size)).astype(np.float32)
    return torch.from_numpy(x).to(device)


def _calibration_readout(w_n: torch.Tensor, config: AnalogConfig) -> torch.Tensor:
    """Mean |y| of the calibration batch through the periphery, in ADC units: one value per
    output column (the tile's mean repeated, or each column's own)."""
    groups, rows, cols = w_n.shape
    x = calibration_inputs(config, groups * rows, w_n.device)

    def gemm(v: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ngr,grc->ngc", v.reshape(v.shape[0], groups, rows),
                            w_n).reshape(v.shape[0], groups * cols)
    y = torch_analog_pass(x, gemm, torch.ones(groups * cols, device=w_n.device),
                          config.periphery).abs()
    if config.drift_compensation.granularity == "tile":
        return y.mean().expand(groups * cols)
    return y.mean(dim=0)


def read_tile(weights: torch.Tensor, config: AnalogConfig, sampler: TorchDeviceSampler,
              t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Program a tile's weights (G, r, c) and read it at ``t`` seconds, in torch ops:
    G+ = max(w, 0) / w_max g_max, G- = max(-w, 0) / w_max g_max (µS), sampled by the device
    model, IR drop folded in (``config.ir_drop``), W_n = (G+ - G-) / g_max.

    ``config.mapping.pair_drift = "net"`` is not modelled here: ValueError.

    Returns:
        (W_n(t) (G, r, c): the read normalised weights (drifted only, for per-MVM read noise),
        output scale w_max x alpha (G * c,), alpha the drift compensation).
    """
    if config.mapping.pair_drift != "independent":
        raise ValueError(f"mapping.pair_drift={config.mapping.pair_drift!r} is not modelled by "
                         "the torch tile sampling of device-model hardware-aware training; use "
                         "pair_drift='independent', or the 'auto' backend on the CPU (its numpy "
                         "tiles model it)")
    w = weights.detach().to(torch.float32)
    if config.mapping.weight_scaling == "tile":
        w_max = w.abs().max().expand(w.shape[0], 1, w.shape[2])
    else:
        w_max = w.abs().amax(dim=1, keepdim=True)
    divisor = torch.where(w_max > 0, w_max, torch.ones_like(w_max))
    g_max = sampler.g_max
    targets = torch.stack([torch.clamp_min(w, 0), torch.clamp_min(-w, 0)]) / divisor * g_max
    state = sampler.program(torch.clamp(targets, max=g_max))
    ir_drop = config.ir_drop

    def normalised(at: float, read_noise: bool = True) -> torch.Tensor:
        if config.read_noise_sampling == "per_mvm" or not read_noise:
            g = sampler.drifted(state, at)
        else:
            g = sampler.read(state, at)
        if ir_drop.enabled:
            g = torch_tile_ir_drop(g, ir_drop)
        return (g[0] - g[1]) / g_max

    scale = w_max.reshape(-1)
    if config.drift_compensation.enabled:
        s0 = _calibration_readout(normalised(
            0.0, read_noise=config.drift_compensation.reference == "read"), config)
        w_n = normalised(t)
        s_t = _calibration_readout(w_n, config)
        alpha = torch.where(s_t > 0, s0 / torch.where(s_t > 0, s_t, torch.ones_like(s_t)),
                            torch.ones_like(s_t))
        return w_n, scale * alpha
    return normalised(t), scale.clone()
