"""Tile mapping: the layers' tiling rule (whole input channels per tile:
ceil(C_in / floor(rows / k k)) x ceil(C_out / cols)), utilisation, the no-fit error and the
multi-chip split, replicas, grouped layers sharing a tile."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aimcsim.models import build_model, count_analog_weights
from aimcsim.system import (HardwareConfig, MappingError, build_stages, extract_graph,
                            map_layers)


def stages_of(model, shape=(3, 32, 32)):
    return build_stages(extract_graph(model, input_shape=shape))


@settings(max_examples=25, deadline=None)
@given(cin=st.integers(1, 600), cout=st.integers(1, 600), k=st.sampled_from([1, 3, 5]),
       rows=st.sampled_from([64, 256, 512]), cols=st.sampled_from([32, 256]))
def test_conv_tile_count_rule(cin, cout, k, rows, cols):
    model = nn.Sequential(nn.Conv2d(cin, cout, k, bias=False))
    stages = stages_of(model, (cin, k, k))
    hw = HardwareConfig(tile_rows=rows, tile_cols=cols)
    layer = map_layers(stages, hw, chips=None)["0"]
    assert (layer.row_tiles, layer.col_tiles) == (math.ceil(cin / (rows // (k * k))),
                                                  math.ceil(cout / cols))
    assert layer.tiles == layer.row_tiles * layer.col_tiles
    assert layer.utilisation == pytest.approx(cin * k * k * cout / (layer.tiles * rows * cols))
    assert 0 < layer.utilisation <= 1


def test_resnet32_fits_one_chip_with_60_tiles():
    model = build_model("resnet32")
    mapping = map_layers(stages_of(model))
    assert mapping.tiles_used == 60 and mapping.chips_used == 1 and mapping.spare_tiles == 4
    assert mapping.used_cells == count_analog_weights(model)
    assert mapping.utilisation == pytest.approx(mapping.used_cells / (60 * 65536))
    first = mapping.layers[0]
    assert (first.name, first.rows, first.cols, first.tiles) == ("stem.0", 27, 16, 1)
    assert [m.first_tile for m in mapping.layers] == [
        sum(m.tiles for m in mapping.layers[:i]) for i in range(len(mapping.layers))]


def test_no_fit_error_and_multi_chip_split():
    stages = stages_of(build_model("resnet32"))
    small = HardwareConfig(tiles_per_chip=16)
    with pytest.raises(MappingError, match=r"needs 60 tiles .* chips=4"):
        map_layers(stages, small)
    split = map_layers(stages, small, chips=None)
    assert split.chips_used == 4 and split.tiles_used == 60
    assert all(m.chips == tuple(range(m.first_tile // 16, (m.first_tile + m.tiles - 1) // 16
                                      + 1)) for m in split.layers)
    assert any(len(m.chips) == 2 for m in split.layers)  # a layer straddles two chips
    assert map_layers(stages, small, chips=5).tiles_available == 80
    with pytest.raises(ValueError, match="chips"):
        map_layers(stages, small, chips=0)


def test_replicas_and_grouped_layers():
    model = nn.Sequential(nn.Conv2d(8, 16, 3, groups=4), nn.Flatten(), nn.Linear(16 * 36, 700))
    stages = stages_of(model, (8, 8, 8))
    mapping = map_layers(stages, replicas={"0": 3})
    conv, fc = mapping["0"], mapping["2"]
    # the four 18 x 4 groups share one tile (block-diagonal), three copies
    assert (conv.groups, conv.rows, conv.cols, conv.groups_per_tile, conv.tiles) == \
        (4, 18, 4, 4, 3)
    assert conv.used_cells == 3 * 16 * 2 * 9
    assert (fc.row_tiles, fc.col_tiles, fc.tiles) == (3, 3, 9)
    big = map_layers(stages_of(nn.Sequential(nn.Conv2d(600, 8, 3, groups=2)), (600, 3, 3)))
    assert (big["0"].groups_per_tile, big["0"].row_tiles, big["0"].tiles) == (1, 11, 22)
    with pytest.raises(MappingError, match="one item needs 49 rows"):
        map_layers(stages_of(nn.Sequential(nn.Conv2d(2, 2, 7)), (2, 7, 7)),
                   HardwareConfig(tile_rows=32))
    with pytest.raises(ValueError, match="replicas"):
        map_layers(stages, replicas={"nope": 2})
    with pytest.raises(ValueError, match="replicas"):
        map_layers(stages, replicas={"0": 0})
