"""ResNet-32 (CIFAR shape), eval: FP32 torch vs aimcsim vs the peer aihwkit 1.1.0.

    python benchmarks/bench_resnet32.py [--batch 128] [--runs 3] [--peer-python PYTHON]

One run: every number is the median of ``--repeats`` rounds (default 7) in one process, every
variant called once per round (interleaved, so a slow spell of the machine hits all alike),
with ``--threads`` torch / Numba threads (default 2; ``--numba-threads`` sets Numba's
apart). ``--runs N`` repeats that in N separate processes and reports, per variant, the
median over the runs and the spread (lowest and highest ratio to FP32). FP32 is measured in
both memory formats, NCHW and channels_last, and the faster one is the reference ("FP32 at
its best memory format"). Variants:

- ``default``: ``AnalogConfig()``: PCM read at 1 h (one read-noise draw per evaluation), 7-bit
  DAC, 9-bit ADC, output noise 0.06, abs-max noise management per patch, iterative bound
  management, 512 x 512 tiles, global drift compensation, bfloat16 GEMM operands.
- ``float32_gemm``: the default with ``gemm_precision="float32"`` (the default before
  2026-12-01; the default rounds the GEMM's operands and outputs to bfloat16).
- ``per_image``: the default with one input scale per image and tile (the old default).
- ``noise_off``: ``AnalogConfig.ideal()`` (no device noise, ideal converters, no GDC).
- ``per_mvm``: the default with fresh read noise at every MVM.
- ``reread``: ``aimcsim.set_time(model, t)`` for a new t on the programmed model.
- ``aihwkit``: the peer (``benchmarks/peer_aihwkit.py``) in its own environment, with its own
  FP32 time measured in that process so the ratio is like for like.
The analog models run channels_last (``--contiguous``: NCHW). Writes a markdown table (and
JSON with ``--json``). ``--clock cpu`` times the process's CPU time instead of wall time: for
``--threads 1`` on a machine busy with other jobs (the loaded-machine measurements of
``benchmarks/README.md``); the quiet measurement uses the default wall clock.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import torch

from timing import interleaved_medians  # benchmarks/timing.py
import aimcsim
from aimcsim.models import build_model
from aimcsim.tiles import AnalogConfig

ROWS = [("fp32", "FP32 torch, best memory format"),
        ("fp32_nchw", "FP32 torch, NCHW"),
        ("fp32_channels_last", "FP32 torch, channels_last"),
        ("default", "aimcsim default (PCM @ 1 h, 7b DAC, 9b ADC, out noise, GDC)"),
        ("float32_gemm", "aimcsim default with float32 GEMMs (the default before 2026-12-01)"),
        ("per_image", "aimcsim, one input scale per image (old default)"),
        ("noise_off", "aimcsim noise off (ideal)"),
        ("per_mvm", "aimcsim fresh read noise per MVM"),
        ("reread", "aimcsim re-read a programmed model at a new t")]
NO_RATIO = {"reread"}


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def run(batch: int, repeats: int, threads: int, channels_last: bool,
        clock: str = "wall", numba_threads: int | None = None) -> dict:
    """Interleaved medians (seconds of ``clock``) of every variant in this process; ``fp32``
    is the faster of the two FP32 memory formats. Numba runs ``numba_threads`` threads
    (default: ``threads``)."""
    torch.set_num_threads(threads)
    numba.set_num_threads(min(numba_threads or threads, numba.config.NUMBA_NUM_THREADS))
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model("resnet32").eval()
    model_cl = build_model("resnet32").eval().to(memory_format=torch.channels_last)
    model_cl.load_state_dict(model.state_dict())
    x_nchw = torch.randn(batch, 3, 32, 32)
    x_cl = x_nchw.contiguous(memory_format=torch.channels_last)
    x = x_cl if channels_last else x_nchw
    variants = {"default": AnalogConfig(),
                "float32_gemm": AnalogConfig(gemm_precision="float32"),
                "per_image": AnalogConfig().replace(
                    **{"periphery.input_scaling": "per_image"}),
                "noise_off": AnalogConfig.ideal(),
                "per_mvm": AnalogConfig(read_noise_sampling="per_mvm")}
    calls = {"fp32_nchw": lambda: model(x_nchw), "fp32_channels_last": lambda: model_cl(x_cl)}
    for name, config in variants.items():
        analog = aimcsim.convert_to_analog(model, config).eval()
        aimcsim.program(analog, 0)
        aimcsim.set_time(analog, 3600.0)
        analog = analog.to(memory_format=fmt)
        calls[name] = lambda analog=analog: analog(x)
        if name == "default":
            times = iter([86400.0 * (k + 1) for k in range(repeats + 1)])
            calls["reread"] = lambda analog=analog: aimcsim.set_time(analog, next(times))
    with torch.no_grad():
        medians = interleaved_medians(calls, repeats, CLOCKS[clock])
    medians["fp32"] = min(medians["fp32_nchw"], medians["fp32_channels_last"])
    return medians


def run_peer(python: str, batch: int, repeats: int, threads: int) -> dict | None:
    script = Path(__file__).with_name("peer_aihwkit.py")
    try:
        done = subprocess.run([python, str(script), "--batch", str(batch), "--repeats",
                               str(repeats), "--threads", str(threads)], capture_output=True,
                              text=True, check=True, timeout=3600)
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        print(f"peer not measured: {err}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_separately(args, runs: int) -> list[dict]:
    """``runs`` single runs, each in its own process; their medians."""
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for k in range(runs):
            out = Path(folder) / f"run{k}.json"
            command = [sys.executable, str(Path(__file__).resolve()), "--batch", str(args.batch),
                       "--repeats", str(args.repeats), "--threads", str(args.threads),
                       "--runs", "1", "--peer-python", "", "--clock", args.clock,
                       "--json", str(out)]
            if args.numba_threads:
                command += ["--numba-threads", str(args.numba_threads)]
            if args.contiguous:
                command.append("--contiguous")
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            results.append(json.loads(out.read_text())["ours"])
    return results


def summary(runs: list[dict]) -> dict:
    """Per variant: median seconds over the runs, median ratio to FP32 and its spread."""
    table = {}
    for name, _ in ROWS:
        seconds = [r[name] for r in runs]
        ratios = [r[name] / r["fp32"] for r in runs]
        table[name] = {"seconds": statistics.median(seconds),
                       "ratio": statistics.median(ratios), "low": min(ratios),
                       "high": max(ratios)}
    return table


def table(stats: dict, runs: int, peer: dict | None) -> str:
    lines = [f"| variant | time (ms) | x FP32 | spread over {runs} run(s) |",
             "|---|---:|---:|---|"]
    for name, label in ROWS:
        s = stats[name]
        ratio = "" if name in NO_RATIO else f"{s['ratio']:.2f}"
        spread = "" if name in NO_RATIO else f"{s['low']:.2f}-{s['high']:.2f}"
        lines.append(f"| {label} | {1e3 * s['seconds']:.1f} | {ratio} | {spread} |")
    if peer:
        lines.append(f"| aihwkit {peer['aihwkit']} TorchInferenceRPUConfig (its own FP32: "
                     f"{1e3 * peer['fp32_s']:.0f} ms) | {1e3 * peer['analog_s']:.1f} | "
                     f"{peer['analog_s'] / peer['fp32_s']:.2f} | |")
        lines.append(f"| aihwkit {peer['aihwkit']} drift_analog_weights (re-read) | "
                     f"{1e3 * peer['reread_s']:.1f} | | |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1,
                        help="separate processes, for the spread between runs")
    parser.add_argument("--contiguous", action="store_true",
                        help="analog models in NCHW instead of channels_last")
    parser.add_argument("--peer-python", default="/work/venv-peer/bin/python",
                        help="python of the environment with aihwkit 1.1.0 ('' to skip)")
    parser.add_argument("--numba-threads", type=int, default=None,
                        help="threads of the Numba kernels (default: --threads)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or this process's CPU time (one thread, loaded machine)")
    parser.add_argument("--json", default=None, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    if args.runs < 1:
        raise ValueError(f"--runs must be >= 1, got {args.runs}")
    if args.numba_threads is not None and args.numba_threads < 1:
        raise ValueError(f"--numba-threads must be >= 1, got {args.numba_threads}")
    if args.runs == 1:
        runs = [run(args.batch, args.repeats, args.threads, not args.contiguous, args.clock,
                    args.numba_threads)]
    else:
        runs = run_separately(args, args.runs)
    peer = run_peer(args.peer_python, args.batch, args.repeats, args.threads) \
        if args.peer_python else None
    stats = summary(runs)
    print(table(stats, len(runs), peer))
    if args.json:
        Path(args.json).write_text(json.dumps({"ours": runs[0] if len(runs) == 1 else stats,
                                               "runs": runs, "peer": peer, "args": vars(args)},
                                              indent=1))


if __name__ == "__main__":
    main()
