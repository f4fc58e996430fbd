"""The tiles' convolution in float32 against bfloat16, for ResNet-32's three layer shapes.

    python benchmarks/bench_gemm_precision.py [--runs 3] [--repeats 9] [--threads 2]

Batch 128, channels_last, 3x3 convolutions with C input and output channels on feature maps
(16 x 32 x 32, 32 x 16 x 16, 64 x 8 x 8). Variants, interleaved in one process
(``timing.interleaved_medians``):

- ``float32``: the convolution as the float32 GEMM runs it;
- ``bfloat16``: operands already bfloat16 (as the DAC kernel writes them), output bfloat16
  (as the ADC kernel reads it): what ``gemm_precision="bfloat16"`` runs on a CPU with native
  bfloat16;
- ``torch_casts``: float32 operands cast to bfloat16 and the output cast back by torch, i.e.
  the conversion outside the kernels (why the kernels read and write the bits themselves).

``--runs N`` repeats it in N separate processes and prints each run's milliseconds and the
ratio float32 / bfloat16 per shape, with the spread over the runs.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import interleaved_medians  # noqa: E402  (benchmarks/timing.py)

SHAPES = ((16, 32), (32, 16), (64, 8))


def run(repeats: int, threads: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    calls = {}
    for channels, side in SHAPES:
        x = torch.randn(128, channels, side, side).contiguous(memory_format=torch.channels_last)
        w = torch.randn(channels, channels, 3, 3)
        xb, wb = x.bfloat16(), w.bfloat16()
        calls[f"float32_{channels}"] = lambda x=x, w=w: F.conv2d(x, w, padding=1)
        calls[f"bfloat16_{channels}"] = lambda x=xb, w=wb: F.conv2d(x, w, padding=1)
        calls[f"torch_casts_{channels}"] = \
            lambda x=x, w=wb: F.conv2d(x.bfloat16(), w, padding=1).float()
    with torch.no_grad():
        return {k: 1000 * v for k, v in interleaved_medians(calls, repeats).items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run(args.repeats, args.threads)))
        return
    runs = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, __file__, "--one", "--repeats", str(args.repeats),
                              "--threads", str(args.threads)], check=True, capture_output=True,
                             text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    print("| layer (C x side) | float32 ms | bfloat16 ms | torch casts ms | float32 / bfloat16 |")
    print("|---|---|---|---|---|")
    for channels, side in SHAPES:
        cols = [" / ".join(f"{r[f'{v}_{channels}']:.2f}" for r in runs)
                for v in ("float32", "bfloat16", "torch_casts")]
        ratios = [r[f"float32_{channels}"] / r[f"bfloat16_{channels}"] for r in runs]
        print(f"| {channels} x {side} | {cols[0]} | {cols[1]} | {cols[2]} | "
              f"{' / '.join(f'{q:.2f}' for q in ratios)} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
