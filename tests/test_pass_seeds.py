"""The noise seeds of a layer's forward passes (TileArray.pass_seeds): one per row block and
pass, all distinct, 64-bit, the same sequence after every start of the same read and another
one for another read or programming (a read gives the same numbers whatever ran before it)."""
from __future__ import annotations

import numpy as np

from aimcsim.nn.tile_array import TileArray
from aimcsim.tiles import AnalogConfig


def tiles() -> TileArray:
    """A (64, 600, 1, 1) layer: 600 rows make two row blocks of 512 x 512 tiles."""
    array = TileArray((64, 600, 1, 1), 1, AnalogConfig())
    assert len(array.blocks) == 2
    return array


def sequence(array: TileArray, passes: int) -> list[int]:
    return [seed for _ in range(passes) for seed in array.pass_seeds()]


def test_seeds_are_distinct_64_bit_and_repeat_for_the_same_read():
    array = tiles()
    array.program_key = (3, 4)
    array.start_read((1, 7))
    first = sequence(array, 500)
    assert len(set(first)) == len(first) == 1000
    assert all(0 <= s < 2 ** 64 for s in first)
    bits = np.array(first, dtype=np.uint64)
    ones = np.unpackbits(bits.view(np.uint8)).mean()
    assert abs(ones - 0.5) < 4 * 0.5 / np.sqrt(64 * bits.size)  # no stuck bits
    array.start_read((1, 7))
    assert sequence(array, 500) == first


def test_another_read_or_programming_gives_other_seeds():
    array = tiles()
    array.program_key = (3, 4)
    array.start_read((1, 7))
    first = set(sequence(array, 50))
    array.start_read((1, 8))
    assert first.isdisjoint(sequence(array, 50))
    array.program_key = (3, 5)
    array.start_read((1, 7))
    assert first.isdisjoint(sequence(array, 50))
