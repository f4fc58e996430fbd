"""The ``net`` pair drift of :class:`~aimcsim.tiles.config.MappingConfig` (physics.md section 1):
a programmed differential pair reduced to its net conductance and re-split onto one device, as
IBM aihwkit 1.1.0's PCM model reads its tiles.

Per pair, with G+_prog, G-_prog the programmed conductances (µS) and nu+, nu- the drift
exponents the device model drew for the two devices at programming:

    W_prog = G+_prog - G-_prog                                              [µS]
    r = g_max / max|W_prog|      (over the tile, or over each column with column scaling)
    G'+ = r max(W_prog, 0),  G'- = r max(-W_prog, 0)                       [µS], one of them 0
    G'+(t) = G'+ ((t + t0) / t0)^(-nu+),  G'-(t) = G'- ((t + t0) / t0)^(-nu-)
    Q_s of each re-split device = Q_s(G')            (its read noise then as physics.md 4)
    w_read = (G'+_read - G'-_read) / r * w_max / g_max

So the idle device's programming error stays in the weight and drifts with the exponent of the
device the net weight sits on (nu+ for W_prog > 0); a pair whose net sign flipped sits on its
idle device and drifts with that device's exponent. The re-split device of value 0 has no drift
and no read noise (it reads exactly 0 µS). With no programming noise W_prog is the target pair,
r = 1 and the re-split pair is the programmed one.

The tile calls :func:`resplit_net_pairs` once, after the device model has programmed the pairs;
the device model itself stays pair-agnostic.
"""
from __future__ import annotations

import numpy as np

from aimcsim.devices import DeviceState
from aimcsim.devices.pcm_like import PCMLikeDevice


def resplit_net_pairs(state: DeviceState, device: PCMLikeDevice, weight_scaling: str
                      ) -> tuple[DeviceState, np.ndarray]:
    """The re-split pairs of a programmed tile (see the module docstring).

    Args:
        state: the device model's programmed state, arrays of shape (2, G, r, c): index 0 the
            G+ devices, 1 the G- devices.
        device: the PCM-like device model that programmed them (gives g_max and Q_s).
        weight_scaling: ``tile`` (one r for the tile) or ``column`` (one r per output column).

    Returns:
        (the re-split state: the same targets and drift exponents, G' as the conductances at
        t = 0, active where G' > 0, Q_s of G'; the scale r, float32 of shape (G, 1, c),
        dimensionless, 1 where the tile or column programmed to net zero everywhere).
    """
    if not isinstance(device, PCMLikeDevice):
        raise ValueError(f"net pair drift needs a PCM-like device, got {type(device).__name__}")
    g_prog = np.asarray(state.g_prog, np.float32)
    if g_prog.ndim != 4 or g_prog.shape[0] != 2:
        raise ValueError(f"state must hold pairs of shape (2, G, r, c), got {g_prog.shape}")
    net = g_prog[0] - g_prog[1]
    if weight_scaling == "tile":
        peak = np.broadcast_to(np.abs(net).max(), (net.shape[0], 1, net.shape[2]))
    else:
        peak = np.abs(net).max(axis=1, keepdims=True)
    g_max = np.float32(device.g_max)
    scale = np.where(peak > 0, g_max / np.where(peak > 0, peak, 1), 1).astype(np.float32)
    resplit = np.stack([np.maximum(net, 0), np.maximum(-net, 0)]) * scale
    resplit = np.minimum(resplit, g_max).astype(np.float32)  # float rounding of the peak
    active = resplit > 0
    q = np.where(active, device.q_s(resplit), np.float32(0.0)).astype(np.float32)
    new_state = DeviceState(g_target=state.g_target, g_prog=resplit,
                            nu=np.asarray(state.nu, np.float32), active=active, read_q=q)
    return new_state, scale
