"""Accuracy over time, aimcsim beside IBM aihwkit 1.1.0, on the same weights and test images.

    python benchmarks/peer_accuracy.py --weights checkpoints/resnet32_swa_low/model.pt \
        [--model resnet32] [--limit 2000] [--reps 3] [--times 1,3600,86400,2592000] \
        [--peer-python /work/venv-peer/bin/python] [--peer-from docs/results/peer_accuracy.json] \
        [--out docs/results/peer_accuracy]

The peer runs in its own environment (set-up: ``python -m venv /work/venv-peer &&
/work/venv-peer/bin/pip install aihwkit==1.1.0 torch==2.13.0``; torch pinned in the same
command keeps the CPU build), with ``benchmarks/peer_aihwkit.py``'s settings: its pure-torch
inference tile, 7-bit DAC, 9-bit ADC (bound 12), output noise 0.06, abs-max noise management
per input vector (per patch), no bound management, its PCM noise model, global drift
compensation (one-hot readout), 512 x 512 tiles. This script calls itself there with
``--role peer``.

aimcsim is measured in five configurations:
- ``matched``: the peer's settings (per-patch scaling, no bound management, one-hot GDC
  calibration whose reference is read from the programmed conductances without read noise,
  ``drift_compensation.reference="programmed"``) and its PCM model's treatment of pairs: the
  devices of target 0 µS programmed like the others (``noise_idle_devices=True``) and each
  pair reduced to its net programmed conductance, re-split onto one device that drifts and
  read-noises (``mapping.pair_drift="net"``); docs/physics.md section 1;
- ``matched-read-reference``: the same with the GDC reference read at t = 0 (read noise
  included, aimcsim's default);
- ``matched-idle-independent``: that, with each device of the pair drifting on its own
  (``pair_drift="independent"``), the "matched" mode of 2026-11-30;
- ``matched-idle-off``: the same with idle devices left at 0 µS (aimcsim's default device
  rule), the "matched" mode of 2026-11-29, kept to show what those settings cost;
- ``default``: ``AnalogConfig()`` (per-patch scaling, iterative bound management, dense GDC
  calibration, idle devices at 0 µS, independent pairs).
Programming r of every series uses seed r (aimcsim and aihwkit draw from different streams, so
the comparison is of means over programmings, not paired). ``--peer-from`` takes aihwkit's
runs from an earlier output ``.json`` when it was measured with the same model, weights,
images, programmings and times (aihwkit's side is seeded, so a rerun repeats it; it takes
most of the ~20 min), else it runs the peer. Writes ``<out>.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def test_batches(limit: int, data: str | None, batch_size: int = 250):
    """The first ``limit`` test images, normalised as the trainer does (torch-only imports)."""
    from aimcsim.data import CifarSplit, iterate_batches, load_cifar10
    test = load_cifar10(data, train=False)
    split = CifarSplit(test.images[:limit], test.labels[:limit])
    return list(iterate_batches(split, batch_size))


def load_model(name: str, weights: str) -> torch.nn.Module:
    """A zoo network with the float weights of a model.pt or checkpoint.pt (torch-only)."""
    from aimcsim.models import build_model
    model = build_model(name)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    if "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    model.load_state_dict({k: v for k, v in state.items() if not k.endswith("_extra_state")})
    return model.eval()


def accuracy(model: torch.nn.Module, batches) -> float:
    correct = total = 0
    with torch.no_grad():
        for x, y in batches:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return correct / total


def peer_parser(description: str, out: str, reps: int, times: str,
                limit: int | None = None) -> argparse.ArgumentParser:
    """The options the peer benchmarks share: network and weights, (test images,) programmings,
    read times (comma-separated seconds), data, threads, the aihwkit environment's python, the
    driver / peer role and the output stem. Each script adds its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default="resnet32")
    parser.add_argument("--weights", required=True)
    if limit is not None:
        parser.add_argument("--limit", type=int, default=limit)
    parser.add_argument("--reps", type=int, default=reps)
    parser.add_argument("--times", default=times)
    parser.add_argument("--data", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--peer-python", default="/work/venv-peer/bin/python")
    parser.add_argument("--role", choices=("driver", "peer"), default="driver")
    parser.add_argument("--out", default=out)
    return parser


def write_outputs(out: str | Path, text: str, payload: dict) -> None:
    """``<out>.md`` (the table ``text``) and ``<out>.json`` (``payload``), folders made."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text + "\n")
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1))


def call_peer(peer_python: str, script: str, argv: list[str] | None) -> dict | None:
    """Run ``script`` with ``--role peer`` and the driver's arguments in the peer's python
    (aihwkit's environment) and return the JSON of its last output line; None when that
    python does not exist or the run fails (its error is printed)."""
    if not peer_python or not Path(peer_python).exists():
        return None
    command = [peer_python, script, "--role", "peer"] + list(
        argv if argv is not None else sys.argv[1:])
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        print(f"peer failed: {done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_peer(args) -> dict:
    """aihwkit 1.1.0: program once per repetition, drift to every time, evaluate."""
    from aihwkit import __version__
    from peer_aihwkit import peer_reads  # benchmarks/peer_aihwkit.py
    batches = test_batches(args.limit, args.data)
    base = load_model(args.model, args.weights)
    runs: dict[str, list[float]] = {}
    for _, t, analog in peer_reads(base, args.reps, args.times):
        runs.setdefault(f"{t:g}", []).append(accuracy(analog, batches))
    return {"aihwkit": __version__, "runs": runs}


def ours_configs() -> dict:
    """aimcsim's configurations, by label (see the module docstring)."""
    import dataclasses
    from aimcsim.tiles import AnalogConfig
    idle_off = AnalogConfig().replace(**{"periphery.bound_management": "none",
                                         "drift_compensation.calibration": "one_hot"})
    idle_on = dataclasses.replace(idle_off.device.config, noise_idle_devices=True)
    idle_independent = idle_off.replace(**{"device.config": idle_on})
    read_reference = idle_independent.replace(**{"mapping.pair_drift": "net"})
    return {"aimcsim matched": read_reference.replace(
                **{"drift_compensation.reference": "programmed"}),
            "aimcsim matched-read-reference": read_reference,
            "aimcsim matched-idle-independent": idle_independent,
            "aimcsim matched-idle-off": idle_off,
            "aimcsim default": AnalogConfig()}


#: Arguments that must agree for ``--peer-from`` to reuse a stored aihwkit measurement.
PEER_KEYS = ("model", "weights", "limit", "reps", "times", "data")


def stored_peer(path: str | None, args) -> dict | None:
    """aihwkit's runs from an earlier output JSON measured with the same ``PEER_KEYS``
    arguments, else None (a message says why)."""
    if not path or not Path(path).exists():
        return None
    stored = json.loads(Path(path).read_text())
    old = stored.get("args", {})
    differing = [k for k in PEER_KEYS if old.get(k) != getattr(args, k)]
    if stored.get("peer") is None or differing:
        print(f"not reusing {path}: differs in {differing or 'peer missing'}", file=sys.stderr)
        return None
    return stored["peer"]


def run_ours(args) -> dict:
    import aimcsim
    batches = test_batches(args.limit, args.data)
    base = load_model(args.model, args.weights)
    results = {"fp32": accuracy(base, batches)}
    for label, config in ours_configs().items():
        runs: dict[str, list[float]] = {}
        for rep in range(args.reps):
            analog = aimcsim.convert_to_analog(base, config).eval()
            aimcsim.program(analog, seed=rep)
            for t in args.times:
                aimcsim.set_time(analog, t, seed=rep)
                runs.setdefault(f"{t:g}", []).append(accuracy(analog, batches))
        results[label] = runs
    return results


def table(ours: dict, peer: dict | None, title: str) -> str:
    series = {k: v for k, v in ours.items() if k != "fp32"}
    if peer is not None:
        series[f"aihwkit {peer['aihwkit']}"] = peer["runs"]
    times = list(next(iter(series.values())))
    lines = [f"# {title}", "", f"FP32 on these images: {100 * ours['fp32']:.2f}%", "",
             "mean accuracy over programmings (%), +- standard error", "",
             "| series | " + " | ".join(f"t = {t} s" for t in times) + " |",
             "|---|" + "---:|" * len(times)]
    for name, runs in series.items():
        cells = []
        for t in times:
            a = 100 * np.array(runs[t])
            se = a.std(ddof=1) / np.sqrt(a.size) if a.size > 1 else 0.0
            cells.append(f"{a.mean():.2f} +- {se:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if peer is None:
        lines += ["", "aihwkit not measured (no peer environment)."]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = peer_parser(__doc__.splitlines()[0], "docs/results/peer_accuracy", reps=3,
                         times="1,3600,86400,2592000", limit=2000)
    parser.add_argument("--peer-from", default=None,
                        help="an earlier output .json whose aihwkit runs to reuse (see above)")
    args = parser.parse_args(argv)
    args.times = [float(t) for t in args.times.split(",")]
    torch.set_num_threads(args.threads)
    if args.role == "peer":
        print(json.dumps(run_peer(args)))
        return
    start = time.perf_counter()
    peer = stored_peer(args.peer_from, args)
    args.peer_reused = peer is not None
    if peer is None:
        peer = call_peer(args.peer_python, __file__, argv)
    ours = run_ours(args)
    title = (f"{args.model} ({Path(args.weights).parent.name}): aimcsim and aihwkit, first "
             f"{args.limit} test images, {args.reps} programmings each")
    text = table(ours, peer, title)
    write_outputs(args.out, text, {"ours": ours, "peer": peer,
                                   "seconds": time.perf_counter() - start, "args": vars(args)})
    print(text)


if __name__ == "__main__":
    main()
