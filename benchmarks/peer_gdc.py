"""Global drift compensation tile by tile, aimcsim beside IBM aihwkit 1.1.0, on the same weights.

    python benchmarks/peer_gdc.py --weights checkpoints/resnet32_swa_low/model.pt \
        [--model resnet32] [--times 1,3600,86400,2592000] [--reps 2] \
        [--peer-python /work/venv-peer/bin/python] [--out docs/results/peer_gdc]

For every tile, after programming and a read at time t: the tile's compensation factor alpha,
the shrink s of its weights (least-squares slope of the read weights W(t) on the weights read
right after programming W(0): s = <W(t), W(0)> / <W(0), W(0)>), and their product alpha x s,
which is 1 for a perfect compensation. aihwkit's ``programmed_weights`` are its W(0); aimcsim
reads W(0) at t = 0. The same against the target weights W_T (the mapped float weights, the
same on both sides): the overall gain alpha x s_T, s_T = <W(t), W_T> / <W_T, W_T>, and the
spread rms(W(t) / s_T - W_T) / max|W_T| (the weight error left after the tile's gain), each a
tile-size-weighted mean over tiles, then mean +- SE over programmings. Both sides use ``peer_accuracy.py``'s settings (aimcsim's "matched*"
series: one-hot calibration, as aihwkit; "default": dense calibration). Reports the mean, min
and max of alpha x s over tiles, the tile count and the tile shapes (rows x columns) of both
sides, so a difference in tiling would show. Writes ``<out>.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from peer_accuracy import call_peer, load_model, write_outputs  # noqa: E402  (torch-only)


def shrink(read: np.ndarray, programmed: np.ndarray) -> float:
    """Least-squares slope of ``read`` on ``programmed`` (both flattened)."""
    p = programmed.astype(np.float64).ravel()
    return float(read.astype(np.float64).ravel() @ p / (p @ p))


def against_target(read: np.ndarray, target: np.ndarray, alpha: float) -> tuple[float, float]:
    """(alpha x s_T, rms(read / s_T - target) / max|target|) of one tile (see the module)."""
    r, w = read.astype(np.float64).ravel(), target.astype(np.float64).ravel()
    s = float(r @ w / (w @ w))
    return alpha * s, float(np.sqrt(np.mean((r / s - w) ** 2)) / np.abs(w).max())


def record(out: dict, t: float, rows: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]
           ) -> None:
    """Append one programming's per-tile (alpha, W(t), W(0), W_T) measures at time t."""
    key = f"{t:g}"
    out["products"].setdefault(key, []).append([a * shrink(w, w0) for a, w, w0, _ in rows])
    pairs = [against_target(w, wt, a) for a, w, _, wt in rows]
    out["gains"].setdefault(key, []).append([g for g, _ in pairs])
    out["spreads"].setdefault(key, []).append([e for _, e in pairs])


def run_peer(args) -> dict:
    from aihwkit import __version__
    from aihwkit.nn.conversion import convert_to_analog
    from peer_aihwkit import peer_config
    base = load_model(args.model, args.weights)
    out: dict = {"version": __version__, "shapes": None, "products": {}, "gains": {},
                 "spreads": {}}
    for rep in range(args.reps):
        torch.manual_seed(rep)
        analog = convert_to_analog(base, peer_config()).eval()
        analog.program_analog_weights()
        tiles = [tile for _, layer in analog.named_analog_layers()
                 for tile in layer.analog_tiles()]
        out["shapes"] = [list(tile.programmed_weights.shape)[::-1] for tile in tiles]
        for t in args.times:
            analog.drift_analog_weights(t)
            record(out, t, [(float(tile.alpha), np.asarray(tile.tile.get_weights()),
                             tile.programmed_weights.numpy(),
                             tile.reference_combined_weights.numpy()) for tile in tiles])
    return out


def run_ours(args) -> dict:
    import aimcsim
    from aimcsim.nn.layers import ANALOG_LAYERS
    from peer_accuracy import ours_configs
    base = load_model(args.model, args.weights)
    results = {}
    for label, config in ours_configs().items():
        out: dict = {"shapes": None, "products": {}, "gains": {}, "spreads": {}}
        for rep in range(args.reps):
            analog = aimcsim.convert_to_analog(base, config).eval()
            aimcsim.program(analog, seed=rep)
            tiles = [tile for m in analog.modules() if isinstance(m, ANALOG_LAYERS)
                     for tile in m.tiles]
            out["shapes"] = [[tile.in_size, tile.out_size] for tile in tiles]
            programmed = [tile.normalized_weights.copy() for tile in tiles]
            targets = [tile.weights / np.where(tile._w_max > 0, tile._w_max, 1)
                       for tile in tiles]
            for t in args.times:
                aimcsim.set_time(analog, t, seed=rep)
                record(out, t, [(float(np.mean(tile.drift_compensation)),
                                 tile.normalized_weights, w0, wt)
                                for tile, w0, wt in zip(tiles, programmed, targets)])
        results[label] = out
    return results


def table(series: dict, title: str) -> str:
    times = list(next(iter(series.values()))["products"])
    lines = [f"# {title}", "",
             "alpha x s over tiles and programmings: mean (min - max); 1 is a perfect "
             "compensation", "",
             "| simulator | tiles | " + " | ".join(f"t = {t} s" for t in times) + " |",
             "|---|---:|" + "---:|" * len(times)]
    for name, data in series.items():
        cells = []
        for t in times:
            p = np.array(data["products"][t])
            cells.append(f"{p.mean():.3f} ({p.min():.3f} - {p.max():.3f})")
        lines.append(f"| {name} | {len(data['shapes'])} | " + " | ".join(cells) + " |")
    for key, what in (("gains", "overall gain alpha x s_T against the target weights"),
                      ("spreads", "spread rms(W(t) / s_T - W_T) / max|W_T|")):
        if not all(key in data for data in series.values()):
            continue
        lines += ["", f"{what}: tile-size-weighted mean over tiles, mean +- SE over "
                  "programmings", "",
                  "| simulator | " + " | ".join(f"t = {t} s" for t in times) + " |",
                  "|---|" + "---:|" * len(times)]
        for name, data in series.items():
            sizes = np.array([r * c for r, c in data["shapes"]], float)
            cells = []
            for t in times:
                per_rep = np.array(data[key][t]) @ sizes / sizes.sum()
                se = per_rep.std(ddof=1) / np.sqrt(per_rep.size) if per_rep.size > 1 else 0.0
                cells.append(f"{per_rep.mean():.4f} +- {se:.4f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    names = list(series)
    if len(names) > 1:
        same = all(series[n]["shapes"] == series[names[0]]["shapes"] for n in names)
        lines += ["", "Tile shapes (rows x columns) are "
                  + ("the same on every side." if same else "NOT the same on every side.")]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet32")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--times", default="1,3600,86400,2592000")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--peer-python", default="/work/venv-peer/bin/python")
    parser.add_argument("--role", choices=("driver", "peer"), default="driver")
    parser.add_argument("--out", default="docs/results/peer_gdc")
    args = parser.parse_args(argv)
    args.times = [float(t) for t in args.times.split(",")]
    torch.set_num_threads(args.threads)
    if args.role == "peer":
        print(json.dumps(run_peer(args)))
        return
    series = run_ours(args)
    peer = call_peer(args.peer_python, __file__, argv)
    if peer is not None:
        series[f"aihwkit {peer.pop('version')}"] = peer
    title = (f"{args.model} ({Path(args.weights).parent.name}): drift compensation per tile, "
             f"{args.reps} programmings")
    text = table(series, title)
    write_outputs(args.out, text, {"series": series, "args": vars(args)})
    print(text)


if __name__ == "__main__":
    main()
