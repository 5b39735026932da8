"""The Spectral-Refiner stage (Cao et al., "Spectral-Refiner: Accurate Fine-Tuning of Spatiotemporal Fourier Neural
Operator for Turbulent Flows", ICLR 2025): after ordinary training, fine-tune the last spectral convolution alone,
without mode truncation.

``loss: residual`` is the paper's: a :class:`~kernelnn.models.BochnerFNO`'s predictions for a split's inputs are
refined one trajectory at a time on the Navier-Stokes residual estimator, reading no targets
(:func:`kernelnn.spectral_refiner.refine_trajectories`); the targets only score the result, against the time the
solver takes for the same trajectories. ``loss: sobolev`` fine-tunes the last SpectralConv of any operator model on
the ``H^-s`` misfit to the training targets (a supervised variant)."""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from kernelnn.data.bundle import first_batch
from kernelnn.data.navier_stokes import fno_forcing, solve_navier_stokes
from kernelnn.layers.spectral import SpectralConv, max_modes
from kernelnn.losses import LpLoss, NegativeSobolevLoss
from kernelnn.models.bochner_fno import BochnerFNO
from kernelnn.navier_stokes_residual import NavierStokesResidual
from kernelnn.spectral_refiner import OPTIMIZERS, PARAMETERIZATIONS, refine_trajectories
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


LOSSES = ("residual", "sobolev")
SPLITS = ("train", "val", "test")


@dataclass
class SpectralRefinerConfig:
    loss: str = "residual"  # residual: the paper's estimator, no targets; sobolev: H^-s misfit to the targets
    iterations: int = 0  # residual: optimizer iterations per batch of trajectories (> 0 turns it on)
    optimizer: str = "lbfgs"  # residual: lbfgs or adam
    parameterization: str = "output"  # residual: output (preconditioned) or weights (the authors' code)
    split: str = "test"  # residual: whose inputs are refined (every test set for test)
    max_samples: int | None = None  # residual: refine only the first N of each set (null: all)
    batch_size: int = 4  # residual: trajectories refined together (each with its own layer)
    epochs: int = 0  # sobolev: fine-tuning epochs (> 0 turns it on)
    sobolev_s: float = 1.0  # sobolev: the loss is the relative H^-s norm of the error
    lr: float | None = None  # null: residual 1 (lbfgs) or 1e-3 (adam); sobolev optim.lr

    def __post_init__(self) -> None:
        require(self.loss in LOSSES, "loss", self.loss, f"must be one of {LOSSES}")
        require(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer, f"must be one of {OPTIMIZERS}")
        require(self.parameterization in PARAMETERIZATIONS, "parameterization", self.parameterization,
                f"must be one of {PARAMETERIZATIONS}")
        require(self.split in SPLITS, "split", self.split, f"must be one of {SPLITS}")
        require(self.iterations >= 0, "iterations", self.iterations, "must be an integer >= 0")
        require(self.max_samples is None or self.max_samples >= 1, "max_samples", self.max_samples,
                "must be positive or null")
        require(self.batch_size >= 1, "batch_size", self.batch_size, "must be a positive integer")
        require(self.epochs >= 0, "epochs", self.epochs, "must be an integer >= 0")
        require(self.sobolev_s > 0, "sobolev_s", self.sobolev_s, "must be positive (the loss is H^-s)")
        require(self.lr is None or self.lr > 0, "lr", self.lr, "must be positive or null")
        if self.loss == "residual":
            require(self.epochs == 0, "epochs", self.epochs, "is for loss=sobolev; loss=residual runs `iterations`")
        else:
            require(self.iterations == 0, "iterations", self.iterations,
                    "is for loss=residual; loss=sobolev runs `epochs`")


class SpectralRefiner(TrainingPlugin):
    """After training and testing (from the best weights).

    ``loss: residual``: each trajectory of the split's inputs is refined on its own by
    :func:`~kernelnn.spectral_refiner.refine_trajectories` (the model's last, linear spectral convolution with every
    mode up to Nyquist, fitted to the :class:`~kernelnn.navier_stokes_residual.NavierStokesResidual` estimator); the
    summary gets, per set, the relative L2 and ``H^-1`` errors against the solver's frames and the estimator before
    and after, the refinement's seconds and the solver's seconds for the same trajectories on the same grid. The
    trained model is not changed.

    ``loss: sobolev``: every parameter is frozen except those of the model's last
    :class:`~kernelnn.layers.SpectralConv`, whose mode truncation is lifted (new modes start at zero); it is trained
    alone for ``epochs`` with the relative ``H^-s`` loss against the targets, writing checkpoints under
    ``<run>/refine/`` (they reload with :func:`~kernelnn.training.load_model`)."""

    name = "spectral_refiner"
    Config = SpectralRefinerConfig

    @property
    def enabled(self) -> bool:
        return self.config.iterations > 0 or self.config.epochs > 0

    def check(self, trainer) -> None:
        data = trainer.data
        if data is None:
            raise ConfigError("plugins.spectral_refiner needs the run's DataBundle (Trainer(..., data=bundle)) for "
                              "the loss's boundary and dimension")
        if data.task != "operator":
            raise ConfigError("plugins.spectral_refiner applies to operator learning only")
        if self.config.loss == "residual":
            if not isinstance(trainer.model, BochnerFNO):
                raise ConfigError(f"plugins.spectral_refiner.loss=residual refines a BochnerFNO (model=bochner_fno, "
                                  f"without input/output normalisation: normalize.input=false "
                                  f"normalize.output=false); the model is {type(trainer.model).__name__}. "
                                  "loss=sobolev fine-tunes other spectral models on their targets")
            try:
                NavierStokesResidual.for_bundle(data)
            except ValueError as err:
                raise ConfigError(f"plugins.spectral_refiner.loss=residual: {err}") from err
            if self.config.split == "val" and data.val is None:
                raise ConfigError("plugins.spectral_refiner.split=val: the data have no validation set")
            return
        try:
            last_spectral_conv(trainer.model)
        except ValueError as err:
            raise ConfigError(f"plugins.spectral_refiner.epochs={self.config.epochs}: {err}") from err

    def after_fit(self, trainer) -> dict[str, Any]:
        if self.config.loss == "residual":
            return self._refine_residual(trainer)
        return self._refine_sobolev(trainer)

    def _refine_residual(self, trainer) -> dict[str, Any]:
        c, data, model = self.config, trainer.data, trainer.model
        sets = {"train": {"train": data.train}, "val": {"val": data.val}, "test": data.tests}[c.split]
        estimator = NavierStokesResidual.for_bundle(data, reduction="none").to(trainer.device)
        l2, h_minus_1 = LpLoss(reduction="none"), NegativeSobolevLoss(1.0, reduction="none")
        report: dict[str, Any] = {"iterations": c.iterations, "optimizer": c.optimizer, "split": c.split,
                                  "parameterization": c.parameterization}
        for name, dataset in sets.items():
            x, y = first_batch(dataset, len(dataset) if c.max_samples is None else c.max_samples)
            result = refine_trajectories(model, x, estimator, iterations=c.iterations, optimizer=c.optimizer,
                                         lr=c.lr, batch_size=c.batch_size, parameterization=c.parameterization)
            y = y.to(result.predictions.dtype)
            solver_seconds = self._solver_seconds(x.to(trainer.device), data, model.out_steps)
            self._warn_about_the_floor(trainer, name, x.shape[-1])
            with torch.no_grad():
                target_residual = estimator.per_trajectory(torch.cat([x[:, -1:].to(y), y], 1).to(trainer.device))
            row = {
                "samples": len(x),
                "l2_before": l2(result.initial, y).mean().item(), "l2_after": l2(result.predictions, y).mean().item(),
                "h-1_before": h_minus_1(result.initial, y).mean().item(),
                "h-1_after": h_minus_1(result.predictions, y).mean().item(),
                "residual_before": result.residual_before.mean().item(),
                "residual_after": result.residual_after.mean().item(),
                "residual_of_targets": target_residual.mean().item(),
                "seconds": result.seconds, "solver_seconds": solver_seconds,
            }
            report[name] = row
            trainer.log(f"Spectral-Refiner on {name} ({len(x)} trajectories, {c.iterations} {c.optimizer} "
                        f"iterations, no targets read): relative L2 {row['l2_before']:.4g} -> {row['l2_after']:.4g}, "
                        f"H^-1 {row['h-1_before']:.4g} -> {row['h-1_after']:.4g}, residual "
                        f"{row['residual_before']:.3g} -> {row['residual_after']:.3g} (solver frames: "
                        f"{row['residual_of_targets']:.3g}); {row['seconds']:.1f} s against {solver_seconds:.1f} s "
                        "for the solver on the same grid")
        return report

    @staticmethod
    def _solver_seconds(x: torch.Tensor, data, out_steps: int) -> float:
        """Seconds the data's solver takes for these trajectories' horizon, from their last input frame, on the
        grid of ``x`` with the data's time step (the cost refinement is measured against)."""
        info = data.info
        n = x.shape[-1]
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        start = time.perf_counter()
        solve_navier_stokes(x[:, -1].double(), fno_forcing(n).to(x.device), info["viscosity"],
                            info["frame_dt"] * out_steps, out_steps, info.get("dt", info["frame_dt"]))
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        return time.perf_counter() - start

    @staticmethod
    def _warn_about_the_floor(trainer, name: str, grid: int) -> None:
        """Say when the estimator cannot be near zero for the data's own frames: frames subsampled from a finer
        solve (the solver's discretisation is not the estimator's), or frames far apart (its time error)."""
        info = trainer.data.info
        if info.get("solve_resolution") not in (None, grid):
            trainer.log(f"Spectral-Refiner on {name}: the data were solved at {info['solve_resolution']} and are "
                        f"seen at {grid}; the estimator discretises on the {grid} grid, so even the solver's frames "
                        "have a residual (residual_of_targets): refinement moves towards the coarse-grid scheme")
        if info.get("frame_dt", 0) > 0.2:
            trainer.log(f"Spectral-Refiner on {name}: frames {info['frame_dt']:g} time units apart; the estimator's "
                        "time-discretisation error at that spacing is its floor (residual_of_targets); "
                        "experiment=navier_stokes_refiner records frames 0.1 apart")

    def _refine_sobolev(self, trainer) -> dict[str, Any]:
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
