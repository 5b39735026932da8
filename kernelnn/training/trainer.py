"""The one training loop: AMP, compile, accumulation, clipping, schedules, DDP, checkpoints, resume.

The loop knows no layer family: what a family adds to training (penalties, parameter groups, schedules that
reshape layers, extra stages) comes in through :class:`~kernelnn.training.plugins.TrainingPlugin` hooks. A
:class:`Trainer` is built by :func:`kernelnn.training.run` from a Hydra config, but takes plain Python objects, so
it can also be driven from a notebook.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, Sampler, TensorDataset
from tqdm.auto import tqdm

from kernelnn.training import distributed as D
from kernelnn.training.checkpoint import (
    TRAINING_FORMAT,
    WEIGHTS_FORMAT,
    check_training_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from kernelnn.training.config import Amp, Precision, TrainerConfig
from kernelnn.training.errors import ConfigError, NonFiniteLossError
from kernelnn.training.metrics_log import MetricsLog
from kernelnn.training.plugins.base import TrainingPlugin

log = logging.getLogger("kernelnn.training")

AMP_DTYPES = {Amp.none: None, Amp.bf16: torch.bfloat16, Amp.fp16: torch.float16}
PRECISIONS = {Precision.float32: torch.float32, Precision.float64: torch.float64}


@dataclass
class TrainState:
    """Everything about progress that a checkpoint restores."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per epoch (metrics.csv)
    steps: list[dict[str, Any]] = field(default_factory=list)  # training loss every log_every steps (plots)
    resumes: list[dict[str, Any]] = field(default_factory=list)  # each resume: its epoch and the settings it changed


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...`` without padding, so sharded evaluation counts each sample once."""

    def __init__(self, n: int, info: D.DistInfo) -> None:
        self.indices = list(range(info.rank, n, info.world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def batch_loader(dataset: Dataset, sampler: Sampler[int], batch_size: int, **options) -> DataLoader:
    """A loader of ``batch_size`` samples in ``sampler``'s order. A :class:`TensorDataset` is indexed a whole batch at
    a time (one gather per tensor) rather than sample by sample and stacked: the same batches, but at 2^14 points of
    a field per batch the per-sample path took longer than the training step itself. Only the exact class: a
    subclass may index differently. A dataset with a ``collate`` method joins its own samples (e.g. atomic systems of
    different sizes, concatenated without padding)."""
    if hasattr(dataset, "collate"):
        options = {"collate_fn": dataset.collate, **options}
    if type(dataset) is TensorDataset:
        return DataLoader(dataset, batch_size=None, sampler=BatchSampler(sampler, batch_size, drop_last=False),
                          **options)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, **options)


def takes_closure(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer.step`` must be given a closure that re-evaluates the objective (L-BFGS and the like):
    such optimizers run whole steps, so they cannot accumulate micro-batches or step through a GradScaler."""
    if isinstance(optimizer, torch.optim.LBFGS):
        return True
    closure = inspect.signature(optimizer.step).parameters.get("closure")
    return closure is not None and closure.default is inspect.Parameter.empty


class Trainer:
    """Train ``model`` on ``train_set`` for a ``task``, evaluating on named ``eval_sets`` every epoch.

    Parameters
    ----------
    model : nn.Module
        The model, on CPU; the trainer moves it to ``device``.
    task : OperatorTask, ClassificationTask, RegressionTask or EnergyForcesTask
        Provides ``loss(pred, target)`` and per-sample ``metrics(pred, target)``.
    make_optimizer : callable
        ``params -> Optimizer``.
    make_scheduler : callable
        ``(optimizer, total_steps=..., steps_per_epoch=...) -> LRScheduler``.
    options : TrainerConfig
        The ``trainer`` config group.
    output_dir : Path
        Where ``checkpoints/``, ``metrics.csv``, ``tensorboard/`` go (rank 0 writes).
    checkpoint_meta : dict
        Plain data stored in every checkpoint (config, model config, normalisation) for resuming and
        :func:`kernelnn.training.load_model`.
    plugins : sequence of TrainingPlugin
        Training behaviour beyond the loop (see :mod:`kernelnn.training.plugins.base` for the hooks).
    data : DataBundle, optional
        The data the sets come from, for plugins that need to know more about it.
    test_sets : sequence of str, optional
        The names of ``eval_sets`` that :meth:`test_best` evaluates (default: all but ``"val"``).
    """

    def __init__(
        self,
        model: nn.Module,
        task,
        train_set: Dataset,
        eval_sets: dict[str, Dataset],
        make_optimizer: Callable,
        make_scheduler: Callable,
        options: TrainerConfig,
        output_dir: Path,
        device: torch.device,
        dist: D.DistInfo | None = None,
        seed: int = 0,
        checkpoint_meta: dict[str, Any] | None = None,
        plugins: Sequence[TrainingPlugin] = (),
        data: Any = None,
        test_sets: Sequence[str] | None = None,
    ) -> None:
        self._init_args = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.options = options
        self.task = task
        self.device = device
        self.dist = dist = dist or D.DistInfo()
        self.seed = seed
        self.data = data
        self.train_set = train_set
        self.output_dir = Path(output_dir)
        self.checkpoint_dir = self.output_dir / "checkpoints"
        self.meta = checkpoint_meta or {}
        self.plugins = list(plugins)
        self.test_sets = list(test_sets) if test_sets is not None else [k for k in eval_sets if k != "val"]
        self.dtype = PRECISIONS[options.precision]
        self.model = model.to(device=device, dtype=self.dtype)
        self.amp_dtype = AMP_DTYPES[options.amp]

        self.use_train_set(train_set)
        pin = device.type == "cuda"
        eval_per_rank = max(1, options.eval_batch_size // dist.world_size)
        self.eval_loaders = {
            name: batch_loader(ds, ShardSampler(len(ds), dist), eval_per_rank, num_workers=options.num_workers,
                               pin_memory=pin)
            for name, ds in eval_sets.items()
        }
        self.monitor, self.monitor_higher = self._monitor(eval_sets)
        self.state = TrainState()

        names = []
        for plugin in self.plugins:
            plugin.name = plugin.name or type(plugin).__name__
            if plugin.name in names:
                raise ConfigError(f"two training plugins are named {plugin.name!r}; names must be unique (they key "
                                  "the plugins' states in checkpoints and their results in the summary)")
            names.append(plugin.name)
        for plugin in self.plugins:  # every check before any (possibly slow) set-up
            plugin.check(self)
        for plugin in self.plugins:
            plugin.setup(self)
        self._wrap_model()
        self.make_optimizer, self.make_scheduler = make_optimizer, make_scheduler
        self._build_optimizer(options.epochs)
        if options.time_limit is not None and getattr(make_scheduler, "func", make_scheduler).__name__ != "constant":
            self.log(f"trainer.time_limit={options.time_limit:g} s: the learning-rate schedule spans trainer.epochs="
                     f"{options.epochs}; a run the time limit stops ends it early (scheduler=constant avoids this)")
        self.scaler = torch.amp.GradScaler(device.type, enabled=options.amp == Amp.fp16)
        self.metrics_log = MetricsLog(self.output_dir, options.tensorboard) if dist.is_main else None

    def derive(self, **changes: Any) -> Trainer:
        """A new Trainer for the same model and data with some constructor arguments changed (e.g. a fine-tuning
        stage with another task and ``output_dir``); it gets no plugins unless ``plugins=`` is given."""
        return Trainer(**{**self._init_args, "plugins": (), **changes})

    # ----------------------------------------------------------------------------------------- setup
    def _wrap_model(self) -> None:
        """DDP and compile wrappers around ``self.model`` (again after a plugin changes parameter shapes)."""
        self.forward_model: nn.Module = self.model
        if self.dist.enabled and any(p.requires_grad for p in self.model.parameters()):
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward_model = DistributedDataParallel(self.model, device_ids=ids)
        if self.options.compile:
            self.forward_model = torch.compile(self.forward_model)

    def _build_optimizer(self, epochs: int) -> None:
        groups = [g for p in self.plugins if (g := p.param_groups(self.model)) is not None]
        if len(groups) > 1:
            raise ConfigError("two training plugins both define the optimizer's parameter groups: "
                              f"{[type(p).__name__ for p in self.plugins if p.param_groups(self.model) is not None]}")
        params = groups[0] if groups else [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = self.make_optimizer(params)
        self.closure_steps = takes_closure(self.optimizer)
        if self.closure_steps and self.options.grad_accum != 1:
            raise ConfigError(f"trainer.grad_accum={self.options.grad_accum}: {type(self.optimizer).__name__} "
                              "re-evaluates its batch in a line search and cannot accumulate micro-batches; use 1")
        if self.closure_steps and self.options.amp == Amp.fp16:
            raise ConfigError(f"trainer.amp=fp16 needs gradient scaling, which {type(self.optimizer).__name__} does "
                              "not support; use none or bf16")
        self.scheduler = self.make_scheduler(self.optimizer, total_steps=max(1, epochs) * self.steps_per_epoch,
                                             steps_per_epoch=self.steps_per_epoch)

    def new_stage(self, epochs: int) -> None:
        """Start a new optimizer stage of ``epochs`` epochs: wrappers, optimizer and schedule built afresh (after a
        plugin replaced parameters, e.g. resized a layer)."""
        self._wrap_model()
        self._build_optimizer(epochs)

    def _monitor(self, eval_sets: dict[str, Dataset]) -> tuple[str, bool]:
        name = self.options.monitor
        if name == "auto":
            name = f"val/{self.task.main_metric}" if "val" in eval_sets else "train/loss"
        split, _, metric = name.partition("/")
        if name != "train/loss":
            if split not in eval_sets:
                raise ConfigError(f"trainer.monitor={name!r} names no evaluation set; sets: {list(eval_sets)}")
            metrics = [*self.task.metric_names, *getattr(self.task, "derived_metrics", {})]
            if metric not in metrics:
                raise ConfigError(f"trainer.monitor={name!r}: the {split} set has no metric {metric!r}; metrics: "
                                  f"{metrics} (or monitor train/loss)")
            if split in self.test_sets and self.options.test_every != 1:
                raise ConfigError(f"trainer.monitor={name!r} is a test set, evaluated every trainer.test_every="
                                  f"{self.options.test_every} epochs; monitor val/{metric}, or set "
                                  "trainer.test_every=1")
        mode = self.options.monitor_mode.value
        higher = (not self.task.lower_is_better.get(metric, True)) if mode == "auto" else mode == "max"
        return name, higher

    def _to_device(self, t: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """On the training device; floating tensors in the training precision (labels stay integers). A batch's
        input may be several tensors (e.g. functions and query points), passed to the model as arguments; targets
        (and predictions) may be named tensors, a dict, which the task reads."""
        if isinstance(t, list | tuple):
            return tuple(self._to_device(v) for v in t)
        if isinstance(t, dict):
            return {k: self._to_device(v) for k, v in t.items()}
        return t.to(self.device, dtype=self.dtype if t.is_floating_point() else None, non_blocking=True)

    @staticmethod
    def _cast(pred: torch.Tensor | dict[str, torch.Tensor], dtype: torch.dtype):
        """A prediction (a tensor, or a dict of named tensors) with its floating tensors in ``dtype``."""
        if isinstance(pred, dict):
            return {k: v.to(dtype) if v.is_floating_point() else v for k, v in pred.items()}
        return pred.to(dtype)

    @staticmethod
    def _call(model: nn.Module, x: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
        return model(*x) if isinstance(x, tuple) else model(x)

    def use_train_set(self, train_set: Dataset) -> None:
        """Train on ``train_set`` instead (a plugin's :meth:`~TrainingPlugin.setup` may call this, before the
        optimizer and schedule are sized): sampler, loader and steps per epoch are rebuilt."""
        opts, dist = self.options, self.dist
        self.train_set = train_set
        self.train_sampler = DistributedSampler(train_set, num_replicas=dist.world_size, rank=dist.rank,
                                                shuffle=True, seed=self.seed)
        self.train_loader = batch_loader(train_set, self.train_sampler, opts.batch_size // dist.world_size,
                                         num_workers=opts.num_workers, pin_memory=self.device.type == "cuda")
        self.steps_per_epoch = math.ceil(len(self.train_loader) / opts.grad_accum)

    def first_inputs(self, n: int) -> torch.Tensor:
        """The first ``n`` training inputs (in dataset order), on the device, for data-dependent set-up."""
        collate = getattr(self.train_set, "collate", None)
        x = next(iter(DataLoader(self.train_set, batch_size=n, **({"collate_fn": collate} if collate else {}))))[0]
        return self._to_device(x)

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def log(self, message: str) -> None:
        """Log ``message`` on rank 0."""
        if self.dist.is_main:
            log.info(message)

    # ------------------------------------------------------------------------------------- training
    def fit(self) -> TrainState:
        """Train from the current state to ``options.epochs``; returns the final :class:`TrainState`."""
        opts = self.options
        for plugin in self.plugins:
            plugin.on_fit_start(self)
        try:
            while self.state.epoch < opts.epochs and not self._time_is_up():  # a resumed run may be out of time
                epoch = self.state.epoch
                for plugin in self.plugins:
                    plugin.on_epoch_start(self, epoch)
                lr = self.optimizer.param_groups[0]["lr"]  # the rate the epoch starts with
                start = time.perf_counter()
                train_loss = self.train_epoch(epoch)
                train_time = time.perf_counter() - start
                row = {"epoch": epoch + 1, "step": self.state.step, "lr": lr, "train/loss": train_loss}
                for plugin in self.plugins:
                    row.update(plugin.epoch_metrics(self))
                # Validation every epoch (it drives best.pt and early stopping); test sets every test_every
                # epochs and at the last one.
                with_tests = (epoch + 1) % opts.test_every == 0 or epoch + 1 == opts.epochs
                row.update(self.evaluate(None if with_tests else ["val"]))
                row["time/train_s"] = train_time
                row["time/eval_s"] = time.perf_counter() - start - train_time
                self.state.epoch = epoch + 1
                self.state.history.append(row)
                improved = self._track_best(row)
                self._save(best=improved)
                if self.metrics_log is not None:
                    self.metrics_log.write(self.state.history)
                shown = "  ".join(f"{k}={v:.4g}" for k, v in row.items() if "/" in k and "time" not in k)
                self.log(f"epoch {epoch + 1}/{opts.epochs}  {shown}  (train {train_time:.1f} s, eval "
                         f"{row['time/eval_s']:.1f} s)")
                for plugin in self.plugins:
                    plugin.on_epoch_end(self, epoch, row)
                if self.state.epoch < opts.epochs and self._time_is_up():
                    break
                patience = opts.early_stopping_patience
                if patience is not None and self.state.bad_epochs >= patience:
                    self.log(f"early stopping: {self.monitor} has not improved for {patience} epochs (best "
                             f"{self.state.best:.4g} at epoch {self.state.best_epoch})")
                    break
        finally:
            if self.metrics_log is not None:
                self.metrics_log.close()
        return self.state

    def _time_is_up(self) -> bool:
        """Whether the recorded training time (every epoch so far, resumed ones too) has reached
        ``trainer.time_limit``: decided on rank 0 and broadcast, so no rank starts an epoch the others skip."""
        limit = self.options.time_limit
        if limit is None:
            return False
        trained = sum(row.get("time/train_s", 0.0) for row in self.state.history)
        up = D.broadcast_object(trained >= limit, self.dist)
        if up:
            self.log(f"time limit: {trained:.1f} s of training reached trainer.time_limit={limit:g} s after epoch "
                     f"{self.state.epoch}")
        return up

    def train_epoch(self, epoch: int) -> float:
        """One pass over the training set; returns the mean training loss (over all ranks)."""
        opts = self.options
        self.model.train()
        self.train_sampler.set_epoch(epoch)
        n_batches = len(self.train_loader)
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        window = (torch.zeros((), device=self.device, dtype=torch.float64), 0)  # loss since the last record
        bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{opts.epochs}", leave=False, dynamic_ncols=True,
                   disable=not (opts.progress_bar and self.dist.is_main))
        self.optimizer.zero_grad(set_to_none=True)
        for i, (x, y) in enumerate(self.train_loader):
            x, y = self._to_device(x), self._to_device(y)
            if i % opts.grad_accum == 0:
                for plugin in self.plugins:
                    plugin.on_step_start(self, x)
            if self.closure_steps:
                loss = self._closure_step(x, y)
                self._after_step()
            else:
                loss = self._accumulating_step(x, y, i, n_batches)
            loss_sum += loss
            window = (window[0] + loss, window[1] + 1)
            if (i + 1) % opts.log_every == 0 or i + 1 == n_batches:
                mean = self._check_finite(loss_sum / (i + 1), epoch)
                self.state.steps.append({"step": self.state.step, "epoch": epoch + (i + 1) / n_batches,
                                         "loss": (window[0] / window[1]).item()})
                window = (torch.zeros_like(window[0]), 0)
                bar.set_postfix(loss=f"{mean:.4g}", lr=f"{self.optimizer.param_groups[0]['lr']:.3g}")
            bar.update()
        bar.close()
        total = D.all_reduce_sum(loss_sum.clone(), self.dist)
        return (total / (n_batches * self.dist.world_size)).item()

    def _accumulating_step(self, x: torch.Tensor, y: torch.Tensor, i: int, n_batches: int) -> torch.Tensor:
        """Forward and backward of micro-batch ``i``; the optimizer steps after the last one of its group."""
        opts = self.options
        group_start = i - i % opts.grad_accum
        group_len = min(opts.grad_accum, n_batches - group_start)
        last_micro = i == group_start + group_len - 1
        sync = contextlib.nullcontext()
        if self.dist.enabled and not last_micro and hasattr(self.forward_model, "no_sync"):
            sync = self.forward_model.no_sync()
        with sync:
            loss, objective = self._objective(x, y)
            self.scaler.scale(objective / group_len).backward()
        if last_micro:
            if opts.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), opts.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            self._after_step()
        return loss.detach()

    def _objective(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The task loss, and the objective: the loss plus every plugin's loss terms."""
        with self._autocast():
            pred = self._call(self.forward_model, x)
        loss = self.task.loss(self._cast(pred, self.dtype), y)
        objective = loss
        for plugin in self.plugins:
            for term in plugin.loss_terms(self).values():
                objective = objective + term
        return loss, objective

    def _closure_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One step of an optimizer that re-evaluates the batch through a closure (its line search)."""
        losses: list[torch.Tensor] = []

        def closure() -> torch.Tensor:
            self.optimizer.zero_grad(set_to_none=True)
            loss, objective = self._objective(x, y)
            objective.backward()
            if self.options.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.options.grad_clip)
            losses.append(loss.detach())
            if self.dist.enabled:  # DDP averages the gradients: every rank's line search must see one objective
                return D.all_reduce_sum(objective.detach().clone(), self.dist) / self.dist.world_size
            return objective

        self.optimizer.step(closure)
        return losses[0]  # the loss at the step's starting point, as for first-order optimizers

    def _after_step(self) -> None:
        self.scheduler.step()
        self.state.step += 1
        for plugin in self.plugins:
            plugin.on_step_end(self)

    def _check_finite(self, mean_loss: torch.Tensor, epoch: int) -> float:
        """Stop every rank together, before any checkpoint is written, when the loss is NaN or inf."""
        bad = torch.tensor([0.0 if torch.isfinite(mean_loss) else 1.0], device=self.device)
        if D.all_reduce_sum(bad, self.dist).item() > 0:
            last = self.checkpoint_dir / "last.pt"
            advice = (f"the last good checkpoint (epoch {self.state.epoch}) is intact: continue with "
                      f"trainer.resume={last} and a lower optim.lr or trainer.grad_clip set" if last.exists()
                      else "no checkpoint was written yet: start a new run with a lower optim.lr or "
                      "trainer.grad_clip set")
            raise NonFiniteLossError(f"training loss became {mean_loss.item()} in epoch {epoch + 1} (optimizer step "
                                     f"{self.state.step}); {advice}")
        return mean_loss.item()

    # ----------------------------------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(self, sets: Sequence[str] | None = None) -> dict[str, float]:
        """Mean per-sample metrics on each evaluation set, as ``{"<set>/<metric>": value}``."""
        self.model.eval()
        out: dict[str, float] = {}
        chosen = {k: v for k, v in self.eval_loaders.items() if sets is None or k in sets}
        bar = tqdm(total=sum(len(v) for v in chosen.values()), desc="evaluating", leave=False, dynamic_ncols=True,
                   disable=not (self.options.progress_bar and self.dist.is_main))
        for name, loader in chosen.items():
            sums: dict[str, torch.Tensor] = {}
            count = torch.zeros((), device=self.device, dtype=torch.float64)
            bar.set_postfix(set=name)
            for x, y in loader:
                x, y = self._to_device(x), self._to_device(y)
                with self._autocast():
                    pred = self._call(self.model, x)
                for metric, values in self.task.metrics(self._cast(pred, self.dtype), y).items():
                    sums[metric] = sums.get(metric, 0) + values.double().sum()
                count += len(y) if isinstance(y, torch.Tensor) else len(values)  # named targets: per-sample metrics
                bar.update()
            names = self.task.metric_names  # a rank whose shard is empty still joins the all-reduce
            packed = torch.stack([torch.as_tensor(sums.get(m, 0.0), device=self.device, dtype=torch.float64)
                                  for m in names] + [count])
            packed = D.all_reduce_sum(packed, self.dist)
            for m, value in zip(names, packed[:-1], strict=True):
                out[f"{name}/{m}"] = (value / packed[-1]).item()
            for m, (source, fn) in getattr(self.task, "derived_metrics", {}).items():
                out[f"{name}/{m}"] = fn(out[f"{name}/{source}"])
        bar.close()
        return out

    def test_best(self) -> dict[str, float]:
        """Load the best weights (``best.pt``, when one was written) and evaluate the test sets."""
        best = self.checkpoint_dir / "best.pt"
        if best.exists():
            self.model.load_state_dict(load_checkpoint(best)["model"])
        return self.evaluate(sets=self.test_sets)

    def predict(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        self.model.eval()
        with torch.no_grad(), self._autocast():
            return self._cast(self._call(self.model, self._to_device(x)), torch.float32)

    # ------------------------------------------------------------------------------ checkpointing
    def _track_best(self, row: dict[str, float]) -> bool:
        value = row.get(self.monitor)
        if value is None:
            raise ConfigError(f"trainer.monitor={self.monitor!r} is not a logged metric; logged: "
                              f"{[k for k in row if '/' in k]}")
        best = self.state.best
        improved = best is None or (value > best if self.monitor_higher else value < best)
        if improved:
            self.state.best, self.state.best_epoch, self.state.bad_epochs = value, row["epoch"], 0
        else:
            self.state.bad_epochs += 1
        return improved

    def weights_state(self) -> dict[str, Any]:
        """What inference and best-tracking need (``best.pt``): the weights, where training stood, the meta data."""
        s = self.state
        return {**self.meta, "format": WEIGHTS_FORMAT, "model": self.model.state_dict(), "epoch": s.epoch,
                "step": s.step, "best": s.best, "best_epoch": s.best_epoch, "monitor": self.monitor}

    def checkpoint_state(self, rng_states: list) -> dict[str, Any]:
        """Everything a resumed run needs (``last.pt``)."""
        s = self.state
        return {
            **self.weights_state(),
            "format": TRAINING_FORMAT,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "bad_epochs": s.bad_epochs, "history": s.history, "steps": s.steps, "resumes": s.resumes,
            "world_size": self.dist.world_size, "rng": rng_states,
            "plugins": {p.name: p.state_dict() for p in self.plugins},
        }

    def _save(self, best: bool) -> None:
        """Write ``last.pt`` (and the slim ``best.pt`` when the monitored metric improved)."""
        states = D.gather_objects(rng_state(), self.dist)  # every rank's RNG, so each resumes its own
        if self.dist.is_main:  # best.pt first: last.pt never points to a best epoch whose weights are not on disk
            if best:
                save_checkpoint(self.weights_state(), self.checkpoint_dir / "best.pt")
            save_checkpoint(self.checkpoint_state(states), self.checkpoint_dir / "last.pt", keep_previous=True)
        D.barrier(self.dist)

    def resume_from(self, ckpt: dict[str, Any], path: Path, changes: Sequence[str] = ()) -> None:
        """Restore model, optimizer, scheduler, scaler, progress, plugin and RNG states from the training
        checkpoint ``ckpt`` (loaded from ``path``). Resumed into another folder, the run's ``best.pt`` is carried
        over and its ``last.pt`` and ``metrics.csv`` are written there at once.

        The optimizer keeps its saved state (moments, step counts) but takes its settings (rate, decay, betas, ...)
        from this run's config, and the schedule is rebuilt for this run's ``epochs`` and replayed to the saved step:
        so a resumed run with a new rate, schedule or length trains as configured. ``changes`` (``key: old -> new``)
        are recorded in the checkpoint's ``resumes`` and logged."""
        if not isinstance(ckpt, dict) or ckpt.get("format") != TRAINING_FORMAT:
            raise ConfigError(f"trainer.resume: {str(path)!r} is not a kernelnn training checkpoint (best.pt holds "
                              "the best weights only; resume from last.pt)")
        check_training_checkpoint(ckpt, path)
        if ckpt["epoch"] > self.options.epochs:
            raise ConfigError(f"trainer.epochs={self.options.epochs}: the checkpoint {str(path)!r} has trained "
                              f"{ckpt['epoch']} epochs already; resume with trainer.epochs >= {ckpt['epoch']}")
        params = [id(p) for p in self.model.parameters()]
        self.model.load_state_dict(ckpt["model"])  # a layer resized in training adopts its saved size here
        self.state = TrainState(epoch=ckpt["epoch"], step=ckpt["step"], best=ckpt["best"],
                                best_epoch=ckpt["best_epoch"], bad_epochs=ckpt["bad_epochs"],
                                history=list(ckpt["history"]), steps=list(ckpt.get("steps", [])),
                                resumes=list(ckpt.get("resumes", [])))
        saved = ckpt.get("plugins", {})
        for plugin in self.plugins:
            if plugin.name in saved:
                plugin.load_state_dict(saved[plugin.name])
        if [id(p) for p in self.model.parameters()] != params:
            self.new_stage(self.options.epochs)  # loading replaced parameters: the optimizer must hold the new ones
        else:
            self._wrap_model()
        for plugin in self.plugins:
            plugin.on_load_checkpoint(self, ckpt)
        self._restore_optimization(ckpt, path)
        planned = (ckpt.get("config") or {}).get("trainer", {}).get("epochs")
        if isinstance(planned, int) and planned != self.options.epochs:
            changes = [*changes, f"trainer.epochs: {planned} -> {self.options.epochs} (the schedule re-planned for "
                                 "the new length)"]
        if changes:
            self.state.resumes.append({"epoch": self.state.epoch, "changes": list(changes)})
            self.log(f"resumed at epoch {self.state.epoch} with changed settings: " + "; ".join(changes))
        rngs = ckpt["rng"]
        try:
            set_rng_state(rngs[self.dist.rank] if len(rngs) == self.dist.world_size else rngs[0])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise ConfigError(f"trainer.resume: checkpoint {str(path)!r} is malformed: its RNG state cannot be "
                              f"restored ({type(err).__name__}: {err})") from err
        source_dir = Path(path).resolve().parent
        if source_dir != self.checkpoint_dir.resolve():
            if self.dist.is_main and (source_dir / "best.pt").exists():
                self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source_dir / "best.pt", self.checkpoint_dir / "best.pt")
            self._save(best=False)
            if self.metrics_log is not None:
                self.metrics_log.write(self.state.history)
        D.barrier(self.dist)
        self.log(f"resumed from {path} at epoch {self.state.epoch} (step {self.state.step})")

    def _restore_optimization(self, ckpt: dict[str, Any], path: Path) -> None:
        """Optimizer state from ``ckpt`` with this run's settings; the schedule replayed to the saved step."""
        configured = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
        saved_schedule = ckpt["scheduler"]
        replay = isinstance(self.scheduler, LRScheduler)  # step-counting: rebuilt, then replayed to the saved step
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scaler.load_state_dict(ckpt["scaler"])
            if not replay:  # a user's schedule of another kind restores itself
                self.scheduler.load_state_dict(saved_schedule)
            elif "last_epoch" not in saved_schedule:
                raise KeyError("the saved schedule has no step count (last_epoch)")
        except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as err:
            raise ConfigError(f"trainer.resume: the optimizer / schedule state in {str(path)!r} does not fit this "
                              f"run's optimizer and schedule ({type(err).__name__}: {err})") from err
        for group, settings in zip(self.optimizer.param_groups, configured, strict=True):
            group.update(settings)  # the rate, decay, ... this run is configured with (as at step 0 of its schedule)
        if replay:
            steps = saved_schedule["last_epoch"]
            with warnings.catch_warnings():  # stepping a schedule without optimizer steps is the point here
                warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*")
                try:
                    for _ in range(steps):
                        self.scheduler.step()
                except ValueError as err:  # a fixed-length schedule (one-cycle) shorter than the steps taken
                    raise ConfigError(f"trainer.resume: the schedule cannot be replayed to the checkpoint's step "
                                      f"{steps}: {err}") from err
