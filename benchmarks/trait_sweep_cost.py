"""CPU time of the architecture-trait sweep (issue 22), estimated from measured steps.

    python benchmarks/trait_sweep_cost.py [--networks t500,...] [--repeats 3] [--json FILE]

Per network, one thread, CPU time of this process (``time.process_time``, so other jobs on the
machine do not count), median of ``--repeats`` rounds after one warm-up, all steps of a
network interleaved: an FP32 training step (batch 128), a hardware-aware training step with the
device model in the loop (batch 128), an FP32 evaluation batch (250 images), an analog
evaluation batch of the programmed network read at one day (250 images), and one programming
(convert + program). The sweep's cost is then, for the full data (391 training steps and 40
test batches per epoch) and the recipe of ``python -m aimcsim sweep`` (``--epochs``,
``--hwa-epochs``, ``--reps``, three read times)::

    FP32 stage  = epochs x (391 x fp32_step + 40 x fp32_eval)
    HWA stage   = hwa_epochs x (391 x hwa_step + 40 x fp32_eval)
    measurement = 40 x fp32_eval + reps x (program + times x 40 x analog_eval)

The per-epoch evaluation of both trainings is counted as FP32 evaluation (the hardware-aware
run evaluates its clipped float weights digitally). Data loading and augmentation are not
counted. Writes a Markdown table (and JSON with ``--json``).
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numba
import torch

from bench_training import make_step  # benchmarks/bench_training.py
from timing import interleaved_medians  # benchmarks/timing.py

from aimcsim.experiments.trait_sweep import DEFAULT_NETWORKS, SWEEP_TIMES, TraitSweepConfig
from aimcsim.models import build_model, count_parameters
from aimcsim.nn import convert_to_analog, program, set_time

TRAIN_IMAGES, TEST_IMAGES, EVAL_BATCH = 50_000, 10_000, 250


def measure(name: str, repeats: int, config: TraitSweepConfig) -> dict[str, float]:
    """Median CPU seconds of each step of network ``name``."""
    torch.manual_seed(0)
    x = torch.randn(config.batch_size, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (config.batch_size,))
    xe = torch.randn(EVAL_BATCH, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    fp32 = build_model(name).to(memory_format=torch.channels_last)
    hwa = convert_to_analog(build_model(name).to(memory_format=torch.channels_last),
                            config.analog_config(), hwa=config.hardware_aware())
    analog = convert_to_analog(build_model(name), config.analog_config()).eval()
    program(analog, seed=0)
    set_time(analog, 86400.0, seed=1)
    fp32_eval = build_model(name).to(memory_format=torch.channels_last).eval()

    def evaluate(model):
        def run() -> None:
            with torch.no_grad():
                model(xe)
        return run

    def programming() -> None:
        with torch.no_grad():
            fresh = convert_to_analog(fp32_eval, config.analog_config()).eval()
            program(fresh, seed=2)

    return interleaved_medians({"fp32_step": make_step(fp32, x, y),
                                "hwa_step": make_step(hwa, x, y),
                                "fp32_eval": evaluate(fp32_eval),
                                "analog_eval": evaluate(analog),
                                "program": programming}, repeats, clock=time.process_time)


def estimate(s: dict[str, float], config: TraitSweepConfig) -> dict[str, float]:
    """CPU seconds of the three stages of one network (module docstring)."""
    steps = math.ceil(TRAIN_IMAGES / config.batch_size)
    batches = math.ceil(TEST_IMAGES / EVAL_BATCH)
    fp32 = config.epochs * (steps * s["fp32_step"] + batches * s["fp32_eval"])
    hwa = config.hwa_epochs * (steps * s["hwa_step"] + batches * s["fp32_eval"])
    drift = batches * s["fp32_eval"] + config.repetitions * (
        s["program"] + len(config.times) * batches * s["analog_eval"])
    return {"fp32_epoch": fp32 / config.epochs, "hwa_epoch": hwa / config.hwa_epochs,
            "fp32": fp32, "hwa": hwa, "drift": drift, "total": fp32 + hwa + drift}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default=",".join(DEFAULT_NETWORKS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=TraitSweepConfig.epochs)
    parser.add_argument("--hwa-epochs", type=int, default=TraitSweepConfig.hwa_epochs)
    parser.add_argument("--reps", type=int, default=TraitSweepConfig.repetitions)
    parser.add_argument("--json", default=None, help="write the measurements here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    config = TraitSweepConfig(epochs=args.epochs, hwa_epochs=args.hwa_epochs,
                              repetitions=args.reps, times=SWEEP_TIMES)
    rows, total = [], 0.0
    print("| network | parameters | FP32 step (s) | HWA step (s) | analog eval batch (s) | "
          "FP32 epoch (s) | HWA epoch (s) | FP32 stage (h) | HWA stage (h) | measurement (h)"
          " | total (h) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.networks.split(","):
        s = measure(name, args.repeats, config)
        e = estimate(s, config)
        total += e["total"]
        rows.append({"network": name, "seconds": s, "estimate": e})
        print(f"| {name} | {count_parameters(build_model(name)):,} | {s['fp32_step']:.3f} | "
              f"{s['hwa_step']:.3f} | {s['analog_eval']:.3f} | {e['fp32_epoch']:.0f} | "
              f"{e['hwa_epoch']:.0f} | {e['fp32'] / 3600:.2f} | {e['hwa'] / 3600:.2f} | "
              f"{e['drift'] / 3600:.2f} | {e['total'] / 3600:.2f} |", flush=True)
    print(f"\nwhole sweep: {total / 3600:.1f} CPU hours on one thread ({config.epochs} FP32 + "
          f"{config.hwa_epochs} HWA epochs, {config.repetitions} programmings x "
          f"{len(config.times)} times, full data)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"config": config.to_dict(), "repeats": args.repeats, "clock": "cpu",
                       "networks": rows, "total_seconds": total}, fh, indent=1)


if __name__ == "__main__":
    main()
