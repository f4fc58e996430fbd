"""The aimcsim side of the aihwkit comparisons in benchmarks/ (aihwkit itself is not needed):
the matched configurations and the weight transfer of ``peer_swap.py``."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import aimcsim

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from peer_accuracy import ours_configs  # noqa: E402
from peer_swap import ours_dump, ours_load  # noqa: E402


def small_network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 6 * 6, 5)).eval()


def test_matched_configs_differ_from_each_other_only_where_documented():
    configs = {k.removeprefix("aimcsim "): v.to_dict() for k, v in ours_configs().items()}
    matched, read_reference, independent, idle_off, default = (
        configs[k] for k in ("matched", "matched-read-reference", "matched-idle-independent",
                             "matched-idle-off", "default"))
    assert matched["device"]["config"]["noise_idle_devices"] is True
    assert matched["mapping"]["pair_drift"] == "net"
    assert matched["periphery"]["bound_management"] == "none"
    assert matched["drift_compensation"]["calibration"] == "one_hot"
    assert matched["drift_compensation"]["reference"] == "programmed"
    # each series leaves out one more of matched's settings: put them back
    for config, left_out in ((read_reference, 1), (independent, 2), (idle_off, 3)):
        config["drift_compensation"]["reference"] = "programmed"
        if left_out >= 2:
            config["mapping"]["pair_drift"] = "net"
        if left_out >= 3:
            config["device"]["config"]["noise_idle_devices"] = True
        assert config == matched
    assert default["device"]["config"]["noise_idle_devices"] is False
    assert default["mapping"]["pair_drift"] == "independent"
    assert default["drift_compensation"]["reference"] == "read"
    assert default["drift_compensation"]["calibration"] == "dense"


def test_loading_a_networks_own_weights_keeps_its_outputs_bit_for_bit():
    config = ours_configs()["aimcsim matched"]
    model = aimcsim.program(aimcsim.convert_to_analog(small_network(), config), seed=3)
    x = torch.rand(4, 3, 6, 6)
    aimcsim.set_time(model, 86400, seed=1)
    dump = ours_dump(model)
    with torch.no_grad():
        before = model(x)
    aimcsim.set_time(model, 86400, seed=1)
    ours_load(model, dump)
    with torch.no_grad():
        after = model(x)
    assert torch.equal(before, after)


def test_loaded_weights_and_alpha_are_the_ones_used():
    config = ours_configs()["aimcsim matched"]
    model = aimcsim.program(aimcsim.convert_to_analog(small_network(), config), seed=3)
    aimcsim.set_time(model, 3600, seed=0)
    dump = ours_dump(model)
    doubled = {k: (v * 2 if k.endswith(":alpha") else v) for k, v in dump.items()}
    ours_load(model, doubled)
    reread = ours_dump(model)
    for k, v in dump.items():
        np.testing.assert_array_equal(reread[k], v * 2 if k.endswith(":alpha") else v)


def test_a_tile_that_does_not_match_is_refused():
    config = ours_configs()["aimcsim matched"]
    model = aimcsim.program(aimcsim.convert_to_analog(small_network(), config), seed=3)
    dump = ours_dump(model)
    name = next(k for k in dump if k.endswith(":w"))
    with pytest.raises(ValueError, match="correlation"):
        ours_load(model, {**dump, name: -dump[name]})
    with pytest.raises(ValueError, match="shape"):
        ours_load(model, {**dump, name: dump[name][:, :-1]})
