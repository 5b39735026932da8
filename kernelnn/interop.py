"""neuraloperator 2.x models brought over: :func:`from_neuralop` turns its ``FNO`` / ``TFNO`` into kernelnn's FNO.

neuraloperator (Kossaifi et al., https://github.com/neuraloperator/neuraloperator) builds its FNO from blocks in
which both skips read the block's input, a soft-gated channel MLP follows the spectral convolution, lifting is a
two-layer MLP and spectral convolutions carry a bias; its ``n_modes`` counts kept frequencies, not ``|k| <
n_modes``. kernelnn's :class:`~kernelnn.models.FNO` has each of these as an option (``block="neuralop"``,
``lifting_channels``, ``spectral_bias``, ``modes_convention="neuralop"``, ``domain_padding_mode="symmetric"``), so
a converted model is an ordinary kernelnn FNO: it trains, saves and runs with the rest of the library, and computes
the same function as the original at every resolution that holds all its modes (``N >= n_modes`` on leading dims;
neuraloperator crops the modes of coarser grids, kernelnn refuses them).

neuraloperator is not a dependency: a model given here was built by an installed neuraloperator. Options without
a kernelnn counterpart (complex data, separable or CP/TT weights, resolution scaling, dropout, ...) raise a
``ValueError`` naming the option.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kernelnn.models.fno import FNO

# neuraloperator passes activations as functions; the ones kernelnn registers under a name.
_ACTIVATIONS = {F.gelu: "gelu", F.relu: "relu", F.silu: "silu", torch.tanh: "tanh", torch.sigmoid: "sigmoid",
                F.softplus: "softplus"}
_NORMS = {"GroupNorm": "group", "InstanceNorm": "instance"}


def _unsupported(option: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"from_neuralop: neuraloperator option {option}={value!r} has no kernelnn counterpart "
                      f"({allowed})")


def _check_is_neuralop_fno(model: nn.Module) -> None:
    cls = type(model)
    try:
        from neuralop.models import FNO as NeuralopFNO
    except ImportError:
        NeuralopFNO = None
    if NeuralopFNO is None or not isinstance(model, NeuralopFNO):
        raise TypeError(f"from_neuralop: expected a neuraloperator FNO or TFNO (neuralop.models), got "
                        f"{cls.__module__}.{cls.__qualname__}")


def _activation(fn) -> str:
    if fn not in _ACTIVATIONS:
        raise _unsupported("non_linearity", getattr(fn, "__name__", fn), f"supported: {sorted(_ACTIVATIONS.values())}")
    return _ACTIVATIONS[fn]


def _skip_name(value, option: str, allow_none: bool) -> str:
    if value is None and allow_none:
        return "none"
    if not isinstance(value, str) or value.lower() not in ("linear", "identity", "soft-gating"):
        allowed = "linear, identity, soft-gating" + (" or None" if allow_none else "")
        raise _unsupported(option, value, f"supported: {allowed}")
    return value.lower()


def _weight_kind(conv: nn.Module, layer: int) -> str:
    name = type(conv.weight).__name__
    if name in ("DenseTensor", "ComplexDenseTensor"):
        return "dense"
    if name in ("TuckerTensor", "ComplexTuckerTensor"):
        return "tucker"
    raise _unsupported(f"factorization (layer {layer})", name, "supported: dense (None) and Tucker weights")


def neuralop_fno_kwargs(model: nn.Module) -> dict[str, Any]:
    """The keyword arguments of the kernelnn :class:`FNO` equivalent to neuraloperator ``model`` (weights aside).

    Usable as a Hydra model config (``_target_: kernelnn.models.FNO``). Raises ``ValueError`` naming the first
    neuraloperator option without a kernelnn counterpart.
    """
    _check_is_neuralop_fno(model)
    blocks = model.fno_blocks
    dim = len(model.n_modes)
    checks = [
        ("complex_data", getattr(model, "complex_data", False), False),
        ("separable", getattr(blocks, "separable", False), False),
        ("preactivation", getattr(blocks, "preactivation", False), False),
        ("stabilizer", getattr(blocks, "stabilizer", None), None),
        ("fno_block_precision", getattr(blocks, "fno_block_precision", "full"), "full"),
        ("resolution_scaling_factor", getattr(model, "resolution_scaling_factor", None), None),
    ]
    for option, value, wanted in checks:
        if value != wanted:
            raise _unsupported(option, value, f"only {wanted!r} is mapped")
    if getattr(blocks, "max_n_modes", None) is not None:
        raise _unsupported("max_n_modes", blocks.max_n_modes, "only None (weights stored for n_modes) is mapped")
    for conv in blocks.convs:
        if type(conv).__name__ != "SpectralConv":
            raise _unsupported("conv_module", type(conv).__name__, "only neuralop's SpectralConv is mapped")
        if getattr(conv, "fft_norm", "forward") != "forward":
            raise _unsupported("fft_norm", conv.fft_norm, "only 'forward' is mapped")
    kinds = {_weight_kind(conv, i) for i, conv in enumerate(blocks.convs)}
    stored = [*model.n_modes[:-1], model.n_modes[-1] // 2 + 1]
    for i, conv in enumerate(blocks.convs):
        shape = list(conv.weight.shape[2:])
        if shape != stored or list(conv.n_modes) != stored:
            raise _unsupported(f"n_modes (layer {i})", list(model.n_modes), f"weights stored for exactly n_modes; "
                               f"this layer stores {shape} frequencies, not {stored} (n_modes changed after "
                               "construction?)")
    if len(kinds) > 1:
        raise _unsupported("factorization", sorted(kinds), "one factorization for all layers")
    activation = _activation(model.non_linearity)
    use_mlp = bool(blocks.use_channel_mlp)
    if use_mlp:
        if float(getattr(blocks, "channel_mlp_dropout", 0) or 0) != 0:
            raise _unsupported("channel_mlp_dropout", blocks.channel_mlp_dropout, "only 0 is mapped")
        if activation != "gelu":  # neuraloperator's block MLPs always use GELU, whatever non_linearity says
            raise _unsupported("non_linearity", activation, "with use_channel_mlp=True only F.gelu is mapped: "
                               "neuraloperator's channel MLPs ignore non_linearity")
    embedding = model.positional_embedding
    if embedding is not None:
        boundaries = [list(map(float, b)) for b in getattr(embedding, "grid_boundaries", [])]
        if type(embedding).__name__ != "GridEmbeddingND" or boundaries != [[0.0, 1.0]] * dim:
            raise _unsupported("positional_embedding", type(embedding).__name__,
                               "only 'grid' (GridEmbeddingND on [0, 1]^d) or None is mapped")
    padding = 0.0
    if model.domain_padding is not None:
        padding = model.domain_padding.domain_padding
        padding = list(map(float, padding)) if isinstance(padding, list | tuple) else float(padding)
    norm = None
    if blocks.norm is not None:
        kind = type(blocks.norm[0]).__name__
        if kind not in _NORMS:
            raise _unsupported("norm", kind, "supported: group_norm, instance_norm or None")
        if kind == "GroupNorm" and blocks.norm[0].num_groups != 1:
            raise _unsupported("norm", f"GroupNorm({blocks.norm[0].num_groups} groups)", "one group only")
        if kind == "InstanceNorm" and blocks.norm[0].kwargs:
            raise _unsupported("norm", f"InstanceNorm({blocks.norm[0].kwargs})", "InstanceNorm without arguments")
        norm = _NORMS[kind]
    lifting_layers = len(model.lifting.fcs)
    if lifting_layers not in (1, 2) or len(model.projection.fcs) != 2:
        raise _unsupported("lifting/projection layers", (lifting_layers, len(model.projection.fcs)),
                           "lifting of 1 or 2 layers, projection of 2")
    kwargs: dict[str, Any] = {
        "in_channels": model.in_channels,
        "out_channels": model.out_channels,
        "n_modes": list(model.n_modes),
        "hidden_channels": model.hidden_channels,
        "n_layers": model.n_layers,
        "projection_channels": model.projection.fcs[0].out_channels,
        "activation": activation,
        "positional_embedding": embedding is not None,
        "domain_padding": padding,
        "domain_padding_mode": "symmetric",
        "skip": _skip_name(blocks.fno_skip, "fno_skip", allow_none=False),
        "norm": norm,
        "block": "neuralop",
        "lifting_channels": model.lifting.fcs[0].out_channels if lifting_layers == 2 else 0,
        "spectral_bias": blocks.convs[0].bias is not None,
        "modes_convention": "neuralop",
        "channel_mlp": {
            "expansion": (blocks.channel_mlp[0].fcs[0].out_channels / model.hidden_channels) if use_mlp else 0.0,
            "skip": _skip_name(blocks.channel_mlp_skip, "channel_mlp_skip", allow_none=True) if use_mlp else None,
        },
    }
    if kinds == {"tucker"}:
        kwargs["factorization"] = "tucker"
        kwargs["rank"] = list(blocks.convs[0].weight.core.shape)
    return kwargs


def neuralop_to_kernelnn_modes(t: torch.Tensor, axis: int, n_modes: int, last: bool) -> torch.Tensor:
    """Reorder one frequency axis of a neuraloperator weight (or Tucker factor) into kernelnn's slots.

    neuraloperator stores leading-dim frequencies ``-(M // 2) .. (M - 1) // 2`` in ascending order; kernelnn stores
    ``m = M // 2 + 1`` slots ``0 .. m - 1, -(m - 1) .. -1``, of which ``+M / 2`` (even ``M``) is unused and left
    zero. The last (rfft) dim is ``0 .. M // 2`` in both.
    """
    if last:
        return t
    m = n_modes // 2 + 1
    freqs = list(range(m)) + list(range(-(m - 1), 0))
    out = t.new_zeros(*t.shape[:axis], 2 * m - 1, *t.shape[axis + 1:])
    for slot, f in enumerate(freqs):
        source = f + n_modes // 2
        if 0 <= source < n_modes:
            out.select(axis, slot).copy_(t.select(axis, source))
    return out


def _copy_pointwise(ours: nn.Module, theirs: nn.Module) -> None:
    """A kernelnn 1x1 conv (``nn.ConvNd``) from a neuraloperator ``Conv1d`` with kernel 1 (bias may be absent)."""
    ours.weight.copy_(theirs.weight.reshape(ours.weight.shape))
    if ours.bias is not None:
        ours.bias.copy_(theirs.bias if theirs.bias is not None else torch.zeros_like(ours.bias))


def _copy_mlp(ours: nn.Module, theirs: nn.Module) -> None:
    linears = [layer for layer in ours if hasattr(layer, "weight")] if isinstance(ours, nn.Sequential) else [ours]
    for layer, fc in zip(linears, theirs.fcs, strict=True):
        _copy_pointwise(layer, fc)


def _copy_skip(ours: nn.Module, theirs: nn.Module, kind: str) -> None:
    if kind == "linear":
        _copy_pointwise(ours, theirs.conv)
    elif kind == "soft-gating":
        ours.weight.copy_(theirs.weight)
        if theirs.bias is not None:
            raise _unsupported("soft-gating bias", True, "soft-gating without bias")


def _copy_spectral(ours: nn.Module, theirs: nn.Module, n_modes: list[int]) -> None:
    dim = len(n_modes)
    weight = theirs.weight
    if ours.factorization == "dense":
        dense = weight.to_tensor() if hasattr(weight, "to_tensor") else weight.tensor
        for axis in range(dim):
            dense = neuralop_to_kernelnn_modes(dense, 2 + axis, n_modes[axis], last=axis == dim - 1)
        ours.weight.weight.copy_(torch.view_as_real(dense.resolve_conj()))
    else:
        factors = list(weight.factors)
        ours.weight.core.copy_(torch.view_as_real(weight.core.resolve_conj()))
        ours.weight.factor_in.copy_(torch.view_as_real(factors[0].resolve_conj()))
        ours.weight.factor_out.copy_(torch.view_as_real(factors[1].resolve_conj()))
        for axis, factor in enumerate(factors[2:]):
            converted = neuralop_to_kernelnn_modes(factor, 0, n_modes[axis], last=axis == dim - 1)
            ours.weight.factor_modes[axis].copy_(torch.view_as_real(converted.resolve_conj()))
    if theirs.bias is not None:
        ours.bias.copy_(theirs.bias)


@torch.no_grad()
def from_neuralop(model: nn.Module) -> FNO:
    """A kernelnn :class:`FNO` computing the same function as neuraloperator 2.x ``model`` (an ``FNO`` or ``TFNO``,
    dense or Tucker weights), on the same device and dtype, in the same train/eval mode.

    The result keeps neuraloperator's ``n_modes`` (``modes_convention="neuralop"``) and block structure
    (``block="neuralop"``); :func:`neuralop_fno_kwargs` gives its constructor arguments. Raises ``TypeError`` for
    anything but a neuraloperator FNO and ``ValueError`` naming an option kernelnn does not map.
    """
    kwargs = neuralop_fno_kwargs(model)
    blocks = model.fno_blocks
    reference = next(model.parameters())
    ours = FNO(**kwargs).to(device=reference.device, dtype=reference.dtype)
    n_modes = kwargs["n_modes"]
    _copy_mlp(ours.lifting, model.lifting)
    _copy_mlp(ours.projection, model.projection)
    for i in range(model.n_layers):
        if kwargs.get("factorization") == "tucker":
            core = tuple(blocks.convs[i].weight.core.shape)
            if core != tuple(ours.spectral[i].weight.core.shape[:-1]):
                raise _unsupported(f"Tucker ranks (layer {i})", list(core), f"the same ranks in every layer as "
                                   f"layer 0, {kwargs['rank']}")
        _copy_spectral(ours.spectral[i], blocks.convs[i], n_modes)
        _copy_skip(ours.skips[i], blocks.fno_skips[i], kwargs["skip"])
        if ours.channel_mlps is not None:
            _copy_mlp(ours.channel_mlps[i], blocks.channel_mlp[i])
            if ours.channel_mlp_skips is not None:
                _copy_skip(ours.channel_mlp_skips[i], blocks.channel_mlp_skips[i], kwargs["channel_mlp"]["skip"])
    if ours.norms is not None:
        for mine, theirs in zip(ours.norms, blocks.norm, strict=True):
            if isinstance(theirs, nn.GroupNorm):
                mine.weight.copy_(theirs.weight)
                mine.bias.copy_(theirs.bias)
    return ours.train(model.training)
