"""A small vision transformer for CIFAR-sized images, built from torch's own encoder layers.

A network is a :class:`ViTSpec`:

- **Patch embedding**: a ``patch_size x patch_size`` convolution with stride ``patch_size``
  (32 x 32 images, patch 4: an 8 x 8 grid of 64 tokens of width ``dim``).
- **Class token** (``pool="cls"``, a learnt vector prepended to the tokens, read out at the
  end) or global average pooling of the tokens (``pool="mean"``).
- **Learnt position embeddings** (:class:`PositionEmbedding`), one per token, added to the
  tokens. The class token is a zero token whose position embedding is learnt: a separate
  class-token vector plus its position embedding would be one learnt vector written twice.
- **Encoder**: ``depth`` pre-norm blocks ``nn.TransformerEncoderLayer(dim, heads,
  mlp_ratio * dim, batch_first=True, norm_first=True, activation="gelu")``:
  x + MHA(LN(x)), then x + MLP(LN(x)) with MLP = Linear - GELU - Linear.
- **Head**: a final LayerNorm and a Linear layer ``dim -> num_classes``.

After :func:`aimcsim.convert_to_analog` the patch embedding, the q / k / v / out projections
of every attention (split from the packed ``in_proj_weight``), both MLP layers of every block
and the head run on tiles; the layer norms, GELU, softmax scores, the class token, the
position embeddings and the residual additions stay digital.

The zoo's ``vit`` (dim 192, depth 6, 3 heads, MLP ratio 2, class token) has 1,806,346
parameters, 1,780,608 of them weights of the patch embedding, the attention projections and the
linear layers (analog after conversion).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

POOLS = ("cls", "mean")


@dataclass(frozen=True)
class ViTSpec:
    """Architecture of a vision transformer (sizes in pixels / channels)."""

    image_size: int = 32
    patch_size: int = 4
    dim: int = 192
    depth: int = 6
    heads: int = 3
    mlp_ratio: float = 2.0
    pool: str = "cls"
    dropout: float = 0.0
    num_classes: int = 10
    in_channels: int = 3
    name: str = "vit"

    def __post_init__(self) -> None:
        if self.patch_size < 1 or self.image_size < 1 or self.image_size % self.patch_size:
            raise ValueError(f"image_size ({self.image_size}) must be a positive multiple of "
                             f"patch_size ({self.patch_size})")
        if self.heads < 1 or self.dim < 1 or self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be a positive multiple of heads "
                             f"({self.heads})")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")
        if self.mlp_hidden < 1:
            raise ValueError(f"mlp_ratio * dim must be >= 1, got {self.mlp_ratio} * {self.dim}")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {self.pool!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size

    @property
    def tokens(self) -> int:
        """Sequence length in the encoder: the patches, plus the class token."""
        return self.grid ** 2 + (1 if self.pool == "cls" else 0)

    @property
    def mlp_hidden(self) -> int:
        """Width of the MLP's hidden layer."""
        return int(round(self.mlp_ratio * self.dim))


class PositionEmbedding(nn.Module):
    """Learnt position embeddings: ``tokens + bias`` with one learnt vector per position.

    The parameter is named ``bias`` because it is one, per token: it is added, never
    multiplied, so :func:`aimcsim.convert_to_analog` and :func:`aimcsim.summary` count it
    as digital arithmetic, not as a matrix left off the tiles.
    """

    def __init__(self, tokens: int, dim: int, std: float = 0.02) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.empty(tokens, dim))
        nn.init.trunc_normal_(self.bias, std=std)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tuple(tokens.shape[-2:]) != tuple(self.bias.shape):
            raise ValueError(f"expected (..., {self.bias.shape[0]}, {self.bias.shape[1]}) "
                             f"tokens, got {tuple(tokens.shape)}")
        return tokens + self.bias.to(tokens.dtype)


class VisionTransformer(nn.Module):
    """A ViT built from a :class:`ViTSpec`. Input: (N, C, image_size, image_size) images."""

    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        self.spec = spec
        self.patch_embed = nn.Conv2d(spec.in_channels, spec.dim, spec.patch_size,
                                     stride=spec.patch_size)
        self.pos_embed = PositionEmbedding(spec.tokens, spec.dim)
        layer = nn.TransformerEncoderLayer(spec.dim, spec.heads, spec.mlp_hidden, spec.dropout,
                                           activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, spec.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(spec.dim)
        self.head = nn.Linear(spec.dim, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        if x.dim() != 4 or tuple(x.shape[1:]) != (spec.in_channels, spec.image_size,
                                                   spec.image_size):
            raise ValueError(f"{spec.name}: expected images (N, {spec.in_channels}, "
                             f"{spec.image_size}, {spec.image_size}) (the position embeddings "
                             f"fix the size), got {tuple(x.shape)}")
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (N, grid^2, dim)
        if spec.pool == "cls":  # the class token: its position embedding alone
            tokens = torch.cat([tokens.new_zeros(tokens.shape[0], 1, spec.dim), tokens], dim=1)
        tokens = self.norm(self.encoder(self.pos_embed(tokens)))
        pooled = tokens[:, 0] if spec.pool == "cls" else tokens.mean(dim=1)
        return self.head(pooled)
