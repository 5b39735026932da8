"""The one training loop: AMP, compile, accumulation, clipping, schedules, DDP, checkpoints, resume.

A :class:`Trainer` is built by :func:`kernelnn.training.run` from a Hydra config, but takes plain Python
objects, so it can also be driven from a notebook.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm.auto import tqdm

from kernelnn.layers.delta import delta_layers
from kernelnn.layers.kan import update_grids
from kernelnn.layers.quadratic import relinear_param_groups
from kernelnn.training import distributed as D
from kernelnn.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from kernelnn.training.errors import NonFiniteLossError
from kernelnn.training.metrics_log import MetricsLog

log = logging.getLogger("kernelnn.training")

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISIONS = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class TrainerOptions:
    """The ``trainer`` config group, validated by :func:`kernelnn.training.config.validate`."""

    epochs: int = 20
    batch_size: int = 20
    eval_batch_size: int = 100
    amp: str = "none"
    precision: str = "float32"  # float32 | float64 (parameters and floating data; e.g. L-BFGS to tight tolerances)
    compile: bool = False
    grad_clip: float | None = None
    grad_accum: int = 1
    monitor: str = "auto"
    monitor_mode: str = "auto"
    early_stopping_patience: int | None = None
    test_every: int = 1
    log_every: int = 10
    progress_bar: bool = True
    tensorboard: bool = True
    num_workers: int = 0
    quadratic_lr: float | None = None
    # Delta activation layers: loss += delta_rate * sum of their sparsity_loss() (0: statistics only).
    delta_rate: float = 0.0
    # KAN grids: update from the current batch every `every` optimizer steps during the first `until` steps of each
    # stage (null: always); refine every KAN layer to sizes[i] at the start of epochs[i] (0-based), which starts a
    # new stage: optimizer and scheduler restart and grid updates resume (pykan's fit-refine-fit recipe).
    grid_update: dict[str, Any] = field(default_factory=lambda: {"every": 0, "until": None})
    grid_refine: dict[str, Any] = field(default_factory=lambda: {"epochs": [], "sizes": []})


@dataclass
class TrainState:
    """Everything about progress that a checkpoint restores."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...`` without padding, so sharded evaluation counts each sample once."""

    def __init__(self, n: int, info: D.DistInfo) -> None:
        self.indices = list(range(info.rank, n, info.world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class Trainer:
    """Train ``model`` on ``train_set`` for a ``task``, evaluating on named ``eval_sets`` every epoch.

    Parameters
    ----------
    model : nn.Module
        The model, on CPU; the trainer moves it to ``device``.
    task : OperatorTask or ClassificationTask
        Provides ``loss(pred, target)`` and per-sample ``metrics(pred, target)``.
    make_optimizer : callable
        ``params -> Optimizer``.
    make_scheduler : callable
        ``(optimizer, total_steps=..., steps_per_epoch=...) -> LRScheduler``.
    output_dir : Path
        Where ``checkpoints/``, ``metrics.csv``, ``tensorboard/`` go (rank 0 writes).
    checkpoint_meta : dict
        Plain data stored in every checkpoint (config, model config, normalisation) for resuming and
        :func:`kernelnn.training.load_model`.
    callbacks : sequence
        Objects with optional ``on_epoch_start(trainer, epoch)`` / ``on_epoch_end(trainer, epoch, row)``.
    """

    def __init__(
        self,
        model: nn.Module,
        task,
        train_set: Dataset,
        eval_sets: dict[str, Dataset],
        make_optimizer: Callable,
        make_scheduler: Callable,
        options: TrainerOptions,
        output_dir: Path,
        device: torch.device,
        dist: D.DistInfo | None = None,
        seed: int = 0,
        checkpoint_meta: dict[str, Any] | None = None,
        callbacks: Sequence[Any] = (),
    ) -> None:
        self.options = options
        self.task = task
        self.device = device
        self.dist = dist = dist or D.DistInfo()
        self.seed = seed
        self.output_dir = Path(output_dir)
        self.checkpoint_dir = self.output_dir / "checkpoints"
        self.meta = checkpoint_meta or {}
        self.callbacks = list(callbacks)
        self.dtype = PRECISIONS[options.precision]
        self.model = model.to(device=device, dtype=self.dtype)
        self.amp_dtype = AMP_DTYPES[options.amp]

        per_rank = options.batch_size // dist.world_size
        self.train_sampler = DistributedSampler(
            train_set, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=seed
        )
        pin = device.type == "cuda"
        self.train_loader = DataLoader(train_set, batch_size=per_rank, sampler=self.train_sampler,
                                       num_workers=options.num_workers, pin_memory=pin)
        eval_per_rank = max(1, options.eval_batch_size // dist.world_size)
        self.eval_loaders = {
            name: DataLoader(ds, batch_size=eval_per_rank, sampler=ShardSampler(len(ds), dist),
                             num_workers=options.num_workers, pin_memory=pin)
            for name, ds in eval_sets.items()
        }

        self._wrap_model()
        self.make_optimizer, self.make_scheduler = make_optimizer, make_scheduler
        self.steps_per_epoch = math.ceil(len(self.train_loader) / options.grad_accum)
        self._build_optimizer(options.epochs)
        # Layers with a penalty of their own (ReLinear's shrinkage, RBF and KAN regularisers) add it to the loss.
        # A layer may say its penalty is off (``regularization_active = False``); those are skipped every step.
        self.regularized = [m for m in self.model.modules() if callable(getattr(m, "regularization", None))
                            and getattr(m, "regularization_active", True)]
        self.kan_layers = [m for m in self.model.modules() if callable(getattr(m, "update_grid", None))]
        self.delta_layers = delta_layers(self.model)
        self.scaler = torch.amp.GradScaler(device.type, enabled=options.amp == "fp16")
        self.state = TrainState()
        self.metrics_log = MetricsLog(self.output_dir, options.tensorboard) if dist.is_main else None
        self.monitor, self.monitor_higher = self._monitor(eval_sets)

    # ----------------------------------------------------------------------------------------- setup
    def _wrap_model(self) -> None:
        """DDP and compile wrappers around ``self.model`` (again after a grid refinement changes shapes)."""
        self.forward_model: nn.Module = self.model
        if self.dist.enabled and any(p.requires_grad for p in self.model.parameters()):
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward_model = DistributedDataParallel(self.model, device_ids=ids)
        if self.options.compile:
            self.forward_model = torch.compile(self.forward_model)

    def _build_optimizer(self, epochs: int) -> None:
        self.optimizer = self.make_optimizer(self._param_groups())
        self.lbfgs = isinstance(self.optimizer, torch.optim.LBFGS)
        self.scheduler = self.make_scheduler(self.optimizer, total_steps=max(1, epochs) * self.steps_per_epoch,
                                             steps_per_epoch=self.steps_per_epoch)

    def _refine_grids(self, epoch: int) -> None:
        """At a scheduled epoch, move every KAN layer to its finer grid and start a new optimizer stage."""
        refine = self.options.grid_refine
        if epoch not in refine["epochs"] or not self.kan_layers:
            return
        size = refine["sizes"][refine["epochs"].index(epoch)]
        for layer in self.kan_layers:
            layer.refine(size)
        self._wrap_model()
        self._build_optimizer(self.options.epochs - epoch)
        if self.dist.is_main:
            log.info("epoch %d: KAN grids refined to %d intervals (%d layers); optimizer restarted", epoch + 1, size,
                     len(self.kan_layers))

    def _stage_start(self) -> int:
        """Optimizer step at which the current grid stage began (the last refinement before this epoch)."""
        passed = [e for e in self.options.grid_refine["epochs"] if e <= self.state.epoch]
        return max(passed) * self.steps_per_epoch if passed else 0

    def _maybe_update_grids(self, x: torch.Tensor) -> None:
        every, until = self.options.grid_update["every"], self.options.grid_update.get("until")
        steps = self.state.step - self._stage_start()
        if not every or not self.kan_layers or steps % every or (until is not None and steps >= until):
            return
        update_grids(self.model, x)

    def _param_groups(self) -> list:
        """Trainable parameters; with ``quadratic_lr``, ReLinear's named groups (the optimizer's lr for the rest)."""
        if self.options.quadratic_lr is None:
            return [p for p in self.model.parameters() if p.requires_grad]
        return relinear_param_groups(self.model, None, self.options.quadratic_lr)

    def _monitor(self, eval_sets: dict[str, Dataset]) -> tuple[str, bool]:
        name = self.options.monitor
        if name == "auto":
            name = f"val/{self.task.main_metric}" if "val" in eval_sets else "train/loss"
        metric = name.rsplit("/", 1)[-1]
        mode = self.options.monitor_mode
        higher = (not self.task.lower_is_better.get(metric, True)) if mode == "auto" else mode == "max"
        return name, higher

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        """On the training device; floating tensors in the training precision (labels stay integers)."""
        return t.to(self.device, dtype=self.dtype if t.is_floating_point() else None, non_blocking=True)

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # ------------------------------------------------------------------------------------- training
    def fit(self) -> TrainState:
        """Train from the current state to ``options.epochs``; returns the final :class:`TrainState`."""
        opts = self.options
        try:
            while self.state.epoch < opts.epochs:
                epoch = self.state.epoch
                self._refine_grids(epoch)
                for cb in self.callbacks:
                    getattr(cb, "on_epoch_start", lambda *a: None)(self, epoch)
                start = time.perf_counter()
                for layer in self.delta_layers.values():
                    layer.reset_statistics()
                train_loss = self.train_epoch(epoch)
                train_time = time.perf_counter() - start
                row = {"epoch": epoch + 1, "step": self.state.step, "lr": self.optimizer.param_groups[0]["lr"],
                       "train/loss": train_loss, **self._delta_sparsity()}
                # Validation every epoch (it drives best.pt and early stopping); test sets every test_every
                # epochs and at the last one.
                with_tests = (epoch + 1) % opts.test_every == 0 or epoch + 1 == opts.epochs
                row.update(self.evaluate(None if with_tests else ["val"]))
                row["time/train_s"] = train_time
                row["time/eval_s"] = time.perf_counter() - start - train_time
                self.state.epoch = epoch + 1
                self.state.history.append(row)
                improved = self._track_best(row)
                self._save(["last.pt", "best.pt"] if improved else ["last.pt"])
                if self.metrics_log is not None:
                    self.metrics_log.write(self.state.history)
                if self.dist.is_main:
                    shown = "  ".join(f"{k}={v:.4g}" for k, v in row.items() if "/" in k and "time" not in k)
                    log.info("epoch %d/%d  %s  (train %.1f s, eval %.1f s)", epoch + 1, opts.epochs, shown,
                             row["time/train_s"], row["time/eval_s"])
                for cb in self.callbacks:
                    getattr(cb, "on_epoch_end", lambda *a: None)(self, epoch, row)
                patience = opts.early_stopping_patience
                if patience is not None and self.state.bad_epochs >= patience:
                    if self.dist.is_main:
                        log.info("early stopping: %s has not improved for %d epochs (best %.4g at epoch %s)",
                                 self.monitor, patience, self.state.best, self.state.best_epoch)
                    break
        finally:
            if self.metrics_log is not None:
                self.metrics_log.close()
        return self.state

    def train_epoch(self, epoch: int) -> float:
        """One pass over the training set; returns the mean training loss (over all ranks)."""
        opts = self.options
        self.model.train()
        self.train_sampler.set_epoch(epoch)
        n_batches = len(self.train_loader)
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{opts.epochs}", leave=False, dynamic_ncols=True,
                   disable=not (opts.progress_bar and self.dist.is_main))
        self.optimizer.zero_grad(set_to_none=True)
        for i, (x, y) in enumerate(self.train_loader):
            x, y = self._to_device(x), self._to_device(y)
            if i % opts.grad_accum == 0:
                self._maybe_update_grids(x)
            if self.lbfgs:
                loss_sum += self._lbfgs_step(x, y)
                self._after_step()
                bar.update()
                continue
            group_start = i - i % opts.grad_accum
            group_len = min(opts.grad_accum, n_batches - group_start)
            last_micro = i == group_start + group_len - 1
            sync = contextlib.nullcontext()
            if self.dist.enabled and not last_micro:
                sync = self.forward_model.no_sync() if hasattr(self.forward_model, "no_sync") else sync
            with sync:
                loss, objective = self._objective(x, y)
                self.scaler.scale(objective / group_len).backward()
            loss_sum += loss.detach()
            if last_micro:
                if opts.grad_clip is not None:
                    self.scaler.unscale_(self.optimizer)
                    nn.utils.clip_grad_norm_(self.model.parameters(), opts.grad_clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self._after_step()
            if (i + 1) % opts.log_every == 0 or i + 1 == n_batches:
                mean = self._check_finite(loss_sum / (i + 1), epoch)
                bar.set_postfix(loss=f"{mean:.4g}", lr=f"{self.optimizer.param_groups[0]['lr']:.3g}")
            bar.update()
        bar.close()
        total = D.all_reduce_sum(loss_sum.clone(), self.dist)
        return (total / (n_batches * self.dist.world_size)).item()

    def _objective(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self._autocast():
            pred = self.forward_model(x)
        loss = self.task.loss(pred.to(self.dtype), y)
        objective = loss + sum(m.regularization() for m in self.regularized) if self.regularized else loss
        if self.options.delta_rate > 0:
            objective = objective + self.options.delta_rate * sum(m.sparsity_loss()
                                                                  for m in self.delta_layers.values())
        return loss, objective

    def _delta_sparsity(self) -> dict[str, float]:
        """Fraction of zero deltas of each delta layer over the training epoch (counts summed over ranks)."""
        if not self.delta_layers:
            return {}
        counts = torch.stack([torch.stack([m.count_nonzero_delta, m.count_elements])
                              for m in self.delta_layers.values()]).to(self.device, torch.float64)
        counts = D.all_reduce_sum(counts, self.dist)
        return {f"train/delta_sparsity/{name}": 1 - (nonzero / total.clamp_min(1)).item()
                for name, (nonzero, total) in zip(self.delta_layers, counts, strict=True)}

    def _lbfgs_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One L-BFGS step on a batch (the optimizer re-evaluates the closure in its line search)."""
        losses: list[torch.Tensor] = []

        def closure() -> torch.Tensor:
            self.optimizer.zero_grad(set_to_none=True)
            loss, objective = self._objective(x, y)
            objective.backward()
            if self.options.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.options.grad_clip)
            losses.append(loss.detach())
            return objective

        self.optimizer.step(closure)
        return losses[0]  # the loss at the step's starting point, as for first-order optimizers

    def _after_step(self) -> None:
        self.scheduler.step()
        self.state.step += 1

    def _check_finite(self, mean_loss: torch.Tensor, epoch: int) -> float:
        """Stop every rank together, before any checkpoint is written, when the loss is NaN or inf."""
        bad = torch.tensor([0.0 if torch.isfinite(mean_loss) else 1.0], device=self.device)
        if D.all_reduce_sum(bad, self.dist).item() > 0:
            last = self.checkpoint_dir / "last.pt"
            where = (f"the last good checkpoint {str(last)!r} (epoch {self.state.epoch}) is intact; resume with "
                     "trainer.resume=auto" if last.exists() else "no checkpoint was written yet")
            raise NonFiniteLossError(
                f"training loss became {mean_loss.item()} in epoch {epoch + 1} (optimizer step {self.state.step}); "
                f"{where}, after lowering optim.lr or setting trainer.grad_clip"
            )
        return mean_loss.item()

    # ----------------------------------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(self, sets: Sequence[str] | None = None) -> dict[str, float]:
        """Mean per-sample metrics on each evaluation set, as ``{"<set>/<metric>": value}``."""
        self.model.eval()
        out: dict[str, float] = {}
        for name, loader in self.eval_loaders.items():
            if sets is not None and name not in sets:
                continue
            sums: dict[str, torch.Tensor] = {}
            count = torch.zeros((), device=self.device, dtype=torch.float64)
            for x, y in loader:
                x, y = self._to_device(x), self._to_device(y)
                with self._autocast():
                    pred = self.model(x)
                for metric, values in self.task.metrics(pred.to(self.dtype), y).items():
                    sums[metric] = sums.get(metric, 0) + values.double().sum()
                count += len(x)
            names = self.task.metric_names  # a rank whose shard is empty still joins the all-reduce
            packed = torch.stack([torch.as_tensor(sums.get(m, 0.0), device=self.device, dtype=torch.float64)
                                  for m in names] + [count])
            packed = D.all_reduce_sum(packed, self.dist)
            for m, value in zip(names, packed[:-1], strict=True):
                out[f"{name}/{m}"] = (value / packed[-1]).item()
            for m, (source, fn) in getattr(self.task, "derived_metrics", {}).items():
                out[f"{name}/{m}"] = fn(out[f"{name}/{source}"])
        return out

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        with torch.no_grad(), self._autocast():
            return self.model(self._to_device(x)).float()

    # ------------------------------------------------------------------------------ checkpointing
    def _track_best(self, row: dict[str, float]) -> bool:
        value = row.get(self.monitor)
        if value is None:
            raise KeyError(f"trainer.monitor={self.monitor!r} is not a logged metric; logged: "
                           f"{[k for k in row if '/' in k]}")
        best = self.state.best
        improved = best is None or (value > best if self.monitor_higher else value < best)
        if improved:
            self.state.best, self.state.best_epoch, self.state.bad_epochs = value, row["epoch"], 0
        else:
            self.state.bad_epochs += 1
        return improved

    def checkpoint_state(self, rng_states: list) -> dict[str, Any]:
        s = self.state
        return {
            "format": "kernelnn-checkpoint-1",
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": s.epoch, "step": s.step, "best": s.best, "best_epoch": s.best_epoch,
            "bad_epochs": s.bad_epochs, "history": s.history, "monitor": self.monitor,
            "world_size": self.dist.world_size, "rng": rng_states,
            **self.meta,
        }

    def _save(self, names: list[str]) -> None:
        """Write one checkpoint state under each of ``names`` (one RNG gather and one barrier for all)."""
        states = D.gather_objects(rng_state(), self.dist)  # every rank's RNG, so each resumes its own
        if self.dist.is_main:
            state = self.checkpoint_state(states)
            for name in names:
                save_checkpoint(state, self.checkpoint_dir / name)
        D.barrier(self.dist)

    def resume_from(self, path: Path) -> None:
        """Restore model, optimizer, scheduler, scaler, progress and RNG states from ``path``."""
        ckpt = load_checkpoint(path)
        self.model.load_state_dict(ckpt["model"])  # a refined KAN layer adopts its saved grid size here
        self._wrap_model()
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.state = TrainState(epoch=ckpt["epoch"], step=ckpt["step"], best=ckpt["best"],
                                best_epoch=ckpt["best_epoch"], bad_epochs=ckpt["bad_epochs"],
                                history=list(ckpt["history"]))
        rngs = ckpt["rng"]
        set_rng_state(rngs[self.dist.rank] if len(rngs) == self.dist.world_size else rngs[0])
        source_dir = Path(path).resolve().parent
        if self.dist.is_main and source_dir != self.checkpoint_dir.resolve():
            # Carry the run's best weights into this run's folder so best.pt stays meaningful.
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            if (source_dir / "best.pt").exists():
                shutil.copy2(source_dir / "best.pt", self.checkpoint_dir / "best.pt")
        D.barrier(self.dist)
        if self.dist.is_main:
            log.info("resumed from %s at epoch %d (step %d)", path, self.state.epoch, self.state.step)
