"""Weights of one simulator through the forward pass of the other: aimcsim beside aihwkit 1.1.0.

    python benchmarks/peer_swap.py --weights checkpoints/resnet32_swa_low/model.pt \
        [--model resnet32] [--limit 500] [--reps 3] [--times 1,86400] [--variant matched] \
        [--peer-python /work/venv-peer/bin/python] [--out docs/results/peer_swap]

Accuracy differences between the two simulators come either from the weights they read at time
t (device model: programming noise, drift, read noise, idle devices, and the drift
compensation factor alpha read from them) or from the forward pass (DAC, output noise, ADC,
per-patch noise management). This separates the two. For every programming r (seed r on each
side) and time t, each side programs and reads the network, stores every tile's read weights
(normalised units, rows x columns as the crossbar holds them) and its alpha, and evaluates:

- its own weights with its own forward pass (the plain comparison),
- the other side's weights and alphas, loaded into its tiles, with its own forward pass.

Tiles are matched by layer name and order; a transferred tile must correlate with the tile it
replaces (r > 0.5, else ValueError: the layouts would differ). A 2 x 2 table of mean accuracy
(weights from x forward pass of) results. aimcsim runs ``peer_accuracy.ours_configs``'s
``--variant``; aihwkit ``peer_aihwkit.peer_config`` in its own environment (this script calls
itself there with ``--role peer``). Writes ``<out>.md`` and ``.json``.
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

#: Smallest correlation between a transferred tile and the tile it replaces.
MIN_MATCH = 0.5


def key(rep: int, t: float) -> str:
    return f"r{rep}_t{t:g}"


def check_match(name: str, given: np.ndarray, own: np.ndarray) -> None:
    """ValueError unless ``given`` (out, in) has the shape of ``own`` and correlates with it."""
    if given.shape != own.shape:
        raise ValueError(f"tile {name}: shape {given.shape} against {own.shape}")
    r = np.corrcoef(given.ravel(), own.ravel())[0, 1]
    if not r > MIN_MATCH:
        raise ValueError(f"tile {name}: correlation {r:.3f} with the tile it replaces")


# ---------------------------------------------------------------------------- aimcsim side
def ours_tiles(model) -> dict[str, object]:
    """name/index -> AnalogTile, in forward-definition order."""
    from aimcsim.nn.layers import ANALOG_LAYERS
    return {f"{name}/{i}": tile for name, module in model.named_modules()
            if isinstance(module, ANALOG_LAYERS) for i, tile in enumerate(module.tiles)}


def ours_dump(model) -> dict[str, np.ndarray]:
    out = {}
    for name, tile in ours_tiles(model).items():
        w = tile.normalized_weights
        if w.shape[0] != 1:
            raise ValueError(f"tile {name}: grouped tiles are not supported")
        out[f"{name}:w"] = np.ascontiguousarray(w[0].T)
        out[f"{name}:alpha"] = np.float32(np.mean(tile.drift_compensation))
    return out


def ours_load(model, data: dict[str, np.ndarray]) -> None:
    """Replace every tile's read weights and alpha with ``data``'s."""
    from aimcsim.nn.layers import ANALOG_LAYERS
    tiles = ours_tiles(model)
    for name, tile in tiles.items():
        w = np.asarray(data[f"{name}:w"], np.float32)
        check_match(name, w, tile.normalized_weights[0].T)
        tile._w_n = np.ascontiguousarray(w.T)[None]
        tile._alpha = np.full(tile.out_size, float(data[f"{name}:alpha"]), np.float32)
    for module in model.modules():
        if isinstance(module, ANALOG_LAYERS):
            module.analog.to(module.weight.device)  # re-cache the tiles' read weights


def run_ours(args, batches, swap: Path, peer_done: bool) -> dict:
    """Own accuracy (dumping weights) or, once the peer has written its weights, accuracy on
    them."""
    import aimcsim
    from peer_accuracy import ours_configs
    config = ours_configs()[f"aimcsim {args.variant}"]
    base = load_model(args.model, args.weights)
    runs: dict[str, list[float]] = {}
    for rep in range(args.reps):
        analog = aimcsim.convert_to_analog(base, config).eval()
        aimcsim.program(analog, seed=rep)
        for t in args.times:
            aimcsim.set_time(analog, t, seed=rep)
            if peer_done:
                ours_load(analog, dict(np.load(swap / f"peer_{key(rep, t)}.npz")))
            else:
                np.savez(swap / f"ours_{key(rep, t)}.npz", **ours_dump(analog))
            runs.setdefault(f"{t:g}", []).append(accuracy(analog, batches))
    return runs


# ---------------------------------------------------------------------------- aihwkit side
def peer_tiles(model) -> dict[str, object]:
    return {f"{name}/{i}": tile for name, layer in model.named_analog_layers()
            for i, tile in enumerate(layer.analog_tiles())}


def peer_dump(model) -> dict[str, np.ndarray]:
    out = {}
    for name, tile in peer_tiles(model).items():
        out[f"{name}:w"] = np.asarray(tile.tile.get_weights(), np.float32)
        out[f"{name}:alpha"] = np.float32(tile.alpha.reshape(-1)[0])
    return out


def peer_load(model, data: dict[str, np.ndarray]) -> None:
    for name, tile in peer_tiles(model).items():
        w = np.asarray(data[f"{name}:w"], np.float32)
        check_match(name, w, np.asarray(tile.tile.get_weights(), np.float32))
        tile.tile.set_weights(torch.from_numpy(w))
        tile.__dict__.pop("alpha", None)
        tile.alpha = torch.tensor([float(data[f"{name}:alpha"])])


def run_peer(args) -> dict:
    from aihwkit import __version__
    from peer_aihwkit import peer_reads
    batches = test_batches(args.limit, args.data)
    base = load_model(args.model, args.weights)
    swap = Path(args.swap_dir)
    own: dict[str, list[float]] = {}
    theirs: dict[str, list[float]] = {}
    for rep, t, analog in peer_reads(base, args.reps, args.times):
        np.savez(swap / f"peer_{key(rep, t)}.npz", **peer_dump(analog))
        own.setdefault(f"{t:g}", []).append(accuracy(analog, batches))
        peer_load(analog, dict(np.load(swap / f"ours_{key(rep, t)}.npz")))
        theirs.setdefault(f"{t:g}", []).append(accuracy(analog, batches))
    return {"version": __version__, "own": own, "aimcsim weights": theirs}


# ---------------------------------------------------------------------------- report
def cell(runs: list[float]) -> str:
    a = 100 * np.array(runs)
    se = a.std(ddof=1) / np.sqrt(a.size) if a.size > 1 else 0.0
    return f"{a.mean():.2f} +- {se:.2f}"


def table(result: dict, title: str) -> str:
    peer = f"aihwkit {result['version']}"
    ours = f"aimcsim {result['variant']}"
    rows = [(f"{ours} weights", result["ours own"], result["peer on ours"]),
            (f"{peer} weights", result["ours on peer"], result["peer own"])]
    lines = [f"# {title}", "", "mean accuracy over programmings (%), +- standard error", "",
             f"| weights read by | t (s) | forward pass of {ours} | forward pass of {peer} |",
             "|---|---:|---:|---:|"]
    for t in result["ours own"]:
        for label, first, second in rows:
            lines.append(f"| {label} | {t} | {cell(first[t])} | {cell(second[t])} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = peer_parser(__doc__.splitlines()[0], "docs/results/peer_swap", reps=3,
                         times="1,86400", limit=500)
    parser.add_argument("--variant", default="matched")
    parser.add_argument("--swap-dir", default=None, help="(set by the driver for the peer)")
    args = parser.parse_args(argv)
    args.times = [float(t) for t in args.times.split(",")]
    torch.set_num_threads(args.threads)
    if args.role == "peer":
        print(json.dumps(run_peer(args)))
        return
    batches = test_batches(args.limit, args.data)
    with tempfile.TemporaryDirectory() as tmp:
        swap = Path(tmp)
        ours_own = run_ours(args, batches, swap, peer_done=False)
        peer_argv = list(argv if argv is not None else sys.argv[1:]) + ["--swap-dir", tmp]
        peer = call_peer(args.peer_python, __file__, peer_argv)
        if peer is None:
            raise SystemExit("the peer did not run (see above)")
        ours_on_peer = run_ours(args, batches, swap, peer_done=True)
    result = {"version": peer["version"], "variant": args.variant, "ours own": ours_own,
              "ours on peer": ours_on_peer, "peer own": peer["own"],
              "peer on ours": peer["aimcsim weights"]}
    title = (f"{args.model} ({Path(args.weights).parent.name}): weights of one simulator "
             f"through the forward pass of the other, first {args.limit} test images, "
             f"{args.reps} programmings")
    text = table(result, title)
    write_outputs(args.out, text, {"result": result, "args": vars(args)})
    print(text)


if __name__ == "__main__":
    main()
