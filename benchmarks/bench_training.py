"""Time one training step (forward + backward + SGD update) of FP32 vs hardware-aware training.

    python benchmarks/bench_training.py [--model f1net] [--batch 128] [--repeats 7] [--threads 2]

Variants, all in one process on the same batch, interleaved (one step of each per round):
FP32 torch; hardware-aware training with Gaussian weight noise and the fused Numba periphery
(the default on the CPU: per-patch DAC and per-vector ADC for convolutions, per-row for linear
layers); the same with the torch backend forced (``aimcsim.set_backend(model, "torch")``: plain
torch ops, what a GPU runs); hardware-aware training with the device model in the loop
(``noise_model="device"``, fused periphery). Prints medians
and ratios to FP32.
"""
from __future__ import annotations

import argparse
import json

import numba
import torch

from timing import interleaved_medians

from aimcsim.models import build_model
from aimcsim.nn import HardwareAwareConfig, convert_to_analog, set_backend


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
    plain_torch = set_backend(convert_to_analog(fp32, hwa=HardwareAwareConfig()), "torch")
    results = interleaved_medians({"fp32": make_step(fp32, x, y),
                                   "hwa_fused": make_step(gaussian, x, y),
                                   "hwa_torch": make_step(plain_torch, x, y),
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
