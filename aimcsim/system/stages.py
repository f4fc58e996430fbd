"""Layers of the system model: the layer graph with element-wise digital ops fused away.

A *stage* (one row of the F4 pipeline, one producer of activation buffers in the F3 memory plan)
is anchored at one node that does real work: an analog ``conv`` or ``fc``, a ``pool``, a
residual ``add`` (kind ``res``), a ``cat``, or any other node with several inputs. Element-wise
single-input ops (batch-norm, activations, reshapes, slicing, padding, unknown unary ops) run
in the digital periphery of a neighbouring stage:

* backward: into their producer's stage when they are its only consumer
  (conv -> bn -> relu is one stage);
* forward: otherwise into their single consumer's stage (the strided slice and channel padding
  of an option-A ResNet shortcut run inside the residual add that reads them);
* a chain that can go neither way becomes a stage of kind ``other``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from aimcsim.system.graph import GraphNode, LayerGraph, Shape
from aimcsim.system.ops import FUSABLE_OPS, MatmulInfo

STAGE_KINDS = ("conv", "fc", "pool", "res", "cat", "other")
_KIND_OF_OP = {"conv": "conv", "fc": "fc", "pool": "pool", "add": "res", "cat": "cat"}


@dataclass(frozen=True)
class StageTensor:
    """An activation tensor crossing a stage boundary.

    Attributes:
        name: the node that produces it (a graph input name for network inputs).
        producer: the producing stage, or None for a network input.
        shape: shape with the batch dimension of the sample.
        numel: elements per sample.
    """

    name: str
    producer: str | None
    shape: Shape
    numel: int


@dataclass
class Stage:
    """One layer of the system model (sizes per sample).

    Attributes:
        index: position in execution order.
        name: name of the anchor node.
        kind: ``conv``, ``fc``, ``pool``, ``res``, ``cat`` or ``other``.
        nodes: fused graph nodes, in execution order.
        inputs: tensors read from other stages or the network input.
        outputs: tensors this stage produces that other stages or the network output read.
        matmul: the analog matrix (None for digital stages).
        mvms: MVMs per sample on the analog matrix.
        digital_ops: digital operations per sample of the fused nodes (bias, bn, activations,
            pooling, adds); partial sums across tiles are added by the mapping.
        params: (name, shape, is_matrix) of the stage's parameters in execution order.
    """

    index: int
    name: str
    kind: str
    nodes: list[str]
    inputs: list[StageTensor] = field(default_factory=list)
    outputs: list[StageTensor] = field(default_factory=list)
    matmul: MatmulInfo | None = None
    mvms: int = 0
    digital_ops: int = 0
    params: list[tuple[str, Shape, bool]] = field(default_factory=list)

    @property
    def is_analog(self) -> bool:
        return self.matmul is not None

    @property
    def macs(self) -> int:
        return self.mvms * self.matmul.weights if self.matmul else 0

    @property
    def input_numel(self) -> int:
        return sum(t.numel for t in self.inputs)

    @property
    def output_numel(self) -> int:
        return sum(t.numel for t in self.outputs)

    @property
    def producers(self) -> list[str]:
        """Names of the stages this one waits for (network inputs excluded)."""
        seen: list[str] = []
        for t in self.inputs:
            if t.producer is not None and t.producer not in seen:
                seen.append(t.producer)
        return seen


@dataclass
class StageGraph:
    """The stages of a model in execution order, and the network's input/output tensors."""

    stages: list[Stage]
    inputs: list[StageTensor]
    outputs: list[StageTensor]

    def __post_init__(self) -> None:
        self._index = {s.name: s for s in self.stages}

    def __iter__(self):
        return iter(self.stages)

    def __len__(self) -> int:
        return len(self.stages)

    def __getitem__(self, name: str) -> Stage:
        return self._index[name]

    def analog(self) -> list[Stage]:
        return [s for s in self.stages if s.is_analog]

    def consumers(self, name: str) -> list[str]:
        return [s.name for s in self.stages if name in s.producers]


class _Groups:
    """Union-find over node names."""

    def __init__(self, names: list[str]) -> None:
        self.parent = {n: n for n in names}

    def find(self, n: str) -> str:
        while self.parent[n] != n:
            self.parent[n] = self.parent[self.parent[n]]
            n = self.parent[n]
        return n

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def _is_anchor(node: GraphNode) -> bool:
    return node.op not in FUSABLE_OPS or len(node.inputs) != 1


def build_stages(graph: LayerGraph) -> StageGraph:
    """Fuse the layer graph into stages (see the module docstring)."""
    order = [n for n in graph.nodes if n.op != "input"]
    position = {n.name: i for i, n in enumerate(order)}
    inputs = set(graph.inputs)
    outputs = set(graph.outputs)
    groups = _Groups([n.name for n in order])
    for node in order:  # backward fusion into the producer
        if not _is_anchor(node):
            producer = node.inputs[0]
            if producer not in inputs and len(graph[producer].consumers) == 1 \
                    and producer not in outputs:
                groups.union(node.name, producer)

    def members() -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for n in order:
            out.setdefault(groups.find(n.name), []).append(n.name)
        return out

    # forward fusion of anchorless groups into their single consumer, downstream first
    anchorless = [m for m in members().values() if not any(_is_anchor(graph[n]) for n in m)]
    for group in sorted(anchorless, key=lambda m: -position[m[-1]]):
        external = {c for n in group for c in graph[n].consumers
                    if groups.find(c) != groups.find(n)}
        if len(external) == 1 and not any(n in outputs for n in group):
            groups.union(group[0], external.pop())

    stage_of: dict[str, str] = {}
    stages: list[Stage] = []
    def anchor_of(member: list[str]) -> str:
        anchors = [n for n in member if _is_anchor(graph[n])]
        return anchors[0] if anchors else member[-1]

    # ordered by anchor: forward-fused nodes run early but feed only their own stage, so this
    # order is topological
    for member in sorted(members().values(), key=lambda m: position[anchor_of(m)]):
        anchors = [n for n in member if _is_anchor(graph[n])]
        anchor = graph[anchor_of(member)]
        kind = _KIND_OF_OP.get(anchor.op, "other") if anchors else "other"
        stage = Stage(index=len(stages), name=anchor.name, kind=kind, nodes=member)
        for n in member:
            stage_of[n] = stage.name
        stages.append(stage)

    def tensor(name: str) -> StageTensor:
        node = graph[name]
        return StageTensor(name=name, producer=stage_of.get(name), shape=node.output_shape,
                      numel=node.output_numel)

    for stage in stages:
        for n in stage.nodes:
            node = graph[n]
            for p in node.inputs:
                if stage_of.get(p) != stage.name and all(t.name != p for t in stage.inputs):
                    stage.inputs.append(tensor(p))
            leaves = any(stage_of.get(c) != stage.name for c in node.consumers)
            if (leaves or n in outputs) and all(t.name != n for t in stage.outputs):
                stage.outputs.append(tensor(n))
            if node.is_analog:
                stage.matmul, stage.mvms = node.matmul, node.mvms
            stage.digital_ops += node.digital_ops
            for pname, shape in node.params:
                is_matrix = node.is_analog and pname == "weight"
                stage.params.append((f"{n}.{pname}", shape, is_matrix))
    inputs = [StageTensor(n, None, graph[n].output_shape, graph[n].output_numel)
              for n in graph.inputs]
    return StageGraph(stages=stages, inputs=inputs, outputs=[tensor(n) for n in graph.outputs])


def stage_rows(stages: StageGraph) -> list[dict]:
    """One table row per stage."""
    return [{"index": s.index, "name": s.name, "kind": s.kind, "fused": len(s.nodes),
             "inputs": " ".join(t.producer or t.name for t in s.inputs),
             "out_shape": "x".join(map(str, s.outputs[0].shape)) if s.outputs else "",
             "params": sum(math.prod(p[1]) for p in s.params), "mvms": s.mvms,
             "macs": s.macs, "digital_ops": s.digital_ops} for s in stages]
