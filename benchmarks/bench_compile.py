"""``torch.compile`` of a converted model against eager: compile time and step times.

    python benchmarks/bench_compile.py [--model small|vit] [--batch 32] [--repeats 5]

``small`` is a conv + linear network (the one ``tests/test_compile.py`` compiles), ``vit`` the
zoo's vision transformer. Measured in this one process: the first compiled call (tracing and
Inductor code generation, cold or from Inductor's on-disk cache), then medians of
``--repeats`` hardware-aware training steps (forward, backward, SGD) and of eval forwards
(programmed, read at 1 h) of the compiled and the eager model. Prints a markdown table.
"""
from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn

from timing import median_seconds  # benchmarks/timing.py
import aimcsim
from aimcsim.models import build_model


def _model(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    if name == "vit":
        return build_model("vit"), (3, 32, 32)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(16 * 16 * 16, 10)), (3, 16, 16)


def run(name: str, batch: int, repeats: int, threads: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net, shape = _model(name)
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    eager = aimcsim.convert_to_analog(net).train()
    compiled_model = copy.deepcopy(eager)
    compiled = torch.compile(compiled_model)

    def step(model: nn.Module, forward) -> None:
        model.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(forward(x), y).backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 1e-3 * p.grad

    results = {}
    start = time.perf_counter()
    step(compiled_model, compiled)
    results["first compiled train step (compile)"] = time.perf_counter() - start
    results["train step, eager"] = median_seconds(lambda: step(eager, eager), repeats)
    results["train step, compiled"] = median_seconds(lambda: step(compiled_model, compiled),
                                                     repeats)
    for model in (eager, compiled_model):
        model.eval()
        aimcsim.program(model, 0)
        aimcsim.set_time(model, 3600.0)
    with torch.no_grad():
        start = time.perf_counter()
        compiled(x)
        results["first compiled eval call (compile)"] = time.perf_counter() - start
        results["eval forward, eager"] = median_seconds(lambda: eager(x), repeats)
        results["eval forward, compiled"] = median_seconds(lambda: compiled(x), repeats)
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("small", "vit"), default="small")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    results = run(args.model, args.batch, args.repeats, args.threads)
    print(f"| {args.model}, batch {args.batch}, {args.threads} thread(s) | time (ms) |")
    print("|---|---:|")
    for key, seconds in results.items():
        print(f"| {key} | {1e3 * seconds:.1f} |")


if __name__ == "__main__":
    main()
