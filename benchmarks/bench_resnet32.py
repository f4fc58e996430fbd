"""ResNet-32 (CIFAR shape), batch 128, eval: FP32 torch vs aimcsim vs the peer aihwkit 1.1.0.

    python benchmarks/bench_resnet32.py [--peer-python /work/venv-peer/bin/python]

Every number is the median of ``--repeats`` rounds (default 7) in this one process, every
variant called once per round (interleaved), with ``--threads`` torch / Numba threads
(default 2). Variants:

- ``fp32``: the torch model.
- ``default``: ``AnalogConfig()``: PCM read at 1 h (one read-noise draw per evaluation), 7-bit
  DAC, 9-bit ADC, output noise 0.06, abs-max noise management per patch, iterative bound
  management, 512 x 512 tiles, global drift compensation.
- ``per_image``: the default with one input scale per image and tile (the old default).
- ``noise_off``: ``AnalogConfig.ideal()`` (no device noise, ideal converters, no GDC).
- ``per_mvm``: the default with fresh read noise at every MVM.
- ``reread``: ``aimcsim.set_time(model, t)`` for a new t on the programmed model.
- ``aihwkit``: the peer (``benchmarks/peer_aihwkit.py``) in its own environment, with its own
  FP32 time measured in that process so the ratio is like for like.
Writes a markdown table (and JSON with ``--json``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numba
import torch

from timing import interleaved_medians, ratio_table  # benchmarks/timing.py
import aimcsim
from aimcsim.models import build_model
from aimcsim.tiles import AnalogConfig




def run(batch: int, repeats: int, threads: int, channels_last: bool) -> dict:
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model("resnet32").eval().to(memory_format=fmt)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=fmt)
    variants = {"default": AnalogConfig(), "per_image": AnalogConfig().replace(
                    **{"periphery.input_scaling": "per_image"}),
                "noise_off": AnalogConfig.ideal(),
                "per_mvm": AnalogConfig(read_noise_sampling="per_mvm")}
    calls = {"fp32": lambda: model(x)}
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
        return interleaved_medians(calls, repeats)


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


def table(ours: dict, peer: dict | None) -> str:
    fp32 = ours["fp32"]
    rows = [("FP32 torch", fp32, 1.0),
            ("aimcsim default (PCM @ 1 h, 7b DAC, 9b ADC, out noise, GDC)", ours["default"],
             ours["default"] / fp32),
            ("aimcsim, one input scale per image (old default)", ours["per_image"],
             ours["per_image"] / fp32),
            ("aimcsim noise off (ideal)", ours["noise_off"], ours["noise_off"] / fp32),
            ("aimcsim fresh read noise per MVM", ours["per_mvm"], ours["per_mvm"] / fp32),
            ("aimcsim re-read a programmed model at a new t", ours["reread"], None)]
    if peer:
        rows.append((f"aihwkit {peer['aihwkit']} TorchInferenceRPUConfig (its own FP32: "
                     f"{1e3 * peer['fp32_s']:.0f} ms)", peer["analog_s"],
                     peer["analog_s"] / peer["fp32_s"]))
        rows.append((f"aihwkit {peer['aihwkit']} drift_analog_weights (re-read)",
                     peer["reread_s"], None))
    return ratio_table(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--contiguous", action="store_true", help="NCHW instead of channels_last")
    parser.add_argument("--peer-python", default="/work/venv-peer/bin/python",
                        help="python of the environment with aihwkit 1.1.0 ('' to skip)")
    parser.add_argument("--json", default=None, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    ours = run(args.batch, args.repeats, args.threads, not args.contiguous)
    peer = run_peer(args.peer_python, args.batch, args.repeats, args.threads) \
        if args.peer_python else None
    print(table(ours, peer))
    if args.json:
        Path(args.json).write_text(json.dumps({"ours": ours, "peer": peer, "args": vars(args)},
                                              indent=1))


if __name__ == "__main__":
    main()
