r"""Multi-head self-attention over tokens with a swappable score function: softmax, or Kolmogorov-Arnold attention.

For tokens ``x (batch, N, dim)``: ``q, k, v`` are linear maps of ``x`` split into ``heads``; the logits
``A = q k^T / sqrt(d_h)`` become weights ``S(A)`` by a score function from :data:`kernelnn.registry.ATTENTIONS`
(``softmax`` over each row, as in Vaswani et al. 2017; ``fourier_karat``, a learnable operator,
:class:`~kernelnn.layers.FourierKArAt`), and the output is ``S(A) v`` merged over heads and mapped by a linear
layer. Softmax runs through ``F.scaled_dot_product_attention`` (fused kernels), any other function on the explicit
logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from kernelnn.layers.input_checks import check_float_input, check_float_tensor, check_positive_ints
from kernelnn.registry import ATTENTIONS


@ATTENTIONS.register("softmax")
class SoftmaxScores(nn.Module):
    """Row-wise softmax of the logits, ``(batch, heads, N, N) -> same`` (the usual attention weights)."""

    def __init__(self, heads: int | None = None, n_tokens: int | None = None) -> None:
        super().__init__()
        self.heads, self.n_tokens = heads, n_tokens

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        check_float_tensor(logits, "SoftmaxScores", "logits")
        heads = "heads" if self.heads is None else str(self.heads)
        n = "N" if self.n_tokens is None else str(self.n_tokens)
        if (logits.dim() != 4 or logits.shape[-1] != logits.shape[-2]
                or (self.heads is not None and logits.shape[1] != self.heads)
                or (self.n_tokens is not None and logits.shape[-1] != self.n_tokens)):
            raise ValueError(f"SoftmaxScores: logits must have shape (batch, {heads}, {n}, {n}), got "
                             f"{tuple(logits.shape)}")
        return logits.softmax(dim=-1)


class SelfAttention(nn.Module):
    """Multi-head self-attention, ``(batch, n_tokens, dim) -> (batch, n_tokens, dim)`` (see the module docstring).

    Parameters
    ----------
    dim : int
        Token width; a multiple of ``heads``.
    heads : int
    n_tokens : int, optional
        Tokens per input; needed by score functions with per-token parameters (``fourier_karat``).
    scores : str or nn.Module
        A name from :data:`kernelnn.registry.ATTENTIONS`, or a built score module (to share one between blocks).
    scores_options : dict, optional
        Constructor arguments of the score function (``grid_size``, ``rank``, ...).
    dropout : float
        Dropout on the output.

    >>> attention = SelfAttention(16, heads=2, n_tokens=5, scores="fourier_karat")
    >>> attention(torch.randn(3, 5, 16)).shape
    torch.Size([3, 5, 16])
    """

    def __init__(self, dim: int, heads: int, n_tokens: int | None = None, scores: str | nn.Module = "softmax",
                 scores_options: dict | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        check_positive_ints("SelfAttention", dim=dim, heads=heads)
        if dim % heads:
            raise ValueError(f"SelfAttention: dim={dim} must be a multiple of heads={heads}")
        self.dim, self.heads, self.n_tokens = dim, heads, n_tokens
        if isinstance(scores, nn.Module):
            self.scores = scores
        else:
            needs_tokens = scores != "softmax"
            if needs_tokens and n_tokens is None:
                raise ValueError(f"SelfAttention: scores={scores!r} has per-token parameters; give n_tokens")
            self.scores = ATTENTIONS.build(scores, heads, n_tokens, owner="SelfAttention", argument="scores",
                                           **(scores_options or {}))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def check_input(self, x: torch.Tensor) -> None:
        check_float_input(x, self, "SelfAttention")
        if x.dim() != 3 or x.shape[-1] != self.dim or (self.n_tokens is not None and x.shape[1] != self.n_tokens):
            tokens = "n_tokens" if self.n_tokens is None else str(self.n_tokens)
            raise ValueError(f"SelfAttention: input must have shape (batch, {tokens}, {self.dim}), got "
                             f"{tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        if isinstance(self.scores, SoftmaxScores):
            mixed = F.scaled_dot_product_attention(q, k, v)
        else:
            logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
            mixed = self.scores(logits) @ v
        return self.dropout(self.out(rearrange(mixed, "b h n d -> b n (h d)")))


class KArAt(SelfAttention):
    """Kolmogorov-Arnold attention: :class:`SelfAttention` with ``scores="fourier_karat"`` (Maity et al. 2025).

    >>> KArAt(16, heads=2, n_tokens=5)(torch.randn(3, 5, 16)).shape
    torch.Size([3, 5, 16])
    """

    def __init__(self, dim: int, heads: int, n_tokens: int, grid_size: int = 3, rank: int = 12,
                 base_activation: str | None = None, dropout: float = 0.0) -> None:
        super().__init__(dim, heads, n_tokens, "fourier_karat",
                         {"grid_size": grid_size, "rank": rank, "base_activation": base_activation}, dropout)
