"""Shared timing helper of the benchmark scripts (imported as ``timing`` from this folder)."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` after one warm-up call, in seconds."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int,
                        clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Median time of each of ``fns`` over ``repeats`` rounds, one call of every function
    per round (after one warm-up call each), so that a machine's slow spells hit all of them
    alike. Seconds of ``clock``: wall time by default; ``time.process_time`` counts only this
    process's CPU time, which on a machine loaded by other jobs measures a one-thread run's
    own work (with more threads it adds up the threads, spinning included)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def ratio_table(rows: list[tuple[str, float, float | None]]) -> str:
    """A markdown table of (variant, seconds, ratio to FP32 or None) rows, times in ms."""
    lines = ["| variant | time (ms) | x FP32 |", "|---|---:|---:|"]
    for name, seconds, ratio in rows:
        lines.append(f"| {name} | {1e3 * seconds:.1f} | "
                     f"{'' if ratio is None else f'{ratio:.2f}'} |")
    return "\n".join(lines)
