r"""A small Vision Transformer (Dosovitskiy et al. 2021) whose attention is softmax or Kolmogorov-Arnold attention.

Images ``(batch, C, H, W)`` are cut into ``patch_size`` squares, each embedded linearly; a class token and learned
position embeddings are added, then ``depth`` pre-norm blocks ``x + attention(LN(x))``, ``x + MLP(LN(x))``, and a
linear head on the class token's final LayerNorm. ``attention`` names the score function
(:data:`kernelnn.registry.ATTENTIONS`: ``softmax``, ``fourier_karat``); ``sharing="universal"`` gives all blocks
one score operator per head (the KArAt paper's ``GnU``), ``"blockwise"`` one per block (``GnB``). The MLP's hidden
layer is any registered neuron (``linear`` by default; ``kan`` makes it a KAN, as in Kolmogorov-Arnold
Transformers).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import nn

from kernelnn.layers.input_checks import check_float_input, check_positive_ints
from kernelnn.layers.self_attention import SelfAttention
from kernelnn.registry import ACTIVATIONS, ATTENTIONS, NEURONS

SHARING = ("blockwise", "universal")


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, n_tokens: int, scores, scores_options: dict, hidden: int,
                 neuron: str, neuron_options: dict, activation: str, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads, n_tokens, scores, scores_options, dropout)
        self.mlp = nn.Sequential(NEURONS.build(neuron, dim, hidden, owner="ViT", argument="neuron", **neuron_options),
                                 ACTIVATIONS.build(activation, owner="ViT", argument="activation"),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Vision Transformer classifier, ``(batch, in_channels, H, W) -> (batch, out_features)``.

    Parameters
    ----------
    in_channels, out_features : int
        Image channels and classes (filled from the data by ``train.py``).
    resolution : (int, int)
        ``(H, W)`` of the images (filled from the data); both multiples of ``patch_size``.
    patch_size : int
    width, depth, heads : int
        Token width, blocks, attention heads (``width`` a multiple of ``heads``).
    mlp_ratio : float
        MLP hidden width over ``width``.
    attention : str
        Score function: ``softmax`` or ``fourier_karat`` (any name in :data:`kernelnn.registry.ATTENTIONS`).
    attention_options : dict, optional
        Its arguments, e.g. ``{grid_size: 3, rank: 12}`` for Fourier-KArAt.
    sharing : str
        ``blockwise`` or ``universal`` (one score operator for all blocks; learnable score functions only).
    neuron, neuron_options, activation
        The MLP's hidden layer type (:data:`kernelnn.registry.NEURONS`) and activation.
    dropout : float

    >>> ViT(1, 10, (8, 8), patch_size=2, width=16, depth=2, heads=2)(torch.randn(3, 1, 8, 8)).shape
    torch.Size([3, 10])
    """

    def __init__(self, in_channels: int, out_features: int, resolution: Sequence[int], patch_size: int = 4,
                 width: int = 64, depth: int = 4, heads: int = 4, mlp_ratio: float = 2.0, attention: str = "softmax",
                 attention_options: dict | None = None, sharing: str = "blockwise", neuron: str = "linear",
                 neuron_options: dict | None = None, activation: str = "gelu", dropout: float = 0.0) -> None:
        super().__init__()
        check_positive_ints("ViT", in_channels=in_channels, out_features=out_features, patch_size=patch_size,
                            width=width, depth=depth, heads=heads)
        if width % heads:
            raise ValueError(f"ViT: width={width} must be a multiple of heads={heads}")

        resolution = tuple(resolution) if isinstance(resolution, Sequence) else ()
        if len(resolution) != 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 or n % patch_size
                                       for n in resolution):
            raise ValueError(f"ViT: resolution={resolution} must be two positive multiples of patch_size={patch_size}")
        if sharing not in SHARING:
            raise ValueError(f"ViT: sharing={sharing!r} must be one of {', '.join(SHARING)}")
        if not mlp_ratio > 0:
            raise ValueError(f"ViT: mlp_ratio={mlp_ratio!r} must be > 0")
        self.in_channels, self.resolution, self.patch_size = in_channels, resolution, patch_size
        self.n_tokens = (resolution[0] // patch_size) * (resolution[1] // patch_size) + 1  # + class token
        ATTENTIONS.get(attention, owner="ViT", argument="attention")
        options = dict(attention_options or {})
        scores = attention
        if sharing == "universal" and attention != "softmax":
            scores = ATTENTIONS.build(attention, heads, self.n_tokens, owner="ViT", argument="attention", **options)
        self.embed = nn.Conv2d(in_channels, width, patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, width))
        self.position = nn.Parameter(torch.randn(1, self.n_tokens, width) * 0.02)
        hidden = max(1, round(width * mlp_ratio))
        self.blocks = nn.Sequential(*[_Block(width, heads, self.n_tokens, scores, options, hidden, neuron,
                                             dict(neuron_options or {}), activation, dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, out_features)

    def check_input(self, x: torch.Tensor) -> None:
        check_float_input(x, self, "ViT")
        if x.dim() != 4 or x.shape[1] != self.in_channels or tuple(x.shape[2:]) != self.resolution:
            raise ValueError(f"ViT: input must have shape (batch, {self.in_channels}, {self.resolution[0]}, "
                             f"{self.resolution[1]}), got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        tokens = rearrange(self.embed(x), "b d h w -> b (h w) d")
        tokens = torch.cat([self.class_token.expand(len(x), -1, -1).to(tokens.dtype), tokens], dim=1)
        tokens = self.blocks(tokens + self.position.to(tokens.dtype))
        return self.head(self.norm(tokens[:, 0]))
