"""Energy per inference: the breakdown by hand for one layer, input modes, TOPS/W."""
from __future__ import annotations

import pytest
from torch import nn

from aimcsim.models import build_model
from aimcsim.system import (HardwareConfig, build_stages, energy_per_inference, extract_graph,
                            layer_energy, map_layers)


def single(model, shape, hw):
    stages = build_stages(extract_graph(model, input_shape=shape))
    return stages, map_layers(stages, hw)


def test_one_linear_layer_by_hand():
    hw = HardwareConfig()
    stages, mapping = single(nn.Sequential(nn.Linear(300, 10, bias=False)), (300,), hw)
    e = layer_energy(stages.stages[0], mapping)
    assert e.array_j == pytest.approx(300 * 10 * hw.energy_per_mac_j)
    assert e.adc_j == pytest.approx(2 * 10 * 1.56e-12)      # two row tiles convert 10 columns
    assert e.dac_j == pytest.approx(300 * 0.1e-12)           # one column tile drives 300 rows
    assert e.digital_j == pytest.approx(10 * 0.1e-12)        # partial sums of two row tiles
    assert e.movement_j == pytest.approx((300 + 10 + 10) * 1e-12)
    assert e.ops == 6000
    assert e.total_j == pytest.approx(e.adc_j + e.dac_j + e.array_j + e.movement_j
                                      + e.digital_j)
    assert sum(e.shares().values()) == pytest.approx(1.0)

    serial = HardwareConfig(input_mode="bit_serial")
    stages, mapping = single(nn.Sequential(nn.Linear(300, 10, bias=False)), (300,), serial)
    assert layer_energy(stages.stages[0], mapping).adc_j == pytest.approx(8 * e.adc_j)
    four = HardwareConfig(read_phases=4)
    stages, mapping = single(nn.Sequential(nn.Linear(300, 10, bias=False)), (300,), four)
    e4 = layer_energy(stages.stages[0], mapping)
    assert e4.array_j == pytest.approx(4 * e.array_j) and e4.adc_j == pytest.approx(4 * e.adc_j)


def test_a_full_tile_reaches_the_core_efficiency():
    hw = HardwareConfig()
    stages, mapping = single(nn.Sequential(nn.Linear(256, 256, bias=False)), (256,), hw)
    total, _ = energy_per_inference(stages, mapping)
    assert total.core_tops_per_w == pytest.approx(hw.core_tops_per_w) == pytest.approx(10.0)
    assert total.tops_per_w < total.core_tops_per_w  # data movement and digital cost extra


def test_resnet32_energy_sums_its_layers():
    hw = HardwareConfig()
    stages = build_stages(extract_graph(build_model("resnet32")))
    mapping = map_layers(stages, hw)
    total, per_layer = energy_per_inference(stages, mapping)
    assert total.ops == 2 * 68_862_592
    assert total.total_j == pytest.approx(sum(e.total_j for e in per_layer.values()))
    assert total.array_j > total.adc_j > total.digital_j > 0
    assert 5 < total.tops_per_w < total.core_tops_per_w < 10
    # replicas copy weights but do not change the work per inference
    replicated = map_layers(stages, hw, replicas={"stem.0": 4})
    assert energy_per_inference(stages, replicated)[0].total_j == pytest.approx(total.total_j)
