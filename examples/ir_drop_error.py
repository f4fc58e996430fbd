"""How good is the fast IR-drop model? Its error against the exact nodal solve of the crossbar,
by array size and wire resistance.

For each size n and segment resistance r (rows and columns alike) one n x n differential pair
is drawn: Gaussian weights mapped as a tile maps them (G+ = max(w, 0) / max|w| g_max, G- the
same for -w; g_max 25 µS), driven by a batch of input vectors at x V_read volts (V_read
0.2 V), ``signed`` (x uniform in [-1, 1]) and ``non-negative`` (x uniform in [0, 1], like
ReLU outputs). The exact output I+ - I- is the sparse nodal solve
(``aimcsim.tiles.ir_drop.NodalCrossbar``); the table gives, relative to it (norm over all
outputs of the batch):

- IR drop: ||ideal - exact|| / ||exact||, how far the wires move the output from V G;
- decoupled: ||approx - exact|| / ||exact|| of the model a tile uses (exact row and column
  ladders, decoupled);
- first order: the same for the first-order model (cumulative sums of the ideal currents);
- the load r mean(G) n^2 (dimensionless), and the CPU seconds of the exact factorisation
  (both polarities) and of the decoupled model (CPU time: the wall time of a loaded machine
  says little).

    python examples/ir_drop_error.py [--sizes 32,64,128] [--resistances 0.1,1,10] \
        [--vectors 64] [--out docs/results/ir_drop/error]

The exact solve grows as about (n^2)^1.5: 256 takes minutes on a loaded machine, 512 some
tens of minutes (add them to ``--sizes`` to run them).
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aimcsim.tiles.ir_drop import NodalCrossbar, decoupled_factors, first_order_factors

G_MAX_US = 25.0
INPUTS = ("signed", "non-negative")


def differential_pair(n: int, rng: np.random.Generator, g_max: float) -> np.ndarray:
    """(2, n, n) conductances, µS, of Gaussian weights mapped with w_max = max|w|."""
    w = rng.standard_normal((n, n))
    w /= np.abs(w).max()
    return g_max * np.stack([np.maximum(w, 0), np.maximum(-w, 0)])


def input_batches(n: int, vectors: int, rng: np.random.Generator, read_voltage: float
                  ) -> dict[str, np.ndarray]:
    """Row voltages (vectors, n) of each input kind, volts."""
    return {"signed": read_voltage * rng.uniform(-1, 1, (vectors, n)),
            "non-negative": read_voltage * rng.uniform(0, 1, (vectors, n))}


def measure_one(pair: np.ndarray, batches: dict[str, np.ndarray], r: float) -> dict:
    """Errors of both models and the IR drop for one array and resistance."""
    start = time.process_time()
    solvers = [NodalCrossbar(g, r, r) for g in pair]
    exact_seconds = time.process_time() - start
    start = time.process_time()
    decoupled = pair * decoupled_factors(pair, r, r)
    decoupled_seconds = time.process_time() - start
    first = pair * first_order_factors(pair, r, r)
    entry = {"load": r * 1e-6 * float(pair.mean(axis=(1, 2)).mean()) * pair.shape[1] ** 2,
             "exact_seconds": exact_seconds, "decoupled_seconds": decoupled_seconds}
    for kind, v in batches.items():
        start = time.process_time()
        exact = solvers[0].currents(v) - solvers[1].currents(v)
        entry.setdefault("solve_seconds", 0.0)
        entry["solve_seconds"] += time.process_time() - start
        norm = np.linalg.norm(exact)

        def relative(model: np.ndarray) -> float:
            return float(np.linalg.norm(v @ (model[0] - model[1]) - exact) / norm)
        entry[kind] = {"ir_drop": relative(pair), "decoupled": relative(decoupled),
                       "first_order": relative(first)}
    return entry


def measure(sizes: list[int], resistances: list[float], vectors: int, seed: int,
            g_max: float = G_MAX_US, read_voltage: float = 0.2,
            progress: Callable[[dict], None] | None = None) -> dict:
    """{size: {resistance: entry}} (keys as strings, JSON-ready); ``progress(results)`` is
    called after every entry (the script writes its table then, so a long run that is
    stopped keeps what it measured)."""
    results: dict = {}
    for n in sizes:
        rng = np.random.default_rng([seed, n])
        pair = differential_pair(n, rng, g_max)
        batches = input_batches(n, vectors, rng, read_voltage)
        for r in resistances:
            entry = measure_one(pair, batches, r)
            results.setdefault(str(n), {})[f"{r:g}"] = entry
            print(f"n={n} r={r:g}: " + ", ".join(
                f"{kind} drop {entry[kind]['ir_drop']:.2e} decoupled "
                f"{entry[kind]['decoupled']:.2e}" for kind in INPUTS), flush=True)
            if progress is not None:
                progress(results)
    return results


def table(results: dict, title: str) -> str:
    lines = [f"# {title}", "",
             "| n x n | r (ohm/segment) | load r mean(G) n^2 | inputs | IR drop | "
             "decoupled error | first-order error | exact factorisation (CPU s) | "
             "decoupled (CPU s) |", "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for n, by_r in results.items():
        for r, entry in by_r.items():
            for kind in INPUTS:
                e = entry[kind]
                lines.append(f"| {n} | {r} | {entry['load']:.3g} | {kind} | "
                             f"{100 * e['ir_drop']:.3g}% | {100 * e['decoupled']:.2g}% | "
                             f"{100 * e['first_order']:.2g}% | {entry['exact_seconds']:.2f} | "
                             f"{entry['decoupled_seconds']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="32,64,128", help="comma-separated array sides")
    parser.add_argument("--resistances", default="0.1,1,10",
                        help="comma-separated segment resistances, ohms")
    parser.add_argument("--vectors", type=int, default=64, help="input vectors per kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/results/ir_drop/error")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    resistances = [float(r) for r in args.resistances.split(",") if r]
    if min(sizes) < 1 or min(resistances) <= 0 or args.vectors < 1:
        parser.error("sizes and vectors must be positive, resistances > 0")
    title = (f"IR drop: fast models against the exact nodal solve (n x n differential pair, "
             f"Gaussian weights, g_max {G_MAX_US:g} µS, V_read 0.2 V, {args.vectors} input "
             f"vectors per kind, seed {args.seed})")
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)

    def write(results: dict) -> None:
        stem.with_suffix(".md").write_text(table(results, title) + "\n")
        stem.with_suffix(".json").write_text(json.dumps(
            {"results": results, "args": vars(args)}, indent=1))
    results = measure(sizes, resistances, args.vectors, args.seed, progress=write)
    print(table(results, title))


if __name__ == "__main__":
    main()
