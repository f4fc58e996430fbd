"""Time IBM aihwkit 1.1.0 on the ResNet-32 benchmark; run inside the peer's own environment.

Set-up (once, its own venv, torch pinned in the same command so pip keeps the CPU build):
    python -m venv /work/venv-peer
    /work/venv-peer/bin/pip install aihwkit==1.1.0 torch==2.13.0
Called by ``benchmarks/bench_resnet32.py``; prints one JSON line of timings (seconds).

The peer runs its pure-torch inference tile (``TorchInferenceRPUConfig``) with the settings of
our default config: 7-bit DAC, 9-bit ADC (bound 12), output noise 0.06, abs-max noise
management, PCM noise model read at 1 h, global drift compensation, 512 x 512 tiles, each
tile's weights scaled to max |w| = 1 (``weight_scaling_omega=1``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import median_seconds  # noqa: E402  (benchmarks/timing.py)
from aimcsim.models.zoo import build_model  # noqa: E402  (torch-only module, no numba)


def peer_config():
    from aihwkit.inference.compensation.drift import GlobalDriftCompensation
    from aihwkit.inference.noise.pcm import PCMLikeNoiseModel
    from aihwkit.simulator.configs import TorchInferenceRPUConfig
    from aihwkit.simulator.parameters.enums import (BoundManagementType,
                                                    NoiseManagementType)
    config = TorchInferenceRPUConfig()
    config.forward.inp_res = 1 / (2 ** 7 - 2)
    config.forward.out_res = 1 / (2 ** 9 - 2)
    config.forward.out_bound = 12.0
    config.forward.out_noise = 0.06
    config.forward.noise_management = NoiseManagementType.ABS_MAX
    config.forward.bound_management = BoundManagementType.NONE
    config.noise_model = PCMLikeNoiseModel(g_max=25.0)
    config.drift_compensation = GlobalDriftCompensation()
    config.mapping.max_input_size = 512
    config.mapping.max_output_size = 512
    # map each tile's max |w| to the full weight range, as aimcsim does (aihwkit's default,
    # 0, computes with the raw weights, so its output noise acts on much smaller outputs)
    config.mapping.weight_scaling_omega = 1.0
    return config


def peer_reads(base: torch.nn.Module, reps: int, times):
    """aihwkit's programmings and reads of ``base``: programming ``rep`` seeded with
    ``torch.manual_seed(rep)``, drifted to every time in ``times`` (seconds) in turn. Yields
    ``(rep, t, analog model)``, the model read at ``t``; the next read changes it."""
    from aihwkit.nn.conversion import convert_to_analog
    for rep in range(reps):
        torch.manual_seed(rep)
        analog = convert_to_analog(base, peer_config()).eval()
        analog.program_analog_weights()
        for t in times:
            analog.drift_analog_weights(t)
            yield rep, t, analog




def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from aihwkit import __version__
    from aihwkit.nn.conversion import convert_to_analog
    torch.manual_seed(0)
    model = build_model("resnet32").eval()
    x = torch.randn(args.batch, 3, 32, 32)
    analog = convert_to_analog(model, peer_config()).eval()
    analog.program_analog_weights()
    analog.drift_analog_weights(3600.0)
    with torch.no_grad():
        fp32 = median_seconds(lambda: model(x), args.repeats)
        peer = median_seconds(lambda: analog(x), args.repeats)
        reread = median_seconds(lambda: analog.drift_analog_weights(86400.0), args.repeats)
    print(json.dumps({"aihwkit": __version__, "torch": torch.__version__, "fp32_s": fp32,
                      "analog_s": peer, "reread_s": reread}))


if __name__ == "__main__":
    main()
