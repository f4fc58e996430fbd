"""One tiling rule (aimcsim.tiles.plan): the analog layers, hardware-aware training,
TiledMatrix and the system model count the same tiles on every layer of the zoo."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import aimcsim
from aimcsim.models import build_model
from aimcsim.models.zoo import SPECS, VIT_SPECS
from aimcsim.nn import HardwareAwareConfig, convert_to_analog
from aimcsim.nn.training_weights import gaussian_blocks
from aimcsim.system import HardwareConfig, build_stages, extract_graph, map_layers
from aimcsim.tiles import AnalogConfig, TiledMatrix
from aimcsim.tiles.plan import plan_tiles, tile_counts


@pytest.mark.parametrize("name", sorted(SPECS) + sorted(VIT_SPECS))
@pytest.mark.parametrize("rows, cols", [(256, 256), (100, 24)])
def test_layers_training_and_system_model_agree_on_every_zoo_layer(name, rows, cols):
    torch.manual_seed(0)
    config = AnalogConfig().replace(**{"mapping.rows": rows, "mapping.cols": cols})
    analog = convert_to_analog(build_model(name), config).eval()
    layers = dict(aimcsim.analog_layers(analog))
    mapping = map_layers(build_stages(extract_graph(analog)),
                         HardwareConfig(tile_rows=rows, tile_cols=cols), chips=None)
    assert {m.name for m in mapping.layers} == set(layers)
    hwa = HardwareAwareConfig(weight_noise=0.0)
    for layer_name, layer in layers.items():
        plan = layer.analog.tiles.blocks
        assert mapping[layer_name].tiles == layer.n_tiles == tile_counts(plan).tiles, layer_name
        blocks = gaussian_blocks(layer.analog.tiles, layer.weight.detach(), hwa)
        assert [b.weight.shape[0] for b in blocks] == [
            block.out_channels[1] - block.out_channels[0] for block in plan]
        if layer.weight.dim() == 2:
            matrix = TiledMatrix(layer.weight.detach().numpy().T, config)
            assert len(matrix.all_tiles) == layer.n_tiles


def test_the_rule_keeps_input_channels_whole():
    """113 input channels of a 3x3 kernel on 512-row tiles: at most 56 channels (504 rows) per
    tile, so three balanced tiles, where dividing 1017 rows by 512 would count two."""
    blocks = plan_tiles(113, 64, 9, 1, 512, 512)
    assert [b.in_channels for b in blocks] == [(0, 38), (38, 76), (76, 113)]
    counts = tile_counts(blocks)
    assert (counts.tiles, counts.row_tiles, counts.col_tiles) == (3, 3, 1)
    grouped = tile_counts(plan_tiles(32, 64, 9, 8, 256, 256))
    assert (grouped.tiles, grouped.groups_per_tile) == (2, 4)  # 7 groups fit: 4 + 4
    rng = np.random.default_rng(0)
    for _ in range(200):
        cin, cout = (int(v) for v in rng.integers(1, 300, 2))
        area = int(rng.choice([1, 9, 25]))
        rows = int(rng.choice([25, 64, 256, 512]))
        blocks = plan_tiles(cin, cout, area, 1, rows, 128)
        assert all((b.in_channels[1] - b.in_channels[0]) * area <= rows for b in blocks)
        assert len(blocks) == -(-cin // (rows // area))
