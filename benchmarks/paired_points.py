"""Paired difference of two drift studies measured with the same seeds (B minus A).

    python benchmarks/paired_points.py A_FOLDER B_FOLDER [--out table.md]

Both folders hold a ``points.jsonl`` of ``python -m aimcsim drift`` with the same model, weights
and seed, differing in one setting (for example ``gemm_precision``): programming r of A and of
B hold the same devices and read noise, so their accuracies are paired. Per series, GDC
setting and time: the mean accuracy of each, and the mean difference B - A with its standard
error over the programmings (std / sqrt(n)). Prints a markdown table (and writes it with
``--out``).
"""
from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path


def read_points(folder: str) -> dict[tuple, float]:
    points = {}
    for line in Path(folder, "points.jsonl").read_text().splitlines():
        if line.strip():
            p = json.loads(line)
            points[(p["series"], p["gdc"], p["t"], p["rep"])] = 100.0 * p["accuracy"]
    return points


def paired_table(a_folder: str, b_folder: str) -> str:
    a, b = read_points(a_folder), read_points(b_folder)
    groups: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for key in sorted(set(a) & set(b)):
        groups[key[:3]].append((a[key], b[key]))
    lines = [f"B = `{b_folder}`, A = `{a_folder}`; accuracy in %, mean over the paired "
             "programmings; B - A: mean ± standard error of the paired differences.", "",
             "| series | GDC | t (s) | programmings | A | B | B - A |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for (series, gdc, t), pairs in groups.items():
        n = len(pairs)
        diffs = [y - x for x, y in pairs]
        mean = sum(diffs) / n
        se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1) / n) if n > 1 else \
            float("nan")
        lines.append(f"| {series} | {'on' if gdc else 'off'} | {t:g} | {n} | "
                     f"{sum(x for x, _ in pairs) / n:.2f} | {sum(y for _, y in pairs) / n:.2f} "
                     f"| {mean:+.2f} ± {se:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    table = paired_table(args.a, args.b)
    print(table)
    if args.out:
        Path(args.out).write_text(table)


if __name__ == "__main__":
    main()
