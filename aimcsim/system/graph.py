"""The layer graph of a torch model: op types, shapes, parameter sizes, producers, consumers.

:func:`extract_graph` traces the model with ``torch.fx`` (analog layers and torch.nn modules are
leaves) and runs one sample through the traced graph to record shapes. Models fx cannot trace
(data-dependent control flow, unsupported Python) fall back to running the model itself once
with forward hooks on its leaf modules and a ``TorchFunctionMode`` that records the tensor
functions called between modules (residual adds, flatten, slicing...). Producers are then found
by tensor identity.

Analog layers are run through the plain ``nn.Conv*d`` / ``nn.Linear`` forward while shapes
are recorded, so converted models need not be programmed; the model's train/eval flags and
parameters are left as they were. Shapes include the batch dimension of the sample (1).
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import fx, nn
from torch.overrides import TorchFunctionMode

from aimcsim.system.ops import (ANALOG_OPS, MatmulInfo, digital_ops, function_op,
                                is_matmul_layer, matmul_info, module_op)

Shape = tuple[int, ...]
METHODS = ("auto", "fx", "hooks")


@dataclass
class GraphNode:
    """One node of the layer graph (sizes per sample: the batch dimension is excluded).

    Attributes:
        name: unique name (module path for module calls, else function name + counter).
        op: op type (see :mod:`aimcsim.system.ops`).
        target: module path, function or method name.
        inputs: producer node names (tensor inputs only, in argument order).
        input_shapes: shapes of those inputs (batch dimension included).
        output_shapes: shapes of the tensors the node returns (usually one).
        consumers: names of the nodes reading this node's output.
        matmul: matrix of an analog layer (None for digital nodes).
        params: (name, shape) of the parameters the node needs at inference (for batch-norm:
            the folded per-channel ``scale`` and ``shift``).
        module_type: class name of the module, '' for functions.
    """

    name: str
    op: str
    target: str
    inputs: list[str]
    input_shapes: list[Shape]
    output_shapes: list[Shape]
    consumers: list[str] = field(default_factory=list)
    matmul: MatmulInfo | None = None
    params: list[tuple[str, Shape]] = field(default_factory=list)
    module_type: str = ""

    @property
    def output_shape(self) -> Shape:
        return self.output_shapes[0] if self.output_shapes else ()

    @property
    def output_numel(self) -> int:
        """Output elements per sample."""
        return sum(_per_sample(s) for s in self.output_shapes)

    @property
    def input_numels(self) -> list[int]:
        return [_per_sample(s) for s in self.input_shapes]

    @property
    def is_analog(self) -> bool:
        return self.op in ANALOG_OPS and self.matmul is not None

    @property
    def mvms(self) -> int:
        """MVMs per sample: output pixels of a convolution, 1 for a linear layer on a vector
        (more when a linear layer gets a sequence)."""
        if not self.is_analog:
            return 0
        shape = self.output_shape
        if self.op == "conv":
            return math.prod(shape[2:]) if len(shape) > 2 else 1
        return math.prod(shape[1:-1]) if len(shape) > 2 else 1

    @property
    def macs(self) -> int:
        """Multiply-accumulates per sample in the analog array."""
        return self.mvms * self.matmul.weights if self.is_analog else 0

    @property
    def digital_ops(self) -> int:
        """Digital operations per sample (bias adds for analog layers; partial sums across
        tiles depend on the mapping and are counted there)."""
        if self.is_analog:
            return self.output_numel if self.matmul.has_bias else 0
        return digital_ops(self.op, self.input_numels, self.output_numel)

    @property
    def param_count(self) -> int:
        return sum(math.prod(shape) for _, shape in self.params)


def _per_sample(shape: Shape) -> int:
    return math.prod(shape[1:]) if len(shape) > 1 else (shape[0] if shape else 1)


@dataclass
class LayerGraph:
    """Nodes in execution order, with the graph's input and output node names."""

    nodes: list[GraphNode]
    inputs: list[str]
    outputs: list[str]
    method: str = "fx"

    def __post_init__(self) -> None:
        self._index = {n.name: n for n in self.nodes}
        if len(self._index) != len(self.nodes):
            raise ValueError("node names must be unique")

    def __iter__(self) -> Iterator[GraphNode]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, name: str) -> GraphNode:
        return self._index[name]

    def analog_nodes(self) -> list[GraphNode]:
        return [n for n in self.nodes if n.is_analog]

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.op] = counts.get(node.op, 0) + 1
        return counts

    def rows(self) -> list[dict]:
        """One table row per node (for printing / CSV)."""
        return [{"name": n.name, "op": n.op, "target": n.target,
                 "inputs": " ".join(n.inputs), "consumers": " ".join(n.consumers),
                 "in_shapes": " ".join("x".join(map(str, s)) for s in n.input_shapes),
                 "out_shape": "x".join(map(str, n.output_shape)), "params": n.param_count,
                 "macs": n.macs} for n in self.nodes]


# ---------------------------------------------------------------------- shared helpers
def _reference_forward(module: nn.Module):
    for base in (nn.Conv1d, nn.Conv2d, nn.Linear):
        if isinstance(module, base):
            return base.forward.__get__(module)
    return None


@contextmanager
def _plain_model(model: nn.Module):
    """Eval mode, no grad, one thread, and analog layers running their plain torch forward;
    everything restored on exit."""
    flags = {m: m.training for m in model.modules()}
    patched = []
    for module in model.modules():
        if is_matmul_layer(module):
            forward = _reference_forward(module)
            if forward is not None:
                patched.append((module, module.__dict__.get("forward")))
                module.forward = forward
    model.eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one small sample: threading only adds overhead and contention
    try:
        with torch.no_grad():
            yield
    finally:
        torch.set_num_threads(threads)
        for module, previous in patched:
            if previous is None:
                del module.forward
            else:
                module.forward = previous
        for module, training in flags.items():
            module.training = training


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _module_params(module: nn.Module, op: str) -> list[tuple[str, Shape]]:
    if op == "bn" and isinstance(getattr(module, "weight", None), torch.Tensor):
        channels = (int(module.weight.shape[0]),)
        return [("scale", channels), ("shift", channels)]
    if op == "bn" and hasattr(module, "num_features"):
        return [("scale", (int(module.num_features),)), ("shift", (int(module.num_features),))]
    return [(name, tuple(p.shape)) for name, p in module.named_parameters()]


def _module_node(name: str, module: nn.Module, inputs: list[str], input_shapes: list[Shape],
                 outputs: list[torch.Tensor]) -> GraphNode:
    op = module_op(module)
    return GraphNode(name=name, op=op, target=name, inputs=inputs, input_shapes=input_shapes,
                     output_shapes=[tuple(t.shape) for t in outputs],
                     matmul=matmul_info(module) if op in ANALOG_OPS else None,
                     params=_module_params(module, op), module_type=type(module).__name__)


def _function_name(func) -> str:
    if isinstance(func, str):
        return func
    return getattr(func, "__name__", type(func).__name__)


def _finish(nodes: list[GraphNode], inputs: list[str], outputs: list[str],
            method: str) -> LayerGraph:
    index = {n.name: n for n in nodes}
    for node in nodes:
        for producer in node.inputs:
            if node.name not in index[producer].consumers:
                index[producer].consumers.append(node.name)
    return LayerGraph(nodes=nodes, inputs=inputs, outputs=outputs, method=method)


# ---------------------------------------------------------------------- torch.fx
class _LeafTracer(fx.Tracer):
    """Keeps analog layers as leaves. They are found before tracing: while fx traces,
    parameter access returns proxies, which predicates cannot inspect."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.analog = {id(m) for m in model.modules() if is_matmul_layer(m)}

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return id(m) in self.analog or super().is_leaf_module(m, module_qualified_name)


def _fx_graph(model: nn.Module, example: tuple) -> LayerGraph:
    tracer = _LeafTracer(model)
    graph = tracer.trace(model)
    module = fx.GraphModule(tracer.root, graph)
    values: dict[fx.Node, object] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node):
            result = super().run_node(n)
            values[n] = result
            return result

    with _plain_model(model):
        Recorder(module).run(*example)

    nodes: list[GraphNode] = []
    names: dict[fx.Node, str] = {}
    used: dict[str, int] = {}
    inputs: list[str] = []
    outputs: list[str] = []
    for n in graph.nodes:
        out = _tensors(values.get(n))
        if n.op == "output":
            outputs = [names[p] for p in n.all_input_nodes if p in names]
            continue
        if n.op == "get_attr" or not out:
            continue  # constants and non-tensor values (sizes, shapes)
        producers = [p for p in n.all_input_nodes if p in names]
        in_names = [names[p] for p in producers]
        in_shapes = [tuple(_tensors(values[p])[0].shape) for p in producers]
        if n.op == "call_module":
            name = str(n.target)
            used[name] = used.get(name, 0) + 1
            if used[name] > 1:
                name = f"{name}#{used[name]}"
            node = _module_node(name, model.get_submodule(str(n.target)), in_names, in_shapes,
                                out)
        else:
            op = "input" if n.op == "placeholder" else function_op(n.target)
            name = n.name
            node = GraphNode(name=name, op=op, target=_function_name(n.target),
                             inputs=in_names, input_shapes=in_shapes,
                             output_shapes=[tuple(t.shape) for t in out])
            if op == "input":
                inputs.append(name)
        names[n] = node.name
        nodes.append(node)
    return _finish(nodes, inputs, outputs, "fx")


# ---------------------------------------------------------------------- hooks fallback
class _HookRecorder(TorchFunctionMode):
    """Records module calls (via hooks) and the tensor functions called between them."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.depth = 0
        self.busy = False
        self.nodes: list[GraphNode] = []
        self.producer: dict[int, str] = {}
        self.keep: list[torch.Tensor] = []  # keeps ids unique while recording
        self.calls: dict[str, int] = {}
        self.pending: list[tuple[list[str], list[Shape]]] = []

    def _unique(self, name: str) -> str:
        self.calls[name] = self.calls.get(name, 0) + 1
        return name if self.calls[name] == 1 else f"{name}#{self.calls[name]}"

    def _inputs(self, values) -> tuple[list[str], list[Shape]]:
        names, shapes = [], []
        for t in _tensors(values):
            producer = self.producer.get(id(t))
            if producer is not None:
                names.append(producer)
                shapes.append(tuple(t.shape))
        return names, shapes

    def _register(self, node: GraphNode, outputs: list[torch.Tensor]) -> None:
        self.nodes.append(node)
        for t in outputs:
            self.producer[id(t)] = node.name
            self.keep.append(t)

    def add_input(self, name: str, tensor: torch.Tensor) -> None:
        self._register(GraphNode(name=name, op="input", target=name, inputs=[],
                                 input_shapes=[], output_shapes=[tuple(tensor.shape)]), [tensor])

    def pre_hook(self, module, args):
        if self.depth == 0:
            self.busy = True
            self.pending.append(self._inputs(args))
            self.busy = False
        self.depth += 1

    def make_post_hook(self, name: str):
        def post_hook(module, args, output):
            self.depth -= 1
            if self.depth == 0:
                self.busy = True
                in_names, in_shapes = self.pending.pop()
                outs = _tensors(output)
                replaced = None
                if isinstance(output, torch.Tensor) and module_op(module) == "reshape" and any(
                        output is t for t in _tensors(args)):
                    # identity-like module: give its output its own tensor object (a view), so
                    # consumers read it from this node as in the fx graph
                    replaced = output.view_as(output)
                    outs = [replaced]
                if outs:
                    node = _module_node(self._unique(name), module, in_names, in_shapes, outs)
                    self._register(node, outs)
                self.busy = False
                return replaced
        return post_hook

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if self.depth == 0 and not self.busy:
            self.busy = True
            try:
                outs = _tensors(result)
                in_names, in_shapes = self._inputs((args, kwargs or {}))
                if outs and in_names:
                    op = function_op(func)
                    base = _function_name(func).strip("_") or "fn"
                    node = GraphNode(name=self._unique(base), op=op, target=_function_name(func),
                                     inputs=in_names, input_shapes=in_shapes,
                                     output_shapes=[tuple(t.shape) for t in outs])
                    self._register(node, outs)
            finally:
                self.busy = False
        return result


def _leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules recorded as one node: analog layers and modules without children (nothing
    below an analog layer)."""
    leaves, covered = [], set()
    for name, module in model.named_modules():
        if any(name.startswith(prefix + ".") for prefix in covered):
            continue
        if is_matmul_layer(module):
            covered.add(name)
            leaves.append((name, module))
        elif not any(True for _ in module.children()) and name:
            leaves.append((name, module))
    return leaves


def _hook_graph(model: nn.Module, example: tuple) -> LayerGraph:
    recorder = _HookRecorder(model)
    handles = []
    try:
        for name, module in _leaf_modules(model):
            handles.append(module.register_forward_pre_hook(recorder.pre_hook))
            handles.append(module.register_forward_hook(recorder.make_post_hook(name)))
        inputs = []
        for i, tensor in enumerate(example):
            name = "x" if len(example) == 1 else f"x{i}"
            recorder.add_input(name, tensor)
            inputs.append(name)
        with _plain_model(model), recorder:
            result = model(*example)
        outputs = []
        for t in _tensors(result):
            producer = recorder.producer.get(id(t))
            if producer is not None and producer not in outputs:
                outputs.append(producer)
    finally:
        for handle in handles:
            handle.remove()
    return _finish(recorder.nodes, inputs, outputs, "hooks")


# ---------------------------------------------------------------------- entry point
def extract_graph(model: nn.Module, example: torch.Tensor | Sequence[torch.Tensor] | None = None,
                  *, input_shape: Shape = (3, 32, 32), method: str = "auto") -> LayerGraph:
    """The layer graph of ``model`` (digital or converted to analog).

    Args:
        model: any torch module.
        example: sample input(s) with a batch dimension; default: one standard-normal sample of
            ``input_shape`` (seed 0).
        input_shape: per-sample input shape used when ``example`` is None.
        method: ``fx`` (torch.fx symbolic trace), ``hooks`` (run the model with hooks) or
            ``auto`` (fx, falling back to hooks when fx fails).
    Returns:
        a :class:`LayerGraph` with nodes in execution order.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if example is None:
        if not input_shape or any(int(d) < 1 for d in input_shape):
            raise ValueError(f"input_shape must be positive sizes, got {input_shape!r}")
        generator = torch.Generator().manual_seed(0)
        example = (torch.randn((1, *input_shape), generator=generator),)
    elif isinstance(example, torch.Tensor):
        example = (example,)
    else:
        example = tuple(example)
    if method == "hooks":
        return _hook_graph(model, example)
    try:
        return _fx_graph(model, example)
    except Exception:  # noqa: BLE001 - any fx failure means: use the fallback
        if method == "fx":
            raise
        return _hook_graph(model, example)
