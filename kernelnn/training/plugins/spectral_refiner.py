"""The Spectral-Refiner stage (Cao et al., "Spectral-Refiner: Fine-Tuning of Accurate Spatiotemporal Neural
Operator for Turbulent Flows", 2024): after ordinary training, fine-tune the last spectral convolution alone,
without mode truncation, on the negative Sobolev loss."""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from typing import Any

from torch import nn

from kernelnn.layers.spectral import SpectralConv, max_modes
from kernelnn.training.config import require
from kernelnn.training.errors import ConfigError
from kernelnn.training.plugins.base import TrainingPlugin
from kernelnn.training.report import format_metric
from kernelnn.training.tasks import OperatorTask


def last_spectral_conv(model: nn.Module) -> tuple[str, SpectralConv]:
    """The name and module of the last SpectralConv in registration (forward) order."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, SpectralConv)]
    if not found:
        raise ValueError("Spectral-Refiner needs a model with a SpectralConv (it fine-tunes the last one)")
    return found[-1]


def conv_input_shape(model: nn.Module, conv: nn.Module, x) -> tuple[int, ...] | None:
    """The spatial shape that reaches ``conv`` when ``model`` runs on ``x`` (domain padding included); ``None`` if
    the forward never calls it."""
    seen: list[tuple[int, ...]] = []
    handle = conv.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[2:])))
    try:
        model(x)
    finally:
        handle.remove()
    return seen[0] if seen else None


def unlock_last_spectral_conv(model: nn.Module, x) -> tuple[str, tuple[int, ...]]:
    """Freeze ``model`` except its last SpectralConv, which keeps all modes of the grid it sees from now on.

    ``x`` is a training input (one sample is enough). Returns the conv's name and its new ``n_modes``.
    """
    name, conv = last_spectral_conv(model)
    spatial = conv_input_shape(model, conv, x)
    if spatial is None:
        raise ValueError(f"Spectral-Refiner: the model's forward never reaches its last SpectralConv ({name})")
    for p in model.parameters():
        p.requires_grad_(False)
    conv.n_modes = [max_modes(n) for n in spatial]
    for p in conv.parameters():
        p.requires_grad_(True)
    return name, conv.n_modes


@dataclass
class SpectralRefinerConfig:
    epochs: int = 0  # > 0 turns the stage on
    sobolev_s: float = 1.0  # the loss is the relative H^-s norm of the error
    lr: float | None = None  # null: optim.lr

    def __post_init__(self) -> None:
        require(self.epochs >= 0, "epochs", self.epochs, "must be an integer >= 0")
        require(self.sobolev_s > 0, "sobolev_s", self.sobolev_s, "must be positive (the loss is H^-s)")
        require(self.lr is None or self.lr > 0, "lr", self.lr, "must be positive or null")


class SpectralRefiner(TrainingPlugin):
    """After training (from the best weights), every parameter is frozen except those of the model's last
    :class:`~kernelnn.layers.SpectralConv`, whose mode truncation is lifted (new modes start at zero, so the
    function is unchanged when refinement starts); it is trained alone for ``epochs`` with the relative
    ``H^-s`` loss, writing checkpoints under ``<run>/refine/``. The summary gets ``spectral_refiner``: the test
    metrics of the refined best weights, the module, its new ``n_modes``. The refined checkpoint reloads with
    :func:`~kernelnn.training.load_model` (SpectralConv stores its ``n_modes`` in its state dict)."""

    name = "spectral_refiner"
    Config = SpectralRefinerConfig

    @property
    def enabled(self) -> bool:
        return self.config.epochs > 0

    def check(self, trainer) -> None:
        data = trainer.data
        if data is None:
            raise ConfigError("plugins.spectral_refiner needs the run's DataBundle (Trainer(..., data=bundle)) for "
                              "the loss's boundary and dimension")
        if data.task != "operator":
            raise ConfigError("plugins.spectral_refiner applies to operator learning only")
        try:
            last_spectral_conv(trainer.model)
        except ValueError as err:
            raise ConfigError(f"plugins.spectral_refiner.epochs={self.config.epochs}: {err}") from err

    def after_fit(self, trainer) -> dict[str, Any]:
        start = time.perf_counter()
        module, modes = unlock_last_spectral_conv(trainer.model, trainer.first_inputs(1))
        data = trainer.data
        make_optimizer = trainer.make_optimizer
        if self.config.lr is not None:
            make_optimizer = functools.partial(make_optimizer, lr=self.config.lr)
        refiner = trainer.derive(
            task=OperatorTask("negative_sobolev", periodic=data.periodic, dim=data.dim,
                              sobolev_s=self.config.sobolev_s),
            make_optimizer=make_optimizer,
            options=dataclasses.replace(trainer.options, epochs=self.config.epochs, early_stopping_patience=None),
            output_dir=trainer.output_dir / "refine",
            checkpoint_meta={**trainer.meta, "stage": self.name},  # not resumable as the main run
        )
        refiner.fit()
        test = refiner.test_best()
        trainer.log(f"Spectral-Refiner: {refiner.state.epoch} epoch(s) on {module} with n_modes={list(modes)}; test "
                    f"l2 after refinement: {format_metric(test, 'l2')}; checkpoints {refiner.checkpoint_dir}")
        return {"test": test, "best_checkpoint": str(refiner.checkpoint_dir / "best.pt"), "module": module,
                "n_modes": list(modes), "epochs": refiner.state.epoch, "seconds": time.perf_counter() - start}
