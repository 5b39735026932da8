"""``run(cfg)``: from a composed Hydra config to a trained model, its checkpoints, metrics and plots.

This file only composes: config -> data -> model -> trainer (with its plugins) -> report. Each step lives in its
own module (:mod:`.assemble`, :mod:`.trainer`, :mod:`.plugins`, :mod:`.checkpoint`, :mod:`.report`).
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException
from torch import nn

from kernelnn.data.checks import check_bundle
from kernelnn.training import distributed as D
from kernelnn.training import report, run_folder
from kernelnn.training.assemble import (
    build_data,
    build_model,
    check_model_on_data,
    instantiate_config,
    model_config,
    model_sizes,
    normalization_record,
    normalizing_wrapper,
)
from kernelnn.training.checkpoint import (
    check_resume_identity,
    find_resume_checkpoint,
    load_checkpoint,
    resume_identity,
)
from kernelnn.training.config import TrainerConfig, typed
from kernelnn.training.environment import seed_everything, select_device
from kernelnn.training.errors import ConfigError
from kernelnn.training.plugins import TrainingPlugin, build_plugins
from kernelnn.training.tasks import build_task
from kernelnn.training.trainer import Trainer, takes_closure


def resolve(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain containers (so no ``ListConfig`` reaches a module or a checkpoint)."""
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True, enum_to_str=True)
    except MissingMandatoryValue as err:
        raise ConfigError(f"config key {err.full_key} must be set (it has no default), e.g. "
                          f"{err.full_key}=...") from err
    except OmegaConfBaseException as err:
        raise ConfigError(f"config could not be resolved: {err}") from err


def import_user_modules(modules: list[str] | str) -> None:
    """Import the modules named by the config's ``imports``: a user's registrations (layers, models, plugins)."""
    for name in [modules] if isinstance(modules, str) else modules:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ConfigError(f"imports: module {name!r} could not be imported ({err}); is it on PYTHONPATH?") from err


def check_optimization(cfg: DictConfig, container: dict[str, Any]) -> None:
    """Optimizer and schedule settings, checked before any data is made: a finite rate and weight decay >= 0, then
    both built once on a stand-in parameter, so a setting the optimizer or schedule refuses fails now, named."""
    optim = container.get("optim") or {}
    for key in ("lr", "weight_decay"):
        value = optim.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"optim.{key}={value!r} must be a finite number >= 0")
    stand_in = nn.Parameter(torch.ones(2))
    optimizer = _trial("optim", optim, lambda: instantiate_config(cfg.optim, "optim")([stand_in]))
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(f"optim: {optim.get('_target_')} built a {type(optimizer).__name__}, not a "
                          "torch.optim.Optimizer")

    def closure():
        optimizer.zero_grad()
        loss = stand_in.square().sum()
        loss.backward()
        return loss

    # one step too: some settings fail only there (L-BFGS with history_size=0)
    _trial("optim", optim, lambda: optimizer.step(closure) if takes_closure(optimizer) else (closure(),
                                                                                              optimizer.step()))
    scheduler = _trial("scheduler", container.get("scheduler") or {},
                       lambda: instantiate_config(cfg.scheduler, "scheduler")(optimizer, total_steps=10,
                                                                              steps_per_epoch=2))
    target = (container.get("scheduler") or {}).get("_target_")
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise ConfigError(f"scheduler: {target} built a ReduceLROnPlateau, which steps on a metric; kernelnn steps "
                          "its schedule once per optimizer step (cosine, step, onecycle, constant, or an LRScheduler)")
    if not (callable(getattr(scheduler, "step", None)) and callable(getattr(scheduler, "state_dict", None))):
        raise ConfigError(f"scheduler: {target} built a {type(scheduler).__name__}, not a learning-rate schedule "
                          "(an object with step() and state_dict(), such as a torch LRScheduler)")


def _trial(group: str, settings: dict[str, Any], build: Callable[[], Any]) -> Any:
    try:
        return build()
    except (ValueError, TypeError, IndexError, RuntimeError, AttributeError) as err:
        if str(err).startswith(f"{group}."):  # kernelnn's own factories name the key
            raise ConfigError(str(err)) from err
        shown = {k: v for k, v in settings.items() if k not in ("_target_", "_partial_")}
        raise ConfigError(f"{group}: {settings.get('_target_')} refused the settings {shown}: {err}") from err


def check_normalize(normalize: Any) -> None:
    if normalize is None:
        return
    if not isinstance(normalize, dict) or set(normalize) - {"input", "output"}:
        raise ConfigError(f"normalize={normalize!r} must be a mapping with keys input and output (true or false)")
    for key, value in normalize.items():
        if not isinstance(value, bool):
            raise ConfigError(f"normalize.{key}={value!r} must be true or false")


def run_dir(output_dir: str | Path | None, info: D.DistInfo) -> Path:
    """``output_dir``, or the Hydra run's output folder; rank 0's on every rank."""
    if output_dir is None:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            raise ConfigError("run(cfg) outside a Hydra app needs output_dir=...")
        output_dir = HydraConfig.get().runtime.output_dir
    return Path(D.broadcast_object(str(output_dir), info))


def run(cfg: DictConfig, output_dir: str | Path | None = None,
        plugins: Sequence[TrainingPlugin] = ()) -> dict[str, Any]:
    """Train and evaluate the model that ``cfg`` describes; returns a summary dictionary.

    Writes ``checkpoints/{last,best}.pt``, ``metrics.csv``, ``tensorboard/`` and ``plots/*.png`` under
    ``output_dir`` (default: the Hydra run's output directory). ``plugins`` are added to those the config's
    ``plugins`` section switches on. Every rank of a ``torchrun`` launch calls this; only rank 0 writes.
    """
    held = run_folder.HeldLog()  # the log so far, for train.log once the run holds its folder
    try:
        return _run(cfg, output_dir, plugins, held)
    finally:
        held.close()


def _run(cfg: DictConfig, output_dir: str | Path | None, plugins: Sequence[TrainingPlugin],
         held: run_folder.HeldLog) -> dict[str, Any]:
    container = resolve(cfg)
    import_user_modules(container.get("imports") or [])
    opts = typed(container["trainer"], TrainerConfig, "trainer")
    plugins = [*build_plugins(container.get("plugins")), *plugins]
    info = D.init_from_env()
    out = run_dir(output_dir, info)
    if opts.batch_size % info.world_size:
        raise ConfigError(f"trainer.batch_size={opts.batch_size} is the global batch and must be divisible by the "
                          f"number of processes ({info.world_size})")
    seed = container.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed={seed!r} must be an integer")
    check_optimization(cfg, container)
    check_normalize(container.get("normalize"))
    seed_everything(seed, opts.deterministic)
    device = select_device(opts.device, info)

    bundle = build_data(cfg, info)
    try:
        task = build_task(bundle.task, opts.loss, bundle.periodic, bundle.dim, loss_weights=bundle.loss_weights,
                          field_layout=bundle.field_layout, sphere_grid=bundle.sphere_grid)
        check_bundle(bundle, relative_loss=getattr(task, "relative", False))
    except ValueError as err:
        raise ConfigError(str(err)) from err
    model_cfg = model_config(container, bundle)
    torch.manual_seed(seed)  # initial weights independent of how much randomness data generation used
    model = build_model(model_cfg)
    check_model_on_data(model, bundle)
    model = normalizing_wrapper(model, bundle, container.get("normalize") or {})

    meta = {"model_config": model_cfg, "normalization": normalization_record(model), "config": container}
    with run_folder.claim(out, opts.resume, info, held):
        trainer = Trainer(
            model, task, bundle.train, bundle.eval_sets(),
            make_optimizer=instantiate_config(cfg.optim, "optim"),
            make_scheduler=instantiate_config(cfg.scheduler, "scheduler"),
            options=opts, output_dir=out, device=device, dist=info, seed=seed, checkpoint_meta=meta,
            plugins=plugins, data=bundle, test_sets=list(bundle.tests),
        )
        resume = resume_checkpoint(opts.resume, out, resume_identity(**meta), container, info)
        if resume is not None:
            trainer.resume_from(*resume)
        if info.is_main:  # once the run is known to be this folder's (a refused resume leaves the record as it was)
            run_folder.write_hydra_record(out, cfg)

        sizes = model_sizes(model)
        report.log_start(bundle, model_cfg.get("_target_"), sizes, device, info, out)
        start, epochs_before = time.perf_counter(), trainer.state.epoch
        trainer.fit()
        summary = report.summarize(trainer, bundle, sizes, time.perf_counter() - start,
                                   trainer.state.epoch - epochs_before)
        summary["plugins"] = {}
        for plugin in trainer.plugins:
            stage = plugin.after_fit(trainer)
            if stage is not None:
                summary["plugins"][plugin.name] = stage
    return summary


def resume_checkpoint(resume: str | None, out: Path, identity: dict[str, Any], config: dict[str, Any],
                      info: D.DistInfo) -> tuple[dict[str, Any], Path, list[str]] | None:
    """The checkpoint to resume from (chosen by rank 0, so all ranks agree), its path, and the settings this run
    changes (checked against this run: only those a resume may change)."""
    found = find_resume_checkpoint(resume, out, identity) if info.is_main else None
    path = D.broadcast_object(None if found is None else str(found[0]), info)
    if path is None:
        return None
    ckpt = found[1] if found is not None else load_checkpoint(path)  # read once per rank
    if not isinstance(ckpt, dict):
        raise ConfigError(f"trainer.resume: {path!r} is not a kernelnn training checkpoint")
    changes = check_resume_identity(Path(path), ckpt, identity, config)
    return ckpt, Path(path), changes
