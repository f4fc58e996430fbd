"""What a node of a torch model does, for the system model: which modules are analog
(crossbar) layers, the op type of every other module or function, and its digital work.

Analog layers are recognised by predicates (:data:`MATMUL_PREDICATES`), not by importing
``aimcsim.nn``: a module is a matmul layer if it is an ``nn.Conv1d`` / ``nn.Conv2d`` /
``nn.Linear`` (the analog layers of ``aimcsim.nn`` subclass them) or if it has an
``analog_kind`` attribute and a ``weight`` of a conv or linear shape. Add a predicate with
:func:`register_matmul_predicate` for layers that wrap a matrix differently.

Op types: ``conv``, ``fc`` (analog); ``pool``, ``add`` (residual add), ``cat``, ``bn``
(normalisation), ``act`` (activation), ``reshape`` (flatten/view/identity/dropout), ``slice``,
``pad``, ``other`` (digital); ``input``, ``output`` (graph boundary).
"""
from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ANALOG_OPS = ("conv", "fc")
#: digital ops applied element by element to one tensor: fused into a neighbouring layer
FUSABLE_OPS = ("bn", "act", "reshape", "slice", "pad", "other")


def _is_torch_matmul(module: nn.Module) -> bool:
    return isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear))


def _weight(module: nn.Module):
    """The module's ``weight`` tensor, read from its registries first (while torch.fx traces,
    attribute access returns proxies)."""
    weight = module._parameters.get("weight") if hasattr(module, "_parameters") else None
    if weight is None and hasattr(module, "_buffers"):
        weight = module._buffers.get("weight")
    return weight if weight is not None else getattr(module, "weight", None)


def _has_analog_weight(module: nn.Module) -> bool:
    weight = _weight(module)
    return (hasattr(module, "analog_kind") and isinstance(weight, torch.Tensor)
            and weight.dim() in (2, 3, 4))


#: a module is an analog (matmul) layer if any of these returns True
MATMUL_PREDICATES: list[Callable[[nn.Module], bool]] = [_is_torch_matmul, _has_analog_weight]


def register_matmul_predicate(predicate: Callable[[nn.Module], bool]) -> None:
    """Recognise more modules as analog matmul layers (they need a ``weight`` of shape
    (out, in) or (out, in / groups, *kernel))."""
    if not callable(predicate):
        raise ValueError(f"predicate must be callable, got {predicate!r}")
    if predicate not in MATMUL_PREDICATES:
        MATMUL_PREDICATES.append(predicate)


def is_matmul_layer(module: nn.Module) -> bool:
    """True for modules whose weight goes onto crossbar tiles (conv or linear)."""
    return any(predicate(module) for predicate in MATMUL_PREDICATES)


@dataclass(frozen=True)
class MatmulInfo:
    """The matrix of one analog layer.

    Attributes:
        rows: matrix rows per group = inputs of one MVM (C_in / groups x kernel area).
        cols: matrix columns per group = outputs of one MVM (C_out / groups).
        groups: independent matrices (grouped convolution), each mapped separately.
        kernel: spatial kernel size (() for linear layers).
        has_bias: the layer adds a (digital) bias.
    """

    rows: int
    cols: int
    groups: int = 1
    kernel: tuple[int, ...] = ()
    has_bias: bool = False

    @property
    def weights(self) -> int:
        """Weights of the layer (cells it needs on tiles)."""
        return self.rows * self.cols * self.groups


def matmul_info(module: nn.Module) -> MatmulInfo:
    """Rows, columns and groups of an analog layer's weight matrix."""
    weight = _weight(module)
    if not isinstance(weight, torch.Tensor) or weight.dim() < 2:
        raise ValueError(f"{type(module).__name__} has no conv/linear weight")
    groups = int(getattr(module, "groups", 1) or 1)
    kernel = tuple(int(k) for k in weight.shape[2:])
    rows = int(weight.shape[1]) * (math.prod(kernel) if kernel else 1)
    out = int(weight.shape[0])
    if out % groups:
        raise ValueError(f"{type(module).__name__}: {out} outputs not divisible by "
                         f"groups={groups}")
    bias = getattr(module, "bias", None)
    return MatmulInfo(rows=rows, cols=out // groups, groups=groups, kernel=kernel,
                      has_bias=isinstance(bias, torch.Tensor))


def matmul_kind(module: nn.Module) -> str:
    """``conv`` for weights with a kernel, ``fc`` for 2-D weights."""
    return "fc" if _weight(module).dim() == 2 else "conv"


_MODULE_OPS: tuple[tuple[tuple[type, ...], str], ...] = (
    ((nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm,
      nn.modules.instancenorm._InstanceNorm), "bn"),
    ((nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
      nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softmax, nn.LogSoftmax, nn.Mish), "act"),
    ((nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
      nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd), "pool"),
    ((nn.Flatten, nn.Unflatten, nn.Identity, nn.modules.dropout._DropoutNd), "reshape"),
    ((nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d, nn.ReflectionPad2d,
      nn.ReplicationPad2d), "pad"),
)


def module_op(module: nn.Module) -> str:
    """Op type of a module called as one node of the graph."""
    if is_matmul_layer(module):
        return matmul_kind(module)
    for types, op in _MODULE_OPS:
        if isinstance(module, types):
            return op
    return "other"


_FUNCTION_OPS: dict[object, str] = {
    operator.add: "add", operator.iadd: "add", torch.add: "add",
    torch.cat: "cat", torch.concat: "cat", torch.stack: "cat",
    operator.getitem: "slice", torch.narrow: "slice",
    F.pad: "pad",
    torch.flatten: "reshape", torch.reshape: "reshape", torch.squeeze: "reshape",
    torch.unsqueeze: "reshape", F.dropout: "reshape",
    torch.relu: "act", F.relu: "act", F.relu6: "act", F.gelu: "act", F.silu: "act",
    torch.sigmoid: "act", torch.tanh: "act", F.softmax: "act", F.log_softmax: "act",
    F.leaky_relu: "act", F.hardtanh: "act",
    F.avg_pool1d: "pool", F.avg_pool2d: "pool", F.max_pool1d: "pool", F.max_pool2d: "pool",
    F.adaptive_avg_pool1d: "pool", F.adaptive_avg_pool2d: "pool",
    F.adaptive_max_pool2d: "pool",
    F.batch_norm: "bn", F.layer_norm: "bn", F.group_norm: "bn",
}

_METHOD_OPS: dict[str, str] = {
    "add": "add", "add_": "add", "__add__": "add", "__iadd__": "add", "__radd__": "add",
    "relu": "act", "relu_": "act", "sigmoid": "act", "tanh": "act", "softmax": "act",
    "view": "reshape", "reshape": "reshape", "flatten": "reshape", "squeeze": "reshape",
    "unsqueeze": "reshape", "permute": "reshape", "transpose": "reshape",
    "contiguous": "reshape", "__getitem__": "slice", "narrow": "slice",
}


def function_op(func: object) -> str:
    """Op type of a function call (``call_function``) or of a tensor method name
    (``call_method``; pass the name as a string)."""
    if isinstance(func, str):
        return _METHOD_OPS.get(func, "other")
    try:
        if func in _FUNCTION_OPS:
            return _FUNCTION_OPS[func]
    except TypeError:  # unhashable callable
        return "other"
    name = getattr(func, "__name__", "")
    return _METHOD_OPS.get(name, "other")


def digital_ops(op: str, input_numels: list[int], output_numel: int) -> int:
    """Digital operations one sample of a (non-analog) node costs.

    Model: ``bn`` 2 per output element (scale and shift), ``act`` 1, ``add`` one per output
    element and extra input, ``cat``/``reshape``/``slice``/``pad`` 0 (data layout only),
    ``pool`` one per input element (accumulate or compare; +1 per output for averaging is
    neglected), ``other`` 1 per output element.
    """
    if op == "bn":
        return 2 * output_numel
    if op == "add":
        return output_numel * max(1, len(input_numels) - 1)
    if op == "pool":
        return sum(input_numels)
    if op in ("act", "other"):
        return output_numel
    return 0
