"""Layer graph extraction (torch.fx and the hook fallback) and the fusion into stages."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from aimcsim.models import build_model
from aimcsim.system import (build_stages, extract_graph, f3_network, f4_network,
                            is_matmul_layer, register_matmul_predicate)
from aimcsim.system.networks import F4_LAYER_KINDS
from aimcsim.system.ops import MATMUL_PREDICATES, function_op, matmul_info


@pytest.fixture(scope="module")
def resnet32():
    torch.manual_seed(0)
    return build_model("resnet32")


def stage_signature(stages, digital_ops=True):
    index = {s.name: s.index for s in stages}
    return [(s.kind, s.mvms, s.matmul, s.digital_ops if digital_ops else None,
             tuple(index[p] for p in s.producers), s.input_numel, s.output_numel)
            for s in stages]


def test_resnet32_graph(resnet32):
    graph = extract_graph(resnet32)
    assert graph.method == "fx"
    counts = graph.op_counts()
    assert counts["conv"] == 31 and counts["fc"] == 1 and counts["add"] == 15
    assert counts["bn"] == 31 and counts["pool"] == 1
    assert sum(n.macs for n in graph) == 68_862_592  # ResNet-32: 69M MACs
    stem = graph["stem.0"]
    assert stem.inputs == ["x"] and stem.output_shape == (1, 16, 32, 32)
    assert stem.matmul.rows == 27 and stem.matmul.cols == 16 and stem.mvms == 1024
    assert stem.consumers == ["stem.1"]
    assert graph["fc"].output_shape == (1, 10) and graph.outputs == ["fc"]
    assert sum(n.param_count for n in graph if n.is_analog) == sum(
        m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
        for m in resnet32.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_hook_fallback_gives_the_same_stages_as_fx(resnet32):
    fx_stages = build_stages(extract_graph(resnet32, method="fx"))
    hooks = extract_graph(resnet32, method="hooks")
    hook_stages = build_stages(hooks)
    assert hooks.method == "hooks"
    assert stage_signature(fx_stages, False) == stage_signature(hook_stages, False)
    # fx traces into the option-A shortcut (slice + pad: no arithmetic); the hooks see one
    # unknown module ("other": one op per element). Every other stage costs the same.
    for a, b in zip(fx_stages, hook_stages):
        if not any(hooks[n].op == "other" for n in b.nodes):
            assert a.digital_ops == b.digital_ops
    kinds = [s.kind for s in fx_stages]
    assert kinds == ["conv"] + ["conv", "conv", "res"] * 15 + ["pool", "fc"]


def test_converted_analog_model_gives_the_same_stages():
    from aimcsim.nn import convert_to_analog
    torch.manual_seed(0)
    model = build_model("f1net")
    analog = convert_to_analog(model)
    assert all(is_matmul_layer(m) for m in analog.modules()
               if hasattr(m, "analog_kind"))
    digital = build_stages(extract_graph(model))
    converted = build_stages(extract_graph(analog))  # unprogrammed: plain forward for shapes
    assert stage_signature(digital) == stage_signature(converted)
    assert build_stages(extract_graph(analog, method="hooks")).stages[0].matmul == \
        digital.stages[0].matmul


class Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = self.conv(x)
        if y.sum() > -1e9:
            y = y + torch.relu(y)
        return self.fc(y.mean(dim=(2, 3)))


def test_untraceable_model_falls_back_to_hooks():
    model = Untraceable()
    with pytest.raises(Exception):
        extract_graph(model, method="fx")
    graph = extract_graph(model, input_shape=(3, 8, 8))
    assert graph.method == "hooks"
    ops = [n.op for n in graph]
    assert ops[:2] == ["input", "conv"] and "add" in ops and ops[-1] == "fc"
    add = next(n for n in graph if n.op == "add")
    assert set(add.inputs) == {"conv", next(n.name for n in graph if n.op == "act")}
    assert graph["fc"].inputs and graph.outputs == ["fc"]


def test_extraction_leaves_the_model_untouched(resnet32):
    model = build_model("resnet20").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    extract_graph(model, method="fx")
    extract_graph(model, method="hooks")
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any("forward" in m.__dict__ for m in model.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


class Wrapped(nn.Module):
    """A layer that is not an nn.Conv2d but declares ``analog_kind`` (as aimcsim.nn may)."""

    analog_kind = "conv2d"

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 3, 3, 3))

    def forward(self, x):
        return nn.functional.conv2d(x, self.weight, padding=1)


class Odd(nn.Module):
    """A matmul layer the default predicates do not know."""

    def __init__(self):
        super().__init__()
        self.matrix = nn.Parameter(torch.randn(5, 7))

    def forward(self, x):
        return x @ self.matrix.t()


def test_predicates_recognise_wrappers_and_are_extensible():
    assert is_matmul_layer(Wrapped()) and is_matmul_layer(nn.Conv1d(2, 3, 1))
    assert not is_matmul_layer(nn.BatchNorm2d(3)) and not is_matmul_layer(Odd())
    graph = extract_graph(nn.Sequential(Wrapped(), nn.ReLU()), input_shape=(3, 8, 8))
    node = graph["0"]
    assert node.op == "conv" and node.matmul.rows == 27 and node.mvms == 64

    def odd_predicate(module):
        return isinstance(module, Odd)
    try:
        register_matmul_predicate(odd_predicate)
        assert is_matmul_layer(Odd())
    finally:
        MATMUL_PREDICATES.remove(odd_predicate)
    with pytest.raises(ValueError, match="predicate"):
        register_matmul_predicate(3)


def test_grouped_conv_and_function_ops():
    info = matmul_info(nn.Conv2d(8, 16, 3, groups=4))
    assert (info.rows, info.cols, info.groups, info.weights) == (18, 4, 4, 16 * 2 * 9)
    assert function_op("relu") == "act" and function_op(torch.cat) == "cat"
    assert function_op(torch.Tensor.__add__) == "add" and function_op(print) == "other"


def test_f3_and_f4_networks():
    f3 = build_stages(extract_graph(f3_network(), input_shape=(16, 16, 16)))
    assert [s.kind for s in f3] == ["conv", "conv", "res"]
    assert f3["add"].producers == ["conv0", "conv1"]
    f4 = build_stages(extract_graph(f4_network()))
    assert tuple(s.kind for s in f4) == F4_LAYER_KINDS and len(f4) == 28
    res7 = f4.stages[7]
    assert [f4[p].index for p in res7.producers] == [5, 6]  # pool5 output + conv6 output


def test_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        extract_graph(nn.Linear(2, 2), method="trace")
    with pytest.raises(ValueError, match="model"):
        extract_graph(lambda x: x)
    with pytest.raises(ValueError, match="input_shape"):
        extract_graph(nn.Linear(2, 2), input_shape=(0,))
