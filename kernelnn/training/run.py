"""``run(cfg)``: from a composed Hydra config to a trained model, its checkpoints, metrics and plots."""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException
from torch import nn

from kernelnn.data.bundle import DataBundle
from kernelnn.layers.data_init import data_dependent_init
from kernelnn.layers.delta import delta_layers
from kernelnn.layers.spectral import SpectralConv, max_modes, spectral_parameter_counts
from kernelnn.models.normalized import Normalized
from kernelnn.training import distributed as D
from kernelnn.training.checkpoint import config_diff, load_checkpoint
from kernelnn.training.config import validate_trainer
from kernelnn.training.errors import ConfigError
from kernelnn.training.plots import plot_fields, plot_history
from kernelnn.training.refine import unlock_last_spectral_conv
from kernelnn.training.tasks import build_task
from kernelnn.training.trainer import Trainer, TrainerOptions

log = logging.getLogger("kernelnn.training")

# Model arguments that describe the data; left null in configs, they are filled from the data bundle.
DATA_FILLED_KEYS = {"in_channels": "in_channels", "in_features": "in_channels", "out_channels": "out_channels",
                    "out_features": "out_channels", "dim": "dim"}


def _instantiate(node: DictConfig, what: str, **kwargs: Any):
    """``hydra.utils.instantiate`` with the underlying error's message and the config group named."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{what}: {cause}") from err


def _resolve(cfg: DictConfig) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as err:
        raise ConfigError(f"config key {err.full_key} must be set (it has no default), e.g. "
                          f"{err.full_key}=...") from err
    except OmegaConfBaseException as err:
        raise ConfigError(f"config could not be resolved: {err}") from err


def select_device(name: str, info: D.DistInfo) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{info.local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={name!r} but CUDA is not available here; use trainer.device=auto or cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{info.local_rank}")
    return device


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = not deterministic
    if deterministic:
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def build_data(cfg: DictConfig, info: D.DistInfo) -> DataBundle:
    """Rank 0 generates (and caches) the data first; the other ranks then read the cache."""
    choice = cfg.data.get("name", "data")
    bundle = None
    if info.is_main:
        bundle = _instantiate(cfg.data, "data")
    D.barrier(info)
    if not info.is_main:
        bundle = _instantiate(cfg.data, "data")
    if not isinstance(bundle, DataBundle):
        raise ConfigError(f"data={choice}: data._target_ must return a kernelnn.data.DataBundle, got "
                          f"{type(bundle).__name__}")
    return bundle


def fill_model_config(model_cfg: dict[str, Any], bundle: DataBundle) -> dict[str, Any]:
    """Fill data-describing arguments left null; explicit values must agree with the data."""
    filled = dict(model_cfg)
    for key, attr in DATA_FILLED_KEYS.items():
        if key not in filled:
            continue
        actual = getattr(bundle, attr)
        if filled[key] is None:
            filled[key] = actual
        elif filled[key] != actual:
            what = {"in_channels": "input channels/features", "out_channels": "output channels (classes)",
                    "dim": "spatial dims"}[attr]
            raise ConfigError(f"model.{key}={filled[key]} does not match data {bundle.name}, which has {actual} "
                              f"{what}; leave model.{key} unset (null) to take it from the data")
    # Data-derived model settings a bundle offers (e.g. energy shift / scale of a potential): fill nulls only.
    for key, value in bundle.model_fill.items():
        if key in filled and filled[key] is None:
            filled[key] = value
    modes = filled.get("n_modes")
    if modes is not None and bundle.dim and (isinstance(modes, int) or len(modes) == bundle.dim):
        # Models whose modes span other axes (e.g. space-time) validate themselves in check_model_on_data.
        modes = [modes] * bundle.dim if isinstance(modes, int) else list(modes)
        for split, shape in bundle.spatial_shapes().items():
            limit = [max_modes(n) for n in shape]
            if any(m > lim for m, lim in zip(modes, limit, strict=True)):
                raise ConfigError(
                    f"model.n_modes={modes} is above the Nyquist limit of the {split} data of {bundle.name} "
                    f"({'x'.join(map(str, shape))}, set by data.resolution / data.test_resolutions): at most "
                    f"{limit} (kernelnn keeps |k| < n_modes)")
    return filled


PATCHING_KEYS = ("levels", "padding")


def patched_model_config(model_cfg: dict[str, Any], patching: dict[str, Any] | None,
                         bundle: DataBundle) -> dict[str, Any]:
    """With ``patching.levels`` set, the config of :class:`~kernelnn.models.MGPatching` around the filled model.

    The wrapper stacks ``levels`` coarser context windows on the input channels, so the inner model takes
    ``in_channels * (levels + 1)``. The wrapped config is what checkpoints store, so ``load_model`` rebuilds it.
    """
    patching = patching or {}
    unknown = sorted(set(patching) - set(PATCHING_KEYS))
    if unknown:
        raise ConfigError(f"unknown patching key(s) {unknown}; valid: {list(PATCHING_KEYS)}")
    if patching.get("levels") is None:
        return model_cfg
    if bundle.task != "operator" or bundle.dim != 2:
        raise ConfigError(f"patching (MGPatching) splits 2-D fields; data {bundle.name} has {bundle.dim}-D "
                          f"{bundle.task} samples")
    if "in_channels" not in model_cfg:
        raise ConfigError(f"patching needs a model with an in_channels argument; {model_cfg.get('_target_')} has none")
    inner = dict(model_cfg)
    inner["in_channels"] = model_cfg["in_channels"] * (patching["levels"] + 1)
    return {"_target_": "kernelnn.models.MGPatching", "levels": patching["levels"],
            "padding": patching.get("padding", 2), "model": inner}


def check_model_on_data(model: nn.Module, bundle: DataBundle) -> None:
    """Fail before training if the model cannot take every split or its output does not match the target."""
    for split, ds in {"train": bundle.train, **bundle.eval_sets()}.items():
        x, y = ds.tensors[0][:2], ds.tensors[1][:2]
        try:
            if hasattr(model, "check_input_shape"):
                model.check_input_shape(tuple(x.shape))
            with torch.no_grad():
                out = model(x)
        except (ValueError, TypeError, RuntimeError) as err:
            raise ConfigError(f"the model cannot take the {split} data of {bundle.name} (input shape "
                              f"{tuple(x.shape)}): {err}") from err
        expected = (len(x), bundle.out_channels) if bundle.task == "classification" else tuple(y.shape)
        if tuple(out.shape) != expected:
            raise ConfigError(f"the model's output shape {tuple(out.shape)} on the {split} data of {bundle.name} "
                              f"does not match the expected {expected} (check model.out_channels / out_features)")


@torch.no_grad()
def check_layer_options(opts, model: nn.Module, model_cfg: dict[str, Any], optim_cfg: dict[str, Any]) -> None:
    """KAN grid schedules need KAN layers; a delta penalty needs delta layers; L-BFGS needs whole steps (no
    accumulation, no fp16 scaling)."""
    if opts.delta_rate > 0 and not delta_layers(model):
        raise ConfigError(f"trainer.delta_rate={opts.delta_rate} penalises delta activations, but "
                          f"{model_cfg.get('_target_')} has no DeltaActivation layer (try model=frame_cnn "
                          "model.delta=true)")
    has_kan = any(callable(getattr(m, "update_grid", None)) for m in model.modules())
    if not has_kan and (opts.grid_update["every"] or opts.grid_refine["epochs"]):
        raise ConfigError(f"trainer.grid_update / trainer.grid_refine schedule KAN grids, but "
                          f"{model_cfg.get('_target_')} has no KAN layer (try model=kan or model.neuron=kan)")
    if str(optim_cfg.get("_target_", "")).endswith("LBFGS"):
        if opts.grad_accum != 1:
            raise ConfigError(f"trainer.grad_accum={opts.grad_accum}: L-BFGS re-evaluates its batch in a line search "
                              "and cannot accumulate micro-batches; use 1")
        if opts.amp == "fp16":
            raise ConfigError("trainer.amp=fp16 needs gradient scaling, which L-BFGS does not support; use none or "
                              "bf16")


def normalizing_wrapper(model: nn.Module, bundle: DataBundle, normalize: dict[str, bool]) -> nn.Module:
    """Wrap ``model`` in :class:`Normalized` with per-channel training-set statistics."""
    x, y = bundle.train.tensors
    channel_dim = -1 if bundle.dim == 0 else 1
    reduce_dims = [d for d in range(x.dim()) if d != (channel_dim % x.dim())]
    use_in = normalize.get("input", False)
    use_out = normalize.get("output", False) and bundle.task != "classification"
    if bundle.geometric and (use_in or use_out):
        # Per-axis standardisation of coordinates would break rotation equivariance; geometric models scale
        # their outputs themselves.
        log.info("data %s holds point coordinates: normalize.input / normalize.output are not applied", bundle.name)
        return model
    if not (use_in or use_out):
        return model
    stats: dict[str, torch.Tensor | None] = {"in_mean": None, "in_std": None, "out_mean": None, "out_std": None}
    if use_in:
        stats["in_mean"] = x.double().mean(reduce_dims).float()
        stats["in_std"] = x.double().std(reduce_dims).float().clamp_min(1e-8)
    if use_out:
        stats["out_mean"] = y.double().mean(reduce_dims).float()
        stats["out_std"] = y.double().std(reduce_dims).float().clamp_min(1e-8)
    return Normalized(model, **stats, channel_dim=channel_dim)


def build_model(model_cfg: dict[str, Any], normalization: dict[str, Any] | None) -> nn.Module:
    """A model from a filled model config (and the normalisation record of a checkpoint)."""
    model = _instantiate(OmegaConf.create(model_cfg), "model")
    if normalization:
        placeholders = {k: torch.zeros(n) for k, n in normalization["sizes"].items()}
        model = Normalized(model, **placeholders, channel_dim=normalization["channel_dim"])
    return model


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a trained model (with its data normalisation) from a kernelnn checkpoint, in eval mode."""
    ckpt = load_checkpoint(path)
    model = build_model(ckpt["model_config"], ckpt.get("normalization"))
    refined = ckpt.get("refine")
    if refined:  # a Spectral-Refiner checkpoint: its last spectral conv keeps more modes than the config says
        model.get_submodule(refined["module"]).n_modes = refined["n_modes"]
    model.load_state_dict(ckpt["model"])
    return model.to(map_location).eval()


def _normalization_record(model: nn.Module) -> dict[str, Any] | None:
    if not isinstance(model, Normalized):
        return None
    sizes = {k: getattr(model, k).numel() for k in ("in_mean", "in_std", "out_mean", "out_std")
             if getattr(model, k) is not None}
    return {"sizes": sizes, "channel_dim": model.channel_dim}


def find_resume_checkpoint(resume: str | None, output_dir: Path, identity: dict[str, Any]) -> Path | None:
    """The checkpoint to resume from: ``PATH``; or for ``auto`` this run's ``last.pt``, else the newest
    ``last.pt`` of a sibling run (same parent folder) trained with the same model and data config."""
    if not resume:
        return None
    if resume != "auto":
        path = Path(resume).expanduser()
        if path.is_dir():
            path = path / "checkpoints" / "last.pt" if (path / "checkpoints").is_dir() else path / "last.pt"
        if not path.is_file():
            raise ConfigError(f"trainer.resume={resume!r}: no checkpoint at {str(path)!r}")
        return path
    own = output_dir / "checkpoints" / "last.pt"
    if own.is_file():
        return own
    candidates = sorted(output_dir.parent.glob("*/checkpoints/last.pt"), key=lambda p: p.stat().st_mtime,
                        reverse=True)
    for path in candidates:
        try:
            ckpt = load_checkpoint(path)
        except (ValueError, FileNotFoundError):
            continue
        if not config_diff({k: ckpt.get(k) for k in identity}, identity):
            return path
    if candidates:
        log.info("trainer.resume=auto: %d earlier run(s) under %s used another model/data config; starting fresh",
                 len(candidates), output_dir.parent)
    return None


def _check_resume_identity(path: Path, identity: dict[str, Any]) -> None:
    ckpt = load_checkpoint(path)
    if ckpt.get("format") != "kernelnn-checkpoint-1":
        raise ConfigError(f"trainer.resume: {str(path)!r} is not a kernelnn training checkpoint")
    diff = config_diff({k: ckpt.get(k) for k in identity}, identity)
    if diff:
        raise ConfigError(f"trainer.resume: checkpoint {str(path)!r} does not match this run's config "
                          "(checkpoint -> now):\n  " + "\n  ".join(diff))


def _output_dir(output_dir: str | Path | None) -> Path:
    if output_dir is not None:
        return Path(output_dir)
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    raise ConfigError("run(cfg) outside a Hydra app needs output_dir=...")


def run(cfg: DictConfig, output_dir: str | Path | None = None, callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Train and evaluate the model that ``cfg`` describes; returns a summary dictionary.

    Writes ``checkpoints/{last,best}.pt``, ``metrics.csv``, ``tensorboard/`` and ``plots/*.png`` under
    ``output_dir`` (default: the Hydra run's output directory). Every rank of a ``torchrun`` launch calls
    this; only rank 0 writes.
    """
    container = _resolve(cfg)
    opts, extra = validate_trainer(container["trainer"])
    info = D.init_from_env()
    out = _output_dir(output_dir)
    if info.enabled:
        out = Path(D.broadcast_object(str(out), info))  # every rank writes where rank 0 does
    if opts.batch_size % info.world_size:
        raise ConfigError(f"trainer.batch_size={opts.batch_size} is the global batch and must be divisible by the "
                          f"number of processes ({info.world_size})")
    seed = int(container.get("seed", 0))
    seed_everything(seed, extra["deterministic"])
    device = select_device(extra["device"], info)

    bundle = build_data(cfg, info)
    try:
        task = build_task(bundle.task, extra["loss"], bundle.periodic, bundle.dim,
                          loss_weights=bundle.loss_weights)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    model_cfg = patched_model_config(fill_model_config(container["model"], bundle), container.get("patching"),
                                     bundle)
    torch.manual_seed(seed)  # initial weights independent of how much randomness data generation used
    model = _instantiate(OmegaConf.create(model_cfg), f"model ({model_cfg.get('_target_')})")
    check_model_on_data(model, bundle)
    if opts.quadratic_lr is not None and not any(hasattr(m, "quadratic_parameters") for m in model.modules()):
        raise ConfigError(f"trainer.quadratic_lr={opts.quadratic_lr} sets ReLinear's learning rate of quadratic "
                          f"neurons, but {model_cfg.get('_target_')} has none (try model.neuron=quadratic)")
    check_layer_options(opts, model, model_cfg, container["optim"])
    model = normalizing_wrapper(model, bundle, container.get("normalize") or {})
    data_dependent_init(model, bundle.train.tensors[0][:2048], seed)

    identity = {"model_config": model_cfg, "data_config": container["data"],
                "normalization": _normalization_record(model)}
    trainer = Trainer(
        model, task, bundle.train, bundle.eval_sets(),
        make_optimizer=_instantiate(cfg.optim, "optim"),
        make_scheduler=_instantiate(cfg.scheduler, "scheduler"),
        options=opts, output_dir=out, device=device, dist=info, seed=seed,
        checkpoint_meta={**identity, "config": container}, callbacks=callbacks,
    )
    if trainer.monitor != "train/loss" and trainer.monitor.split("/")[0] not in bundle.eval_sets():
        raise ConfigError(f"trainer.monitor={trainer.monitor!r} names no evaluation set; sets: "
                          f"{list(bundle.eval_sets())}")
    resume = find_resume_checkpoint(extra["resume"], out, identity)
    if resume is not None:
        _check_resume_identity(resume, identity)
        trainer.resume_from(resume)

    sizes = model_sizes(model)
    if info.is_main:
        log.info("data %s: %d train, %s; model %s with %s parameters on %s%s; output %s", bundle.name,
                 len(bundle.train), ", ".join(f"{k} {len(v)}" for k, v in bundle.eval_sets().items()),
                 model_cfg.get("_target_"), f"{sizes['n_parameters']:,}", device,
                 f" x {info.world_size} processes" if info.enabled else "", out)
        if "spectral_stored" in sizes:
            log.info("spectral weights: %s parameters stored for %s dense (%.1fx compression)",
                     f"{sizes['spectral_stored']:,}", f"{sizes['spectral_dense']:,}", sizes["spectral_compression"])
    start = time.perf_counter()
    epochs_before = trainer.state.epoch
    trainer.fit()
    train_seconds = time.perf_counter() - start
    summary = _finish(trainer, bundle, out, info, extra, sizes, train_seconds, trainer.state.epoch - epochs_before)
    if extra["refine"]["epochs"] > 0:
        refiner = _refiner(trainer, bundle, cfg, opts, extra["refine"], out, device, info, seed,
                           {**identity, "config": container}, callbacks)
        summary["refine"] = _refine(refiner, bundle, info)
    return summary


def _refiner(trainer: Trainer, bundle: DataBundle, cfg: DictConfig, opts: TrainerOptions, refine: dict, out: Path,
             device: torch.device, info: D.DistInfo, seed: int, meta: dict, callbacks) -> Trainer:
    """A Trainer for Spectral-Refiner fine-tuning of the (best) trained model, writing under ``out/refine``."""
    if bundle.task != "operator":
        raise ConfigError("trainer.refine applies to operator learning only")
    try:
        name, modes = unlock_last_spectral_conv(trainer.model, bundle.train.tensors[0][:1].to(device))
    except ValueError as err:
        raise ConfigError(f"trainer.refine.epochs={refine['epochs']}: {err}") from err
    optim = cfg.optim if refine["lr"] is None else OmegaConf.merge(cfg.optim, {"lr": refine["lr"]})
    return Trainer(
        trainer.model, build_task("operator", "negative_sobolev", bundle.periodic, bundle.dim, refine["sobolev_s"]),
        bundle.train, bundle.eval_sets(),
        make_optimizer=_instantiate(optim, "optim"), make_scheduler=_instantiate(cfg.scheduler, "scheduler"),
        options=dataclasses.replace(opts, epochs=refine["epochs"], early_stopping_patience=None),
        output_dir=out / "refine", device=device, dist=info, seed=seed,
        checkpoint_meta={**meta, "refine": {"module": name, "n_modes": list(modes)}}, callbacks=callbacks,
    )


def _refine(refiner: Trainer, bundle: DataBundle, info: D.DistInfo) -> dict[str, Any]:
    start = time.perf_counter()
    refiner.fit()
    best = refiner.checkpoint_dir / "best.pt"
    refiner.model.load_state_dict(load_checkpoint(best)["model"])
    test = refiner.evaluate(sets=list(bundle.tests))
    result = {"test": test, "best_checkpoint": str(best), "epochs": refiner.state.epoch,
              "seconds": time.perf_counter() - start, "n_modes": refiner.meta["refine"]["n_modes"]}
    if info.is_main:
        tests = ", ".join(f"{k.split('/')[0]} {v:.4g}" for k, v in test.items() if k.endswith("/l2"))
        log.info("Spectral-Refiner: %d epoch(s) on %s with n_modes=%s; test l2 after refinement: %s; checkpoints %s",
                 refiner.state.epoch, refiner.meta["refine"]["module"], result["n_modes"], tests,
                 refiner.checkpoint_dir)
    return result


def model_sizes(model: nn.Module) -> dict[str, int | float]:
    """Parameter count, and for spectral models the stored-vs-dense spectral weights (MG-TFNO's compression)."""
    sizes: dict[str, int | float] = {"n_parameters": sum(p.numel() for p in model.parameters())}
    if any(isinstance(m, SpectralConv) for m in model.modules()):
        sizes.update(spectral_parameter_counts(model))
    return sizes


def _finish(trainer: Trainer, bundle: DataBundle, out: Path, info: D.DistInfo, extra: dict, sizes: dict,
            train_seconds: float, epochs_run: int) -> dict[str, Any]:
    """Evaluate the best weights on every test set, plot, and summarise."""
    ckpt_dir = out / "checkpoints"
    best = ckpt_dir / "best.pt"
    if best.exists():
        trainer.model.load_state_dict(load_checkpoint(best)["model"])
    test_metrics = trainer.evaluate(sets=list(bundle.tests))
    history = trainer.state.history
    summary: dict[str, Any] = {
        "output_dir": str(out),
        "best_checkpoint": str(best) if best.exists() else None,
        "last_checkpoint": str(ckpt_dir / "last.pt"),
        "metrics_csv": str(out / "metrics.csv"),
        "best": trainer.state.best,
        "best_epoch": trainer.state.best_epoch,
        "monitor": trainer.monitor,
        "epochs": trainer.state.epoch,
        "epochs_run": epochs_run,
        "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / epochs_run if epochs_run else float("nan"),
        **sizes,
        "test": test_metrics,
        "plots": [],
    }
    if info.is_main and extra["plots"] and history:
        plot_dir = out / "plots"
        plot_dir.mkdir(parents=True, exist_ok=True)
        summary["plots"].append(str(plot_history(history, plot_dir / "loss_curves.png")))
        if bundle.task == "operator" and extra["plot_samples"] > 0:
            for name, ds in bundle.tests.items():
                x, y = (t[: extra["plot_samples"]] for t in ds.tensors)
                pred = trainer.predict(x).cpu()
                path = plot_fields(x, y, pred, plot_dir / f"samples_{name}.png",
                                   f"{bundle.name} {name}: input / truth / prediction / error")
                summary["plots"].append(str(path))
    if info.is_main:
        main = trainer.task.main_metric
        tests = ", ".join(f"{k.split('/')[0]} {v:.4g}" for k, v in test_metrics.items() if k.endswith("/" + main))
        lines = [
            f"Finished {epochs_run} epoch(s) in {train_seconds:.1f} s ({summary['seconds_per_epoch']:.2f} s/epoch); "
            f"best {trainer.monitor} at epoch {trainer.state.best_epoch}.",
            f"Test {main} (best weights): {tests}",
            f"Checkpoints: {ckpt_dir} (best.pt, last.pt)",
            f"Metrics:     {summary['metrics_csv']}",
            f"Plots:       {out / 'plots'}",
        ]
        log.info("\n".join(lines))
    return summary
