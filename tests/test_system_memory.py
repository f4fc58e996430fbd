"""Memory plan (F3): weights up from 0 in execution order, activations down from the top,
reuse after the last use; property tests over random DAGs."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimcsim.models import build_model
from aimcsim.system import (ActivationSpec, GraphNode, LayerGraph, WeightSpec, build_stages,
                            extract_graph, f3_network, memory_specs, plan_memory)
from aimcsim.system.ops import MatmulInfo


def check_plan(plan, weights, activations):
    """Independent check of every invariant of a plan."""
    assert [b.name for b in plan.weights] == [w.name for w in weights]
    cursor = 0
    for b, spec in zip(plan.weights, weights):  # contiguous, in order, from address 0
        assert b.offset == cursor and b.offset % plan.alignment == 0 and b.size == spec.size
        cursor += b.padded
    assert plan.weights_end == cursor
    acts = plan.activations
    floor = plan.capacity - plan.activation_peak
    assert floor >= plan.weights_end  # the regions never collide
    for a in acts:
        assert floor <= a.offset and a.offset + a.padded <= plan.capacity
        assert a.offset % plan.alignment == 0 and a.padded >= a.size
    for i, a in enumerate(acts):
        for b in acts[i + 1:]:
            if a.first_step <= b.last_step and b.first_step <= a.last_step and a.padded and \
                    b.padded:
                assert a.offset + a.padded <= b.offset or b.offset + b.padded <= a.offset, \
                    (a, b)
    if any(a.padded for a in acts):
        assert min(a.offset for a in acts if a.padded) == floor  # the peak is reached
    live_max = max((sum(a.padded for a in acts if a.first_step <= s <= a.last_step)
                    for s in range(plan.steps)), default=0)
    assert plan.activation_peak >= live_max == plan.max_live_bytes
    plan.validate()


def test_f3_plan_by_hand():
    stages = build_stages(extract_graph(f3_network(), input_shape=(16, 16, 16)))
    weights, acts = memory_specs(stages)
    assert [(w.label, w.size) for w in weights] == [("filter0", 2304), ("bias0", 64),
                                                     ("filter1", 2304), ("bias1", 64)]
    assert [(a.label, a.size, a.first_step, a.last_step) for a in acts] == [
        ("tensor0", 4096, 0, 1), ("tensor1", 4096, 1, 3), ("tensor2", 4096, 2, 3),
        ("tensor3", 4096, 3, 3)]
    plan = plan_memory(weights, acts, alignment=64)
    assert [b.offset for b in plan.weights] == [0, 2304, 2368, 4672]
    assert plan.weights_end == 4736 and plan.activation_peak == 12288
    assert plan.capacity == 17024 == plan.peak_bytes
    by = {b.label: b.offset for b in plan.activations}
    assert by == {"tensor0": 12928, "tensor1": 8832, "tensor2": 12928, "tensor3": 4736}
    check_plan(plan, weights, acts)
    no_reuse = plan_memory(weights, acts, strategy="no_reuse")
    assert no_reuse.activation_peak == 16384 == no_reuse.no_reuse_bytes
    check_plan(no_reuse, weights, acts)


def test_first_fit_and_best_fit_differ():
    acts = [ActivationSpec("A", 128, 0, 1), ActivationSpec("B", 64, 0, 5),
            ActivationSpec("C", 64, 0, 1), ActivationSpec("D", 192, 0, 5),
            ActivationSpec("E", 64, 2, 3)]
    first = plan_memory([], acts, strategy="first_fit", alignment=64)
    best = plan_memory([], acts, strategy="best_fit", alignment=64)
    depth = {p.strategy: {b.name: p.capacity - b.offset - b.padded for b in p.activations}
             for p in (first, best)}
    assert depth["first_fit"]["E"] == 0 and depth["best_fit"]["E"] == 192
    for plan in (first, best):
        check_plan(plan, [], acts)


def test_resnet32_plan_reuses_buffers():
    stages = build_stages(extract_graph(build_model("resnet32")))
    weights, acts = memory_specs(stages, batch=4)
    plan = plan_memory(weights, acts)
    check_plan(plan, weights, acts)
    assert plan.weights[0].label == "filter0" and plan.weights[-2].label == "filter31"
    assert plan.weights[-1].label == "bias31"
    assert plan.activation_peak < 0.15 * plan.no_reuse_bytes
    assert plan.activation_peak <= 1.1 * plan.max_live_bytes


def test_capacity_and_bad_arguments():
    weights = [WeightSpec("w", 100)]
    acts = [ActivationSpec("a", 64, 0, 0)]
    plan = plan_memory(weights, acts, alignment=64, capacity=1024)
    assert plan.capacity == 1024 and plan.activations[0].offset == 960
    check_plan(plan, weights, acts)
    with pytest.raises(ValueError, match="capacity"):
        plan_memory(weights, acts, alignment=64, capacity=128)
    with pytest.raises(ValueError, match="capacity"):
        plan_memory(weights, acts, alignment=64, capacity=1000)
    with pytest.raises(ValueError, match="strategy"):
        plan_memory(weights, acts, strategy="worst_fit")
    with pytest.raises(ValueError, match="alignment"):
        plan_memory(weights, acts, alignment=0)
    with pytest.raises(ValueError, match="last_step"):
        plan_memory([], [ActivationSpec("a", 1, 3, 2)])
    with pytest.raises(ValueError, match="size"):
        plan_memory([WeightSpec("w", -1)], [])
    with pytest.raises(ValueError, match="unique"):
        plan_memory([WeightSpec("a", 1)], [ActivationSpec("a", 1, 0, 0)])
    with pytest.raises(ValueError, match="batch"):
        memory_specs(build_stages(extract_graph(f3_network(), input_shape=(16, 4, 4))),
                     batch=0)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), strategy=st.sampled_from(["first_fit", "best_fit", "no_reuse"]),
       alignment=st.sampled_from([1, 8, 64]))
def test_random_lifetimes_never_overlap(data, strategy, alignment):
    n = data.draw(st.integers(0, 25))
    acts = []
    for i in range(n):
        first = data.draw(st.integers(0, 12))
        last = first + data.draw(st.integers(0, 6))
        acts.append(ActivationSpec(f"t{i}", data.draw(st.integers(0, 5000)), first, last))
    weights = [WeightSpec(f"w{i}", data.draw(st.integers(0, 3000)))
               for i in range(data.draw(st.integers(0, 6)))]
    plan = plan_memory(weights, acts, strategy=strategy, alignment=alignment)
    check_plan(plan, weights, acts)


def random_graph(data) -> LayerGraph:
    """A random DAG of analog and digital nodes with random tensor sizes."""
    nodes = [GraphNode("x", "input", "x", [], [], [(1, data.draw(st.integers(1, 500)))])]
    for i in range(data.draw(st.integers(1, 14))):
        names = [n.name for n in nodes]
        arity = data.draw(st.integers(1, min(2, len(names))))
        inputs = data.draw(st.lists(st.sampled_from(names), min_size=arity, max_size=arity,
                                    unique=True))
        op = "add" if arity == 2 else data.draw(st.sampled_from(
            ["conv", "fc", "act", "bn", "pool", "reshape", "other"]))
        size = data.draw(st.integers(1, 500))
        shapes = [next(n for n in nodes if n.name == p).output_shape for p in inputs]
        matmul = MatmulInfo(rows=shapes[0][1], cols=size) if op in ("conv", "fc") else None
        params = [("weight", (size, shapes[0][1]))] if matmul else []
        nodes.append(GraphNode(f"n{i}", op, op, inputs, shapes, [(1, size)], matmul=matmul,
                               params=params))
    for node in nodes:
        node.consumers = [m.name for m in nodes if node.name in m.inputs]
    sinks = [n.name for n in nodes[1:] if not n.consumers]
    return LayerGraph(nodes=nodes, inputs=["x"], outputs=sinks)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), strategy=st.sampled_from(["first_fit", "best_fit"]),
       batch=st.integers(1, 3))
def test_random_dags_plan_end_to_end(data, strategy, batch):
    graph = random_graph(data)
    stages = build_stages(graph)
    position = {s.name: s.index for s in stages}
    assert all(position[p] < s.index for s in stages for p in s.producers)  # topological
    assert sorted(n for s in stages for n in s.nodes) == sorted(n.name for n in graph.nodes[1:])
    weights, acts = memory_specs(stages, batch=batch)
    plan = plan_memory(weights, acts, strategy=strategy, alignment=16)
    check_plan(plan, weights, acts)
    # a tensor stays live until its last reader has run
    readers = {}
    for s in stages:
        for t in s.inputs:
            readers.setdefault(t.name, []).append(s.index + 1)
    for a in plan.activations:
        assert all(a.first_step <= r <= a.last_step for r in readers.get(a.name, []))
