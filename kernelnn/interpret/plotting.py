"""Every learned edge function of a KAN, drawn over its input range (pykan's ``plot``), line width by attribution.

One panel block per layer; each panel is one edge ``i -> o``, its function ``phi_oi`` against the values of input
``i`` on the samples. Lines are thicker and darker the more the edge matters (:func:`~kernelnn.interpret.attribute`).
A layer with more than ``max_edges`` edges shows its ``max_edges`` most important ones and says so in its title
and in a warning. matplotlib is used through its object-oriented API only (no pyplot state).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from torch import nn

from kernelnn.interpret.attribution import attribute, edge_layers, layer_inputs, samples
from kernelnn.training.plots import new_figure, save_figure


@torch.no_grad()
def plot(model: nn.Module, path: str | Path, x: torch.Tensor | None = None, max_edges: int = 64,
         columns: int = 8, dpi: int = 100) -> Path:
    """Draw every edge function of a KAN into the PNG ``path`` (see the module docstring); returns the path."""
    if isinstance(max_edges, bool) or not isinstance(max_edges, int) or max_edges < 1:
        raise ValueError(f"plot: max_edges={max_edges!r} must be a positive int")
    x = samples(model, x, "plot")
    layers = edge_layers(model, "plot")
    seen = layer_inputs(model, x, "plot")
    _, scores = attribute(model, x)
    top = max(float(s.max()) for s in scores) or 1.0
    panels = []
    for l, (layer, inputs, score) in enumerate(zip(layers, seen[:-1], scores, strict=True)):
        order = score.flatten().argsort(descending=True)
        drawn = order[:max_edges]
        if len(order) > max_edges:
            warnings.warn(f"plot: layer {l} has {len(order)} edges; drawing its {max_edges} most important "
                          f"(raise max_edges to draw more)", stacklevel=2)
        panels.append((l, layer, inputs, score, drawn, len(order)))
    rows = [math.ceil(len(p[4]) / columns) for p in panels]
    fig = new_figure(figsize=(1.6 * columns, 1.4 * sum(rows) + 0.5 * len(rows)))
    subfigs = fig.subfigures(len(panels), 1, height_ratios=rows, squeeze=False)[:, 0]
    for subfig, n_rows, (l, layer, inputs, score, drawn, total) in zip(subfigs, rows, panels, strict=True):
        shown = f"its {len(drawn)} most important of {total} edges" if len(drawn) < total else f"{total} edges"
        subfig.suptitle(f"layer {l}: {layer.in_features} -> {layer.out_features}, {shown}", fontsize=9)
        axes = subfig.subplots(n_rows, columns, squeeze=False).flatten()
        values = layer.edge_values(inputs)  # (N, out, in)
        names = layer.functions() if hasattr(layer, "functions") else None
        for ax in axes[len(drawn):]:
            ax.axis("off")
        for ax, flat_index in zip(axes, drawn.tolist(), strict=False):
            o, i = divmod(flat_index, layer.in_features)
            order = inputs[:, i].argsort()
            weight = float(score[o, i]) / top
            ax.plot(inputs[order, i].cpu().double().numpy(), values[order, o, i].cpu().double().numpy(),
                    color="black", linewidth=0.5 + 3 * weight, alpha=0.25 + 0.75 * min(weight, 1.0))
            label = f"{i}->{o}" + (f": {names[o][i]}" if names else "") + f"  ({float(score[o, i]):.2g})"
            ax.set_title(label, fontsize=7)
            ax.tick_params(labelsize=5)
    return save_figure(fig, path, dpi)
