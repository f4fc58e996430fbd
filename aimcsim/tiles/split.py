"""Balanced splitting of a matrix dimension into tile-sized blocks."""
from __future__ import annotations

import math


def balanced_blocks(size: int, max_block: int, unit: int = 1) -> list[tuple[int, int]]:
    """Split ``size`` items (counted in units of ``unit`` cells each, e.g. the k*k rows of one
    input channel of a convolution) into the fewest blocks of at most ``max_block`` cells,
    as equal as possible. Returns [(start, stop), ...] in items.

    Raises ValueError when a single item does not fit (unit > max_block).
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if unit > max_block:
        raise ValueError(f"one item needs {unit} rows but a tile has only {max_block}")
    per_block = max_block // unit
    n_blocks = math.ceil(size / per_block)
    base, extra = divmod(size, n_blocks)
    blocks, start = [], 0
    for i in range(n_blocks):
        stop = start + base + (1 if i < extra else 0)
        blocks.append((start, stop))
        start = stop
    return blocks
