"""Where the analog ResNet-32 forward spends its time: per step of the CPU kernel path.

    python benchmarks/profile_resnet32.py [--batch 128] [--threads 2] [--repeats 5]
        [--config default|per_mvm|noise_off|per_image] [--clock wall|cpu]

Wraps the steps of every analog convolution's CPU kernel path in timers (the DAC kernel, the
torch convolutions of the GEMM and of the variance GEMM, the square of the DAC output, the ADC
kernel, the layer's guards, noise seeds and bias) and reports, for the median forward of
``--repeats`` (after one warm-up), the milliseconds of each step summed over the layers, the
rest of the analog convolutions' time (Python per tile, views, allocations), the analog linear
head, the digital part of the network (batch norm, ReLU, shortcuts, pooling) and FP32 torch
(channels_last) for scale. Timers cost about a microsecond per call; the total is measured
without them in the same process.

``--clock cpu`` measures the process's CPU time instead of wall time: on a machine loaded by
other jobs a one-thread run then counts only its own work (with more threads it adds the
threads' times, including any spinning).
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import numba
import torch

import aimcsim
import aimcsim.nn.backends.numba_backend as numba_backend
import aimcsim.nn.geometry as geometry
import aimcsim.nn.layers as layers
import aimcsim.nn.tile_array as tile_array
import aimcsim.tiles.engine as engine
from aimcsim.models import build_model
from aimcsim.tiles import AnalogConfig

CONFIGS = {"default": AnalogConfig, "noise_off": AnalogConfig.ideal,
           "per_mvm": lambda: AnalogConfig(read_noise_sampling="per_mvm"),
           "per_image": lambda: AnalogConfig().replace(
               **{"periphery.input_scaling": "per_image"})}


class Timers:
    """Accumulated seconds of ``clock`` per named step; ``wrap`` times a function under a
    name."""

    def __init__(self, clock) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.on = False
        self.clock = clock

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            if not self.on:
                return fn(*args, **kwargs)
            start = self.clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += self.clock() - start
        return timed


def instrument(timers: Timers) -> None:
    """Patch the steps of the conv kernel path (module-level names and methods of the Numba
    backend, the engine and the layers)."""
    for module, name, label in [(numba_backend, "dac_patches", "DAC per patch (Numba)"),
                                (engine, "dac", "DAC per image (Numba)"),
                                (engine, "adc", "ADC per image (Numba)"),
                                (engine, "adc_per_vector", "ADC per vector (Numba)"),
                                (engine, "dac_buffer", "DAC buffer"),
                                (numba_backend, "squared", "x^2 for the variance GEMM"),
                                (layers, "check_forward", "guards: input / weights"),
                                (layers, "check_output", "guards: finite output")]:
        setattr(module, name, timers.wrap(label, getattr(module, name)))
    conv = geometry.ConvGeometry
    conv.gemm = timers.wrap("conv2d (torch, GEMM and variance GEMM)", conv.gemm)
    tile_array.TileArray.pass_seeds = timers.wrap("pass seeds", tile_array.TileArray.pass_seeds)
    convnd = layers._AnalogConvNd
    convnd._analog_forward = timers.wrap("analog conv layers, total", convnd._analog_forward)
    linear = layers.AnalogLinear
    linear._analog_forward = timers.wrap("analog linear head, total", linear._analog_forward)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="default")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or the process's CPU time (loaded machines)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    torch.manual_seed(0)
    model = build_model("resnet32").eval()
    analog = aimcsim.convert_to_analog(model, CONFIGS[args.config]()).eval()
    aimcsim.program(analog, 0)
    aimcsim.set_time(analog, 3600.0)
    analog = analog.to(memory_format=torch.channels_last)
    fp32 = model.to(memory_format=torch.channels_last)
    x = torch.randn(args.batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)

    clock = time.perf_counter if args.clock == "wall" else time.process_time

    def wall(fn) -> float:
        start = clock()
        fn()
        return clock() - start

    timers = Timers(clock)
    instrument(timers)
    with torch.no_grad():
        analog(x), fp32(x)  # warm-up (Numba compiled, oneDNN primitives cached)
        plain, timed, reference, steps = [], [], [], []
        for _ in range(args.repeats):
            plain.append(wall(lambda: analog(x)))
            reference.append(wall(lambda: fp32(x)))
            timers.seconds.clear()
            timers.on = True
            timed.append(wall(lambda: analog(x)))
            timers.on = False
            steps.append(dict(timers.seconds))
    k = sorted(range(args.repeats), key=lambda i: timed[i])[args.repeats // 2]  # median run
    step = steps[k]
    total = statistics.median(plain)
    print(f"ResNet-32, batch {args.batch}, {args.threads} thread(s), config {args.config}, "
          f"{args.clock} clock, "
          f"median of {args.repeats}: analog {1e3 * total:.1f} ms, FP32 channels_last "
          f"{1e3 * statistics.median(reference):.1f} ms "
          f"({total / statistics.median(reference):.2f}x); with timers {1e3 * timed[k]:.1f} ms")
    convs = step.pop("analog conv layers, total", 0.0)
    head = step.pop("analog linear head, total", 0.0)
    print("| step | ms |\n|---|---:|")
    inside = 0.0
    for name, seconds in sorted(step.items(), key=lambda item: -item[1]):
        print(f"| {name} | {1e3 * seconds:.1f} |")
        inside += seconds
    print(f"| rest of the analog conv layers (Python, views, allocations) | "
          f"{1e3 * (convs - inside):.1f} |")
    print(f"| analog conv layers, total | {1e3 * convs:.1f} |")
    print(f"| analog linear head | {1e3 * head:.1f} |")
    print(f"| digital layers (batch norm, ReLU, shortcuts, pooling) | "
          f"{1e3 * (timed[k] - convs - head):.1f} |")


if __name__ == "__main__":
    main()
