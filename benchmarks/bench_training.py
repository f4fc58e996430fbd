"""Time one training step (forward + backward + SGD update) of FP32 vs hardware-aware training.

    python benchmarks/bench_training.py [--model f1net] [--batch 128] [--repeats 7] [--threads 2]

Variants, all in one process on the same batch, interleaved (one step of each per round):
FP32 torch; hardware-aware training with Gaussian weight noise and the fused Numba periphery
(the default on the CPU: per-patch DAC and per-vector ADC for convolutions, per-row for linear
layers); the same with the plain torch periphery (what a GPU runs); hardware-aware training
with the device model in the loop (``noise_model="device"``, fused periphery). Prints medians
and ratios to FP32.
"""
from __future__ import annotations

import argparse
import json
from unittest import mock

import numba
import torch

from timing import interleaved_medians

from aimcsim.models import build_model
from aimcsim.nn import HardwareAwareConfig, convert_to_analog
from aimcsim.nn import functional as analog_functional


def make_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="f1net")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,))

    fp32 = build_model(args.model).to(memory_format=torch.channels_last)
    gaussian = convert_to_analog(fp32, hwa=HardwareAwareConfig())
    device = convert_to_analog(fp32, hwa=HardwareAwareConfig(noise_model="device"))
    torch_only = analog_functional.torch_analog_pass

    def torch_path(*a, **k):
        k["fused"] = False
        return torch_only(*a, **k)
    fused_step = make_step(gaussian, x, y)

    def torch_step() -> None:
        with mock.patch("aimcsim.nn.layers.torch_analog_pass", torch_path), \
                mock.patch("aimcsim.nn.layers.fused_per_patch_supported", lambda *a: False):
            fused_step()
    results = interleaved_medians({"fp32": make_step(fp32, x, y), "hwa_fused": fused_step,
                                   "hwa_torch": torch_step,
                                   "hwa_device": make_step(device, x, y)}, args.repeats)
    print(f"{args.model}, batch {args.batch}, {args.threads} threads, "
          f"medians of {args.repeats} steps")
    for name, seconds in results.items():
        print(f"  {name:10s} {seconds * 1e3:8.1f} ms  {seconds / results['fp32']:5.2f}x FP32")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "batch": args.batch, "threads": args.threads,
                       "repeats": args.repeats, "seconds": results}, f, indent=2)


if __name__ == "__main__":
    main()
