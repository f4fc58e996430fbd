"""Which modules of a model hold matrix weights, and how many multiply-accumulates (MACs) each
does in one forward pass: the ground truth of :func:`aimcsim.summary` and of the warning of
:func:`aimcsim.convert_to_analog` about layers left digital.

A module "holds matrix weights" when one of its own (not inherited) parameters has two or more
dimensions and is not a bias: Linear, convolutions, Embedding, RNNs, attention's packed
projection, custom modules with an ``nn.Parameter`` matrix. Norm layers (1-D scale and shift)
do not.

MACs of one forward, counted by forward hooks (summed over calls, so a layer applied at every
step of a recurrent network counts every step), with N the tokens / positions processed:

- Linear: N x in x out; Bilinear: N x in1 x in2 x out;
- convolution: output elements x (C_in / groups) x prod(kernel); transposed convolution:
  input elements x (C_out / groups) x prod(kernel);
- attention (analog or digital) scores and weighted sum: 2 x batch x L x S x embed_dim;
  a digital ``nn.MultiheadAttention`` also its projections (the output projection is booked
  on its ``out_proj`` row);
- digital RNN / LSTM / GRU: tokens x sum over layers and directions of gates x H x (in + H);
- Embedding: 0 (a lookup).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.utils.rnn import PackedSequence

from aimcsim.nn.attention import AnalogMultiheadAttention

_RNN_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def matrix_weights(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The module's own parameters with >= 2 dimensions that are not biases."""
    return [(name, p) for name, p in module.named_parameters(recurse=False)
            if p.dim() >= 2 and not name.startswith("bias")]


def is_attention(module: nn.Module) -> bool:
    return isinstance(module, (nn.MultiheadAttention, AnalogMultiheadAttention))


def _arg(args: tuple, kwargs: dict, index: int, name: str):
    """Positional argument ``index`` of a forward call, or keyword ``name``."""
    value = args[index] if len(args) > index else kwargs.get(name)
    return value.data if isinstance(value, PackedSequence) else value


def _length_batch(t: torch.Tensor, batch_first: bool) -> tuple[int, int]:
    """(sequence length, batch) of an attention input: (L, N, E), (N, L, E) or (L, E)."""
    if t.dim() == 2:
        return t.shape[0], 1
    return (t.shape[1], t.shape[0]) if batch_first else (t.shape[0], t.shape[1])


def _attention_macs(module: nn.Module, args, kwargs) -> dict[str, int]:
    """Scores and weighted sum; for torch's own module also the projections it runs on the
    packed weights (its ``out_proj`` module is never called, so its MACs are booked here)."""
    batch_first = getattr(module, "batch_first", False)
    tgt, n = _length_batch(_arg(args, kwargs, 0, "query"), batch_first)
    src, _ = _length_batch(_arg(args, kwargs, 1, "key"), batch_first)
    e = module.embed_dim
    macs = {"": 2 * n * tgt * src * e}
    if isinstance(module, nn.MultiheadAttention):
        macs[""] += n * (tgt * e * e + src * (module.kdim + module.vdim) * e)
        macs["out_proj"] = n * tgt * e * e
    return macs


def _rnn_macs(module: nn.RNNBase, args, kwargs) -> dict[str, int]:
    tokens = math.prod(_arg(args, kwargs, 0, "input").shape[:-1])
    gates = _RNN_GATES.get(module.mode, 1)
    h, dirs = module.hidden_size, 2 if module.bidirectional else 1
    r = module.proj_size or h
    per_token = 0
    for layer in range(module.num_layers):
        width = module.input_size if layer == 0 else r * dirs
        per_token += dirs * (gates * h * (width + r) + (h * r if module.proj_size else 0))
    return {"": tokens * per_token}


def _module_macs(module: nn.Module, args, kwargs, out) -> dict[str, int] | None:
    """MACs of one call of ``module`` keyed by relative sub-module name ("" = itself), or None
    if unknown."""
    if is_attention(module):
        return _attention_macs(module, args, kwargs)
    if isinstance(module, nn.RNNBase):
        return _rnn_macs(module, args, kwargs)
    x = _arg(args, kwargs, 0, "input")
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return {"": 0}
    if not isinstance(out, torch.Tensor) or not isinstance(x, torch.Tensor):
        return None
    if isinstance(module, nn.Linear):
        return {"": out.numel() * module.in_features}
    if isinstance(module, nn.Bilinear):
        return {"": out.numel() * module.in1_features * module.in2_features}
    if isinstance(module, _ConvNd):
        kernel = math.prod(module.kernel_size)
        if module.transposed:
            return {"": x.numel() * module.out_channels // module.groups * kernel}
        return {"": out.numel() * module.in_channels // module.groups * kernel}
    return None


def count_macs(model: nn.Module, names: list[str], run: Callable[[], object]
               ) -> dict[str, int | None]:
    """MACs per module name (for ``names``) during ``run()``, from forward hooks; None for a
    module whose MACs are unknown, 0 for one that did not run."""
    totals: dict[str, int | None] = {name: 0 for name in names}
    modules = dict(model.named_modules())

    def hook_for(name: str):
        def hook(module, args, kwargs, out):
            macs = _module_macs(module, args, kwargs, out)
            if macs is None:
                totals[name] = None
                return
            for sub, value in macs.items():
                key = f"{name}.{sub}" if sub and name else (sub or name)
                if key in totals and totals[key] is not None:
                    totals[key] += int(value)
        return hook
    handles = [modules[name].register_forward_hook(hook_for(name), with_kwargs=True)
               for name in names if name in modules]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return totals


def macs_per_token(module: nn.Module) -> int | None:
    """MACs per token without an example input: known for Linear (in x out) only."""
    if isinstance(module, nn.Linear):
        return module.in_features * module.out_features
    return None
