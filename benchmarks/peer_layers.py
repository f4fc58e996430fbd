"""Layer by layer output statistics, aimcsim beside IBM aihwkit 1.1.0, on the same inputs.

    python benchmarks/peer_layers.py --weights checkpoints/resnet32_swa_low/model.pt \
        [--model resnet32] [--images 16] [--reps 2] [--times 1,86400] [--layers all] \
        [--variants matched] [--peer-python /work/venv-peer/bin/python] \
        [--out docs/results/peer_layers]

Why: the two simulators agree on the network's accuracy with output noise off and on each
tile's drift-compensation factor, but not on accuracy with output noise and drift together.
This isolates each analog layer: its input is the float network's activation at that layer on
the first ``--images`` test images (identical on both sides), it is programmed alone
(programming r uses seed r), read at each time t, and run twice on the same input (two
independent output-noise draws). With Y0 the float layer's output and Y1, Y2 the two analog
outputs, per layer and time (all ratios to rms(Y0), dimensionless):

- ``gain``: least-squares slope of Y1 on Y0, <Y1, Y0> / <Y0, Y0> (1 after a perfect drift
  compensation);
- ``error``: rms(Y1 - Y0) / rms(Y0), the whole error of the layer;
- ``noise``: rms(Y1 - Y2) / (sqrt(2) rms(Y0)), the part drawn afresh at every MVM (output
  noise, its ADC rounding);
- ``fixed``: rms((Y1 + Y2) / 2 - Y0) / rms(Y0), the part fixed per read (weight error, gain,
  plus half the fresh part's variance).

aihwkit runs with ``benchmarks/peer_aihwkit.py``'s ``peer_config`` in its own environment (this
script calls itself there with ``--role peer``); aimcsim with the configs of
``peer_accuracy.ours_configs`` (``--variants`` picks them by the part of their label after
"aimcsim "). Writes ``<out>.md`` (per-time means over layers and the per-layer table) and
``.json``.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from peer_accuracy import call_peer, load_model, test_batches  # noqa: E402  (torch-only)

STATISTICS = ("gain", "error", "noise", "fixed")


def layer_inputs(model: nn.Module, images: torch.Tensor, wanted: list[str] | None
                 ) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """Every Conv2d / Linear of ``model`` (or those named in ``wanted``) with the input it
    receives in the float network on ``images``, in forward order."""
    captured: dict[str, tuple[nn.Module, torch.Tensor]] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and (wanted is None or name in wanted):
            hooks.append(module.register_forward_hook(
                lambda m, args, out, name=name: captured.__setitem__(name, (m, args[0].detach()))))
    with torch.no_grad():
        model(images)
    for hook in hooks:
        hook.remove()
    return captured


def statistics(y1: torch.Tensor, y2: torch.Tensor, y0: torch.Tensor) -> dict[str, float]:
    """gain, error, noise, fixed of two analog outputs against the float output (module doc)."""
    y0, y1, y2 = (t.double().reshape(-1) for t in (y0, y1, y2))
    rms0 = float(y0.pow(2).mean().sqrt())
    return {"gain": float(y1 @ y0 / (y0 @ y0)),
            "error": float((y1 - y0).pow(2).mean().sqrt()) / rms0,
            "noise": float((y1 - y2).pow(2).mean().sqrt()) / (np.sqrt(2) * rms0),
            "fixed": float(((y1 + y2) / 2 - y0).pow(2).mean().sqrt()) / rms0}


def measure(layers: dict, times: list[float], reps: int, program, drift) -> dict:
    """stats[layer][time] = list over programmings of the statistics dict. ``program(module,
    rep)`` returns the programmed analog twin of a one-layer Sequential; ``drift(analog, t,
    rep)`` reads it at t seconds."""
    out: dict = {}
    with torch.no_grad():
        for name, (module, x) in layers.items():
            y0 = module(x)
            for rep in range(reps):
                analog = program(nn.Sequential(copy.deepcopy(module)).eval(), rep)
                for t in times:
                    drift(analog, t, rep)
                    y1, y2 = analog(x), analog(x)
                    out.setdefault(name, {}).setdefault(f"{t:g}", []).append(
                        statistics(y1, y2, y0))
    return out


def measure_in_network(model: nn.Module, layers: dict, images: torch.Tensor,
                       times: list[float], reps: int, program, drift) -> dict:
    """As :func:`measure`, but every layer inside the whole analog network: its input is the
    analog network's activation (``input`` adds rms(x - x_float) / rms(x_float), the deviation
    from the float network's activation), Y0 is the float layer on that same input and Y2 a
    second run of the analog layer on it. ``program(model, rep)`` returns the programmed
    analog network."""
    out: dict = {}
    with torch.no_grad():
        for rep in range(reps):
            analog = program(copy.deepcopy(model).eval(), rep)
            for t in times:
                drift(analog, t, rep)
                busy = set()
                hooks = []

                def hook(module, args, y1, name):
                    if name in busy:
                        return
                    busy.add(name)
                    x = args[0]
                    float_module, x_float = layers[name]
                    stats = statistics(y1, module(x), float_module(x))
                    stats["input"] = float((x - x_float).pow(2).mean().sqrt()
                                           / x_float.pow(2).mean().sqrt())
                    out.setdefault(name, {}).setdefault(f"{t:g}", []).append(stats)
                    busy.discard(name)
                for name in layers:
                    hooks.append(analog.get_submodule(name).register_forward_hook(
                        lambda m, a, y, name=name: hook(m, a, y, name)))
                analog(images)
                for h in hooks:
                    h.remove()
    return out


def run_peer(args, layers: dict) -> dict:
    from aihwkit import __version__
    from aihwkit.nn.conversion import convert_to_analog
    from peer_aihwkit import peer_config

    def program(module, rep):
        torch.manual_seed(rep)
        analog = convert_to_analog(module, peer_config()).eval()
        analog.program_analog_weights()
        return analog

    def drift(analog, t, rep):
        analog.drift_analog_weights(t)
    return {"version": __version__, "stats": run_context(args, layers, program, drift)}


def run_context(args, layers: dict, program, drift) -> dict:
    """:func:`measure` (``--context layer``) or :func:`measure_in_network`."""
    if args.context == "layer":
        return measure(layers, args.times, args.reps, program, drift)
    return measure_in_network(args.network, layers, args.images_tensor, args.times, args.reps,
                              program, drift)


def run_ours(args, layers: dict) -> dict:
    import aimcsim
    from peer_accuracy import ours_configs
    results = {}
    for label, config in ours_configs().items():
        if label.removeprefix("aimcsim ") not in args.variants:
            continue

        def program(module, rep, config=config):
            analog = aimcsim.convert_to_analog(module, config).eval()
            return aimcsim.program(analog, seed=rep)

        def drift(analog, t, rep):
            aimcsim.set_time(analog, t, seed=rep)
        results[label] = run_context(args, layers, program, drift)
    return results


def summary(stats: dict, t: str) -> dict[str, float]:
    """Mean of every statistic over layers and programmings at time ``t``."""
    keys = next(iter(stats.values()))[t][0]
    return {k: float(np.mean([s[k] for layer in stats.values() for s in layer[t]]))
            for k in keys}


def table(series: dict[str, dict], title: str) -> str:
    first = next(iter(series.values()))
    times = list(next(iter(first.values())))
    keys = list(summary(first, times[0]))
    per_layer = [k for k in ("gain", "noise", "input") if k in keys]
    lines = [f"# {title}", "",
             "Ratios to rms of the float layer's output; gain: slope of the analog output on "
             "the float one (see benchmarks/peer_layers.py).", "",
             "## Mean over layers", "",
             "| series | t (s) | " + " | ".join(keys) + " |",
             "|---|---:|" + "---:|" * len(keys)]
    for t in times:
        for name, stats in series.items():
            s = summary(stats, t)
            lines.append(f"| {name} | {t} | " + " | ".join(f"{s[k]:.4f}" for k in keys) + " |")
    names = list(series)
    lines += ["", f"## Per layer (mean over programmings): {' / '.join(per_layer)}", "",
              "| layer | " + " | ".join(f"{n} t={t}" for t in times for n in names) + " |",
              "|---|" + "---:|" * (len(times) * len(names))]
    for layer in first:
        cells = []
        for t in times:
            for n in names:
                runs = series[n][layer][t]
                cells.append(" / ".join(f"{np.mean([r[k] for r in runs]):.3f}"
                                        for k in per_layer))
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet32")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--times", default="1,86400")
    parser.add_argument("--layers", default="all", help="comma-separated module names or all")
    parser.add_argument("--context", choices=("layer", "network"), default="layer",
                        help="each layer alone on float inputs, or inside the analog network")
    parser.add_argument("--variants",
                        default="matched,matched-idle-independent,matched-idle-off",
                        help="of aimcsim's: matched,matched-read-reference,"
                             "matched-idle-independent,matched-idle-off,default")
    parser.add_argument("--data", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--peer-python", default="/work/venv-peer/bin/python")
    parser.add_argument("--peer-cache", default=None,
                        help="JSON file keeping the peer's result for reruns with the same "
                             "model, images, layers, times and programmings")
    parser.add_argument("--role", choices=("driver", "peer"), default="driver")
    parser.add_argument("--out", default="docs/results/peer_layers")
    args = parser.parse_args(argv)
    args.times = [float(t) for t in args.times.split(",")]
    args.variants = args.variants.split(",")
    torch.set_num_threads(args.threads)
    images = torch.cat([x for x, _ in test_batches(args.images, args.data)])[:args.images]
    wanted = None if args.layers == "all" else args.layers.split(",")
    args.network = load_model(args.model, args.weights)
    args.images_tensor = images
    layers = layer_inputs(args.network, images, wanted)
    if args.role == "peer":
        print(json.dumps(run_peer(args, layers)))
        return
    series = run_ours(args, layers)
    cache = Path(args.peer_cache) if args.peer_cache else None
    if cache is not None and cache.exists():
        peer = json.loads(cache.read_text())
    else:
        peer = call_peer(args.peer_python, __file__, argv)
        if cache is not None and peer is not None:
            cache.write_text(json.dumps(peer))
    if peer is not None:
        series[f"aihwkit {peer['version']}"] = peer["stats"]
    where = ("one analog layer at a time, float inputs" if args.context == "layer" else
             "every layer inside the analog network")
    title = (f"{args.model} ({Path(args.weights).parent.name}): {where}, {args.images} test "
             f"images, {args.reps} programmings")
    text = table(series, title)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text + "\n")
    out.with_suffix(".json").write_text(json.dumps(
        {"series": series, "args": {k: v for k, v in vars(args).items()
                                    if k not in ("network", "images_tensor")}}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
