"""Many programmings of aihwkit 1.1.0's read weights through aimcsim's forward pass.

    python benchmarks/peer_weights.py --weights checkpoints/resnet32_swa_low/model.pt \
        [--model resnet32] [--limit 500] [--reps 10] [--times 3600,86400] \
        [--ours matched,matched-read-reference,...] [--alpha-scales f1,f2] \
        [--peer-python /work/venv-peer/bin/python] [--out docs/results/peer_weights]

``peer_swap.py`` shows that the two forward passes give the same accuracy on the same read
weights, so the simulators can only differ in the weights (and drift-compensation factors) they
read. Their accuracy after drift varies by several points from one programming to the next
(the one-hot compensation leaves the network on a steep slope of accuracy against gain), so a
few programmings cannot separate them. aihwkit's programming and drift are fast, its forward
pass is not: here aihwkit only programs (``torch.manual_seed(r)``) and reads each time t,
storing every tile's read weights and alpha, and aimcsim's forward pass evaluates them beside
aimcsim's own reads (``peer_accuracy.ours_configs``'s ``matched``, ``matched-read-reference``,
``matched-idle-independent`` and ``matched-idle-off``; ``--ours`` picks some).
Programming r of every series runs with aimcsim's forward-noise stream of seed r (paired).
``--alpha-scales f1,f2`` adds series of aimcsim ``matched`` with every tile's alpha multiplied
by f: how steeply accuracy depends on the compensation's overall gain. Writes ``<out>.md``
(mean, SD and SE over programmings; paired differences to aihwkit's weights) and ``.json``.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from peer_accuracy import (accuracy, call_peer, load_model, peer_parser,  # noqa: E402
                           test_batches, write_outputs)
from peer_swap import key, ours_load, peer_dump  # noqa: E402

OURS = ("matched", "matched-read-reference", "matched-idle-independent", "matched-idle-off")


def run_peer(args) -> dict:
    """Program and read only; every read's weights go to ``--swap-dir``."""
    from aihwkit import __version__
    from peer_aihwkit import peer_reads
    base = load_model(args.model, args.weights)
    for rep, t, analog in peer_reads(base, args.reps, args.times):
        np.savez(Path(args.swap_dir) / f"peer_{key(rep, t)}.npz", **peer_dump(analog))
    return {"version": __version__}


def scale_alphas(model, factor: float) -> None:
    """Multiply every tile's drift-compensation factor by ``factor`` (after a read)."""
    from aimcsim.nn.layers import ANALOG_LAYERS
    for module in model.modules():
        if isinstance(module, ANALOG_LAYERS):
            for tile in module.tiles:
                tile._alpha = (tile._alpha * np.float32(factor)).astype(np.float32)
            module.analog.to(module.weight.device)  # re-cache the tiles' read weights


def run_ours(args, swap: Path, version: str) -> dict[str, dict[str, list[float]]]:
    import aimcsim
    from peer_accuracy import ours_configs
    configs = ours_configs()
    batches = test_batches(args.limit, args.data)
    base = load_model(args.model, args.weights)
    runs: dict[str, dict[str, list[float]]] = {}
    series = [(f"aihwkit {version} weights", "matched", True, 1.0)] + \
        [(f"aimcsim {name}", name, False, 1.0) for name in args.ours] + \
        [(f"aimcsim matched, alpha x {f:g}", "matched", False, f) for f in args.alpha_scales]
    for label, config_name, from_peer, factor in series:
        for rep in range(args.reps):
            analog = aimcsim.convert_to_analog(base, configs[f"aimcsim {config_name}"]).eval()
            aimcsim.program(analog, seed=rep)
            for t in args.times:
                aimcsim.set_time(analog, t, seed=rep)
                if from_peer:
                    ours_load(analog, dict(np.load(swap / f"peer_{key(rep, t)}.npz")))
                if factor != 1.0:
                    scale_alphas(analog, factor)
                runs.setdefault(label, {}).setdefault(f"{t:g}", []).append(
                    accuracy(analog, batches))
            print(label, rep, {t: round(100 * v[-1], 2) for t, v in runs[label].items()},
                  file=sys.stderr, flush=True)
    return runs


def table(runs: dict, title: str) -> str:
    names = list(runs)
    reference = names[0]
    times = list(runs[reference])
    lines = [f"# {title}", "",
             "accuracy (%) over programmings: mean +- SE (SD); paired difference to "
             f"{reference} (same forward-noise seeds): mean +- SE", "",
             "| series | " + " | ".join(f"t = {t} s" for t in times) + " | "
             + " | ".join(f"difference, t = {t} s" for t in times) + " |",
             "|---|" + "---:|" * (2 * len(times))]
    for name in names:
        cells, diffs = [], []
        for t in times:
            a = 100 * np.array(runs[name][t])
            cells.append(f"{a.mean():.2f} +- {a.std(ddof=1) / np.sqrt(a.size):.2f} "
                         f"({a.std(ddof=1):.2f})")
            d = a - 100 * np.array(runs[reference][t])
            diffs.append("" if name == reference else
                         f"{d.mean():+.2f} +- {d.std(ddof=1) / np.sqrt(d.size):.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(diffs) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = peer_parser(__doc__.splitlines()[0], "docs/results/peer_weights", reps=10,
                         times="3600,86400", limit=500)
    parser.add_argument("--ours", default=",".join(OURS),
                        help=f"comma-separated aimcsim series, of {','.join(OURS)}")
    parser.add_argument("--alpha-scales", default="",
                        help="comma-separated factors f: extra series, matched with alpha x f")
    parser.add_argument("--swap-dir", default=None, help="(set by the driver for the peer)")
    args = parser.parse_args(argv)
    if args.reps < 2:
        raise SystemExit("--reps must be at least 2 (standard errors)")
    args.times = [float(t) for t in args.times.split(",")]
    args.alpha_scales = [float(f) for f in args.alpha_scales.split(",") if f]
    args.ours = [name for name in args.ours.split(",") if name]
    unknown = sorted(set(args.ours) - set(OURS))
    if unknown:
        raise SystemExit(f"--ours: unknown series {unknown}; known: {', '.join(OURS)}")
    torch.set_num_threads(args.threads)
    if args.role == "peer":
        print(json.dumps(run_peer(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        peer_argv = list(argv if argv is not None else sys.argv[1:]) + ["--swap-dir", tmp]
        peer = call_peer(args.peer_python, __file__, peer_argv)
        if peer is None:
            raise SystemExit("the peer did not run (see above)")
        runs = run_ours(args, Path(tmp), peer["version"])
    title = (f"{args.model} ({Path(args.weights).parent.name}): read weights of each simulator "
             f"through aimcsim's forward pass, first {args.limit} test images, {args.reps} "
             f"programmings")
    text = table(runs, title)
    write_outputs(args.out, text, {"runs": runs, "version": peer["version"], "args": vars(args)})
    print(text)


if __name__ == "__main__":
    main()
