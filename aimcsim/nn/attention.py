"""Multi-head attention whose four projections run on crossbar tiles.

:class:`AnalogMultiheadAttention` is the analog counterpart of ``nn.MultiheadAttention`` with
the same forward signature and return values. The query, key, value and output projections are
:class:`~aimcsim.nn.layers.AnalogLinear` layers (``q_proj``, ``k_proj``, ``v_proj``,
``out_proj``); the attention arithmetic between them is digital (torch), per head h with
d = embed_dim / num_heads:

    Q = q_proj(query), K = k_proj(key), V = v_proj(value)              (analog MVMs)
    A_h = softmax(Q_h K_h^T / sqrt(d) + M)                              (digital)
    out = out_proj(concat_h(dropout(A_h) V_h))                          (analog MVM)

M is the additive mask: ``attn_mask`` and ``key_padding_mask`` (boolean True -> -inf, float
masks added as they are). ``add_bias_kv`` appends the learnt rows ``bias_k`` / ``bias_v`` to
K and V, ``add_zero_attn`` a row of zeros to each head's K and V (both digital).

The module is deliberately not an ``nn.MultiheadAttention`` and has no packed in-projection
(``in_proj_weight`` is None, ``_qkv_same_embed_dim`` False), so torch's fused transformer
kernels, which would read the float weights directly, are never taken
(see :func:`disable_fused_transformer_paths`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aimcsim.nn.composite import analog_linear, load_linear_
from aimcsim.nn.layers import HardwareAwareConfig
from aimcsim.tiles.config import AnalogConfig


def additive_mask(mask: torch.Tensor | None, dtype: torch.dtype,
                  name: str) -> torch.Tensor | None:
    """A boolean mask (True = not allowed to attend) as 0 / -inf, a float mask as it is."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf"))
    if not torch.is_floating_point(mask):
        raise ValueError(f"{name} must be a bool or float tensor, got {mask.dtype}")
    return mask.to(dtype)


class AnalogMultiheadAttention(nn.Module):
    """``nn.MultiheadAttention`` with analog projections (module docstring has the equations).

    Args:
        embed_dim, num_heads, dropout, bias, add_bias_kv, add_zero_attn, kdim, vdim,
        batch_first: as in ``nn.MultiheadAttention``.
        config: the AnalogConfig of the four projections (each gets its own copy).
        hwa: hardware-aware training settings of the projections.
    """

    analog_kind = "attention"

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 config: AnalogConfig | None = None, hwa: HardwareAwareConfig | None = None,
                 device=None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be a positive multiple of "
                             f"num_heads ({num_heads})")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self.dropout, self.batch_first, self.add_zero_attn = dropout, batch_first, add_zero_attn
        self.q_proj = analog_linear(embed_dim, embed_dim, bias, config, hwa, device)
        self.k_proj = analog_linear(self.kdim, embed_dim, bias, config, hwa, device)
        self.v_proj = analog_linear(self.vdim, embed_dim, bias, config, hwa, device)
        self.out_proj = analog_linear(embed_dim, embed_dim, bias, config, hwa, device)
        if add_bias_kv:
            self.bias_k = nn.Parameter(torch.zeros(1, 1, embed_dim, device=device))
            self.bias_v = nn.Parameter(torch.zeros(1, 1, embed_dim, device=device))
        else:
            self.bias_k = self.bias_v = None
        # read by torch's transformer layers when they pick a fused kernel: none applies here
        self._qkv_same_embed_dim = False
        self.in_proj_weight = None
        self.in_proj_bias = None

    @classmethod
    def from_digital(cls, module: nn.MultiheadAttention, config: AnalogConfig | None = None,
                     hwa: HardwareAwareConfig | None = None) -> "AnalogMultiheadAttention":
        """The analog twin of ``module``: a packed ``in_proj_weight`` is split into the three
        (embed_dim x embed_dim) blocks of q, k and v, with their slices of ``in_proj_bias``."""
        weight = module.out_proj.weight
        layer = cls(module.embed_dim, module.num_heads, module.dropout,
                    module.in_proj_bias is not None, module.bias_k is not None,
                    module.add_zero_attn, module.kdim, module.vdim, module.batch_first,
                    config, hwa, device=weight.device)
        if module._qkv_same_embed_dim:
            weights = module.in_proj_weight.chunk(3)
        else:
            weights = (module.q_proj_weight, module.k_proj_weight, module.v_proj_weight)
        biases = (module.in_proj_bias.chunk(3) if module.in_proj_bias is not None
                  else (None,) * 3)
        for proj, w, b in zip((layer.q_proj, layer.k_proj, layer.v_proj), weights, biases):
            load_linear_(proj, w, b)
        load_linear_(layer.out_proj, module.out_proj.weight, module.out_proj.bias)
        if module.bias_k is not None:
            with torch.no_grad():
                layer.bias_k.copy_(module.bias_k)
                layer.bias_v.copy_(module.bias_v)
        layer.train(module.training)
        return layer

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, kdim={self.kdim}, "
                f"vdim={self.vdim}, dropout={self.dropout}, batch_first={self.batch_first}")

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Same arguments and returns as ``nn.MultiheadAttention.forward``: ``(attn_output,
        attn_weights)``, the weights None unless ``need_weights``. ``is_causal`` is a hint
        only: the causal mask must be given as ``attn_mask``, as in torch."""
        if query.dim() not in (2, 3) or key.dim() != query.dim() or value.dim() != query.dim():
            raise ValueError(f"query, key and value must all be 2-D (unbatched) or 3-D, got "
                             f"{query.dim()}-D, {key.dim()}-D and {value.dim()}-D")
        if is_causal and attn_mask is None:
            raise ValueError("is_causal=True needs the causal mask as attn_mask")
        batched = query.dim() == 3
        query, key, value = (self._batch_major(t, batched) for t in (query, key, value))
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(f"key {tuple(key.shape)} and value {tuple(value.shape)} must "
                             f"match in batch and length, and the batch of query "
                             f"{tuple(query.shape)}")
        if key_padding_mask is not None and not batched:
            key_padding_mask = key_padding_mask.unsqueeze(0)
        n, tgt = query.shape[:2]
        q = self.q_proj(query)
        k, v = self.k_proj(key), self.v_proj(value)
        mask = self._mask(attn_mask, key_padding_mask, n, tgt, key.shape[1], q.dtype)
        if self.bias_k is not None:
            k = torch.cat([k, self.bias_k.expand(n, 1, -1).to(k.dtype)], dim=1)
            v = torch.cat([v, self.bias_v.expand(n, 1, -1).to(v.dtype)], dim=1)
            mask = None if mask is None else F.pad(mask, (0, 1))
        q, k, v = (self._split_heads(t) for t in (q, k, v))
        if self.add_zero_attn:
            k = torch.cat([k, k.new_zeros(k.shape[:2] + (1, self.head_dim))], dim=2)
            v = torch.cat([v, v.new_zeros(v.shape[:2] + (1, self.head_dim))], dim=2)
            mask = None if mask is None else F.pad(mask, (0, 1))
        scores = (q * math.sqrt(1.0 / self.head_dim)) @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores + mask
        weights = torch.softmax(scores, dim=-1)
        mixed = F.dropout(weights, self.dropout, training=True) \
            if self.training and self.dropout > 0 else weights
        heads = (mixed @ v).transpose(1, 2).reshape(n, tgt, self.embed_dim)
        out = self.out_proj(heads)
        out = out.transpose(0, 1) if batched and not self.batch_first else out
        if not batched:
            out = out.squeeze(0)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(dim=1)
        return out, (weights if batched else weights.squeeze(0))

    def _batch_major(self, t: torch.Tensor, batched: bool) -> torch.Tensor:
        """(L, N, E) or, batch_first, (N, L, E) or unbatched (L, E) -> (N, L, E)."""
        if not batched:
            return t.unsqueeze(0)
        return t if self.batch_first else t.transpose(0, 1)

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        """(N, L, E) -> (N, heads, L, head_dim)."""
        return t.reshape(t.shape[0], t.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def _mask(self, attn_mask, key_padding_mask, n: int, tgt: int, src: int,
              dtype: torch.dtype) -> torch.Tensor | None:
        """The additive mask M, broadcastable to the scores (N, heads, L, S)."""
        mask = None
        attn_mask = additive_mask(attn_mask, dtype, "attn_mask")
        if attn_mask is not None:
            if attn_mask.shape == (tgt, src):
                mask = attn_mask
            elif attn_mask.shape == (n * self.num_heads, tgt, src):
                mask = attn_mask.reshape(n, self.num_heads, tgt, src)
            else:
                raise ValueError(f"attn_mask must be ({tgt}, {src}) or "
                                 f"({n * self.num_heads}, {tgt}, {src}), got "
                                 f"{tuple(attn_mask.shape)}")
        padding = additive_mask(key_padding_mask, dtype, "key_padding_mask")
        if padding is not None:
            if padding.shape != (n, src):
                raise ValueError(f"key_padding_mask must be ({n}, {src}), got "
                                 f"{tuple(padding.shape)}")
            padding = padding.reshape(n, 1, 1, src)
            mask = padding if mask is None else mask + padding
        return mask


def disable_fused_transformer_paths(model: nn.Module) -> None:
    """Make every ``nn.TransformerEncoder`` holding analog attention take torch's plain path.

    ``TransformerEncoderLayer`` already falls back (the analog attention has no
    ``in_proj_bias`` and ``_qkv_same_embed_dim`` is False), but ``TransformerEncoder`` decides
    on nested tensors from a flag set at construction; nested inputs would bypass the tiles.
    """
    for module in model.modules():
        if isinstance(module, nn.TransformerEncoder) and any(
                isinstance(m, AnalogMultiheadAttention) for m in module.modules()):
            module.use_nested_tensor = False


def pack_attention_state(state: dict[str, torch.Tensor],
                         digital_keys: set[str] | dict) -> dict[str, torch.Tensor]:
    """A state dict of a converted model with its attention in torch's layout: the inverse of
    :meth:`AnalogMultiheadAttention.from_digital` on the keys. For every analog attention
    prefix ``P`` (``P.q_proj.weight`` present) whose digital twin expects ``P.in_proj_weight``,
    the q, k and v weights are stacked into it (and their biases into ``P.in_proj_bias``);
    where it expects separate ``P.q_proj_weight`` (``kdim``/``vdim`` differ from
    ``embed_dim``), they are renamed. ``out_proj`` and ``bias_k``/``bias_v`` keep their keys.
    Other entries pass unchanged, so a state dict without analog attention is returned as is.
    """
    out = dict(state)
    tail = "q_proj.weight"
    # the prefix with its trailing dot ("" for an attention module at the top)
    prefixes = [k[: -len(tail)] for k in state
                if k == tail or k.endswith("." + tail)]
    for p in prefixes:
        names = ("q_proj", "k_proj", "v_proj")
        if f"{p}in_proj_weight" in digital_keys:
            out[f"{p}in_proj_weight"] = torch.cat([state[f"{p}{n}.weight"] for n in names])
        elif f"{p}q_proj_weight" in digital_keys:
            for n in names:
                out[f"{p}{n}_weight"] = state[f"{p}{n}.weight"]
        else:
            continue
        if f"{p}in_proj_bias" in digital_keys:
            out[f"{p}in_proj_bias"] = torch.cat([state[f"{p}{n}.bias"] for n in names])
        for n in names:
            for suffix in ("weight", "bias", "_extra_state"):
                out.pop(f"{p}{n}.{suffix}", None)
    return out
