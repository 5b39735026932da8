"""Spectral-Refiner fine-tuning (Cao et al., "Spectral-Refiner: Fine-Tuning of Accurate Spatiotemporal Neural
Operator for Turbulent Flows", 2024).

After ordinary training, every parameter is frozen except those of the model's last
:class:`~kernelnn.layers.SpectralConv`, whose mode truncation is lifted (it keeps every mode the grid it sees
resolves; the new modes start at zero, so the model's function is unchanged when refinement starts) and
which is then trained alone with the relative negative Sobolev loss :math:`\\|u - v\\|_{H^{-s}}`.
"""

from __future__ import annotations

from torch import nn

from kernelnn.layers.spectral import SpectralConv, max_modes


def last_spectral_conv(model: nn.Module) -> tuple[str, SpectralConv]:
    """The name and module of the last SpectralConv in registration (forward) order."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, SpectralConv)]
    if not found:
        raise ValueError("Spectral-Refiner needs a model with a SpectralConv (it fine-tunes the last one)")
    return found[-1]


def conv_input_shape(model: nn.Module, conv: nn.Module, x) -> tuple[int, ...]:
    """The spatial shape that reaches ``conv`` when ``model`` runs on ``x`` (domain padding included)."""
    seen: list[tuple[int, ...]] = []
    handle = conv.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[2:])))
    try:
        model(x)
    finally:
        handle.remove()
    return seen[0]


def unlock_last_spectral_conv(model: nn.Module, x) -> tuple[str, tuple[int, ...]]:
    """Freeze ``model`` except its last SpectralConv, which keeps all modes of the grid it sees from now on.

    ``x`` is a training input (one sample is enough). Returns the conv's name and its new ``n_modes``.
    """
    name, conv = last_spectral_conv(model)
    spatial = conv_input_shape(model, conv, x)
    for p in model.parameters():
        p.requires_grad_(False)
    conv.n_modes = [max_modes(n) for n in spatial]
    for p in conv.parameters():
        p.requires_grad_(True)
    return name, conv.n_modes
