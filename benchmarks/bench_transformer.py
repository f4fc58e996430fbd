"""The zoo's vision transformer (``vit``), CIFAR shape, batch 128, eval: FP32 torch vs aimcsim.

    python benchmarks/bench_transformer.py [--repeats 7] [--json results.json]

Every number is the median of ``--repeats`` runs in this one process, the variants run in
turns (``timing.interleaved_medians``), with ``--threads`` torch / Numba threads (default 2).
Variants:

- ``fp32``: the torch model (torch's own fast path of the encoder layers in eval).
- ``default``: ``AnalogConfig()``, programmed and read at 1 h: 38 analog layers (patch
  embedding, q / k / v / out projections and both MLP layers of 6 blocks, head), softmax,
  layer norms and GELU digital.
- ``float32_gemm``: the default with ``gemm_precision="float32"`` (the default before
  2026-12-01).
- ``noise_off``: ``AnalogConfig.ideal()``, the cost of the tiles' periphery path alone.
Writes a markdown table (and JSON with ``--json``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numba
import torch

from timing import interleaved_medians, ratio_table  # benchmarks/timing.py
import aimcsim
from aimcsim.models import build_model
from aimcsim.tiles import AnalogConfig

LABELS = {"fp32": "FP32 torch",
          "default": "aimcsim default (PCM @ 1 h, 7b DAC, 9b ADC, out noise, GDC)",
          "float32_gemm": "aimcsim default with float32 GEMMs (before 2026-12-01)",
          "noise_off": "aimcsim noise off (ideal)"}


def run(batch: int, repeats: int, threads: int) -> dict[str, float]:
    """Median seconds per eval forward of each variant."""
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    torch.manual_seed(0)
    model = build_model("vit").eval()
    x = torch.randn(batch, 3, 32, 32)
    fns = {"fp32": lambda: model(x)}
    for name, config in (("default", AnalogConfig()),
                         ("float32_gemm", AnalogConfig(gemm_precision="float32")),
                         ("noise_off", AnalogConfig.ideal())):
        analog = aimcsim.convert_to_analog(model, config).eval()
        aimcsim.program(analog, 0)
        aimcsim.set_time(analog, 3600.0)
        fns[name] = lambda analog=analog: analog(x)
    with torch.no_grad():
        return interleaved_medians(fns, repeats)


def table(results: dict[str, float]) -> str:
    return ratio_table([(LABELS[name], seconds, seconds / results["fp32"])
                        for name, seconds in results.items()])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    results = run(args.batch, args.repeats, args.threads)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"seconds": results, "args": vars(args)},
                                              indent=1))


if __name__ == "__main__":
    main()
