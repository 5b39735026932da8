r"""Which edges and nodes of a KAN matter, and the smaller KAN without the rest (pykan's ``attribute``/``prune``).

Scores follow pykan (Liu et al. 2024, "KAN 2.0", attribution): from the outputs (score 1 each) backwards, an
edge ``i -> o`` of layer ``l`` scores

.. math::  E^l_{oi} = N^{l+1}_o \, \mathrm{std}(\phi^l_{oi}) / (\mathrm{std}(z^{l+1}_o) + 10^{-4}),

its share of its output node's spread times that node's score, and a node scores the sum of its outgoing edges,
:math:`N^l_i = \sum_o E^l_{oi}`. :func:`prune` masks edges scoring at most ``edge_threshold`` (they stay zero if
training goes on) and removes hidden nodes scoring at most ``threshold`` or left without outgoing edges (the layers
are sliced: the result is a smaller working KAN). Statistics are over samples ``x`` or, without them, the model's
last input.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def edge_layers(model: nn.Module, owner: str) -> list[nn.Module]:
    """The KAN layers of ``model`` (a :class:`~kernelnn.models.KAN`), each with per-edge functions."""
    blocks = list(getattr(model, "layers", []))
    if not blocks:
        raise TypeError(f"{owner}: needs a kernelnn.models.KAN, got {type(model).__name__}")
    for block in blocks:
        if isinstance(block, nn.LayerNorm):
            raise ValueError(f"{owner}: the KAN has layer_norm=True; a LayerNorm mixes its inputs, so the network is "
                             "no sum of edge functions (build it with layer_norm=False to interpret it)")
        if not hasattr(block, "edge_values"):
            raise ValueError(f"{owner}: layer {type(block).__name__} has no per-edge functions; interpretation needs "
                             "KAN(layer='kan') (B-spline edges, as pykan)")
    return blocks


def samples(model: nn.Module, x: torch.Tensor | None, owner: str) -> torch.Tensor:
    """``x`` checked against the model, or the model's last input; a clear error when there is neither."""
    if x is None:
        x = getattr(model, "last_input", None)
        if x is None:
            raise RuntimeError(f"{owner}: the model has not seen data; call it with data ({owner}(..., x=inputs)) "
                               "or after a forward pass model(inputs)")
    model.check_input(x)
    x = x.detach().reshape(-1, x.shape[-1])
    if len(x) < 2:
        raise ValueError(f"{owner}: needs at least 2 samples to measure spreads, got {len(x)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{owner}: the samples hold non-finite values")
    return x


@torch.no_grad()
def layer_inputs(model: nn.Module, x: torch.Tensor, owner: str = "layer_inputs") -> list[torch.Tensor]:
    """The input ``(N, in)`` of every KAN layer of ``model`` on samples ``x``, then the output: depth + 1 tensors."""
    seen = [x]
    for layer in edge_layers(model, owner):
        seen.append(layer(seen[-1]))
    return seen


@torch.no_grad()
def attribute(model: nn.Module, x: torch.Tensor | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``(node_scores, edge_scores)``: ``node_scores[l]`` is ``(width_l,)`` for ``l = 0..depth`` (outputs: 1),
    ``edge_scores[l]`` is ``(width_{l+1}, width_l)`` (see the module docstring)."""
    x = samples(model, x, "attribute")
    layers = edge_layers(model, "attribute")
    seen = layer_inputs(model, x, "attribute")
    node = torch.ones(layers[-1].out_features, dtype=x.dtype, device=x.device)
    nodes, edges = [node], []
    for layer, inputs, outputs in zip(reversed(layers), reversed(seen[:-1]), reversed(seen[1:]), strict=True):
        spread = layer.edge_values(inputs).std(dim=0)  # (out, in)
        edge = node[:, None] * spread / (outputs.std(dim=0)[:, None] + 1e-4)
        node = edge.sum(dim=0)
        edges.append(edge)
        nodes.append(node)
    return nodes[::-1], edges[::-1]


@torch.no_grad()
def prune(model: nn.Module, threshold: float = 1e-2, edge_threshold: float = 3e-2,
          x: torch.Tensor | None = None) -> nn.Module:
    """A copy of ``model`` without hidden nodes scoring ``<= threshold`` and with edges scoring
    ``<= edge_threshold`` masked (inputs and outputs are kept; a layer keeps at least its best node)."""
    for name, value in (("threshold", threshold), ("edge_threshold", edge_threshold)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"prune: {name}={value!r} must be a number >= 0")
    x = samples(model, x, "prune")  # errors name prune, not attribute
    layers = edge_layers(model, "prune")
    nodes, edges = attribute(model, x)
    kept = [torch.arange(len(nodes[0]), device=nodes[0].device)]
    for score, outgoing in zip(nodes[1:-1], edges[1:], strict=True):
        # a node whose every outgoing edge is pruned no longer reaches the output
        alive = (score > threshold) & (outgoing > edge_threshold).any(dim=0)
        keep = alive.nonzero().flatten()
        kept.append(keep if len(keep) else score.argmax().reshape(1))
    kept.append(torch.arange(len(nodes[-1]), device=nodes[-1].device))
    seen, model.last_input = model.last_input, None  # a batch is no part of the copy
    try:
        pruned = copy.deepcopy(model)
    finally:
        model.last_input = seen
    new_layers = []
    for layer, edge, inputs, outputs in zip(layers, edges, kept[:-1], kept[1:], strict=True):
        small = layer.select(inputs, outputs)
        small.remove_edges(edge[outputs][:, inputs] <= edge_threshold)
        new_layers.append(small)
    pruned.layers = nn.Sequential(*new_layers)
    pruned.widths = [len(k) for k in kept]
    return pruned
