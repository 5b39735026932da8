"""From config to objects: the data bundle, the model config filled from the data, the model (one
:func:`build_model` for training runs and for :func:`~kernelnn.training.load_model`), its checks against the
data, and the normalising wrapper."""

from __future__ import annotations

import logging
import math
import types
import typing
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from kernelnn.data.bundle import DataBundle, first_batch, inputs_and_targets
from kernelnn.layers.spectral import SpectralConv, modes_limits, spectral_parameter_counts
from kernelnn.models.normalized import Normalized
from kernelnn.protocols import InputChecked
from kernelnn.training import distributed as D
from kernelnn.training.errors import ConfigError
from kernelnn.training.tasks import shape_of

log = logging.getLogger("kernelnn.training")

# Model arguments that describe the data; left null in configs, they are filled from the data bundle.
DATA_FILLED_KEYS = {"in_channels": "in_channels", "in_features": "in_channels", "out_channels": "out_channels",
                    "out_features": "out_channels", "dim": "dim", "coord_dim": "dim"}
PATCHING_KEYS = ("levels", "padding")


def instantiate_config(node: DictConfig | dict, what: str, **kwargs: Any):
    """``hydra.utils.instantiate`` of the user's own config, with the underlying error's message and the group."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{what}: {cause}") from err


_SIMPLE = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _fits(value: Any, hint: Any) -> bool | None:
    """Whether ``value`` has the simple type ``hint`` (int, float, bool, str, or a union of them with None);
    ``None`` when the hint is not one of those (not checked)."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if not all(o in _SIMPLE or o is type(None) for o in options):
        return None
    if value is None:
        return type(None) in options
    if isinstance(value, bool):
        return bool in options
    if isinstance(value, int):
        return int in options or float in options
    return any(isinstance(value, o) for o in options if o in _SIMPLE)


def check_arguments(group: str, node: dict[str, Any]) -> None:
    """Each key of a config node whose ``_target_`` function annotates it as a simple type (int, float, bool, str)
    must hold that type: ``data.n_train=abc`` fails here, naming the key, not deep inside the builder."""
    from hydra.utils import get_method

    try:
        hints = typing.get_type_hints(get_method(node["_target_"]))
    except Exception:  # noqa: BLE001 - no target, not importable, or unresolvable hints: instantiate reports it
        return
    for key, value in node.items():
        if key in hints and _fits(value, hints[key]) is False:
            options = typing.get_args(hints[key]) or (hints[key],)
            allowed = " or ".join(_SIMPLE.get(o, "null") for o in options)
            raise ConfigError(f"{group}.{key}={value!r} must be {allowed} ({node['_target_']} takes {key})")


def build_data(cfg: DictConfig, info: D.DistInfo) -> DataBundle:
    """Rank 0 generates (and caches) the data first; the other ranks then read the cache."""
    check_arguments("data", OmegaConf.to_container(cfg.data, resolve=True))
    bundle = None
    if info.is_main:
        bundle = instantiate_config(cfg.data, "data")
    D.barrier(info)
    if not info.is_main:
        bundle = instantiate_config(cfg.data, "data")
    if not isinstance(bundle, DataBundle):
        raise ConfigError(f"data={cfg.data.get('name', 'data')}: data._target_ must return a kernelnn.data.DataBundle, "
                          f"got {type(bundle).__name__}")
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
    # The training grid: its points are the sensors of a model that sees its input at fixed points (DeepONet);
    # its shape is the reference resolution of a model that scales with it (Transform Once).
    if bundle.dim:
        train_shape = bundle.spatial_shapes()["train"]
        for key, value in (("n_sensors", math.prod(train_shape)), ("n_outputs", math.prod(train_shape)),
                           ("resolution", list(train_shape))):
            if key in filled and filled[key] is None:
                filled[key] = value
    # Boundary conditions: circular padding on a periodic domain (U-Nets).
    if filled.get("periodic", False) is None:
        filled["periodic"] = bundle.periodic
    # Data-derived model settings a bundle offers (e.g. energy shift / scale of a potential): fill nulls only.
    for key, value in bundle.model_fill.items():
        if key in filled and filled[key] is None:
            filled[key] = value
    modes = filled.get("n_modes")
    fourier = filled.get("transform", "fft") == "fft"  # a cosine transform holds N frequencies, not N / 2 + 1
    if modes is not None and fourier and bundle.dim and (isinstance(modes, int) or len(modes) == bundle.dim):
        # Models whose modes span other axes (e.g. space-time) validate themselves in check_model_on_data.
        modes = [modes] * bundle.dim if isinstance(modes, int) else list(modes)
        for split, shape in bundle.spatial_shapes().items():
            convention = filled.get("modes_convention", "kernelnn")
            limit = modes_limits(shape, convention)
            rule = ("neuraloperator's convention: n_modes <= N, n_modes // 2 <= N // 2 on the last dim"
                    if convention == "neuralop" else "kernelnn keeps |k| < n_modes")
            if any(m > lim for m, lim in zip(modes, limit, strict=True)):
                raise ConfigError(
                    f"model.n_modes={modes} is above the Nyquist limit of the {split} data of {bundle.name} "
                    f"({'x'.join(map(str, shape))}, set by data.resolution / data.test_resolutions): at most "
                    f"{limit} ({rule})")
    return filled


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


def model_config(container: dict[str, Any], bundle: DataBundle) -> dict[str, Any]:
    """The model config a run trains and its checkpoints store: filled from the data, wrapped for patching."""
    return patched_model_config(fill_model_config(container["model"], bundle), container.get("patching"), bundle)


def registered_model(target: str) -> type | None:
    """The class of :data:`~kernelnn.registry.MODELS` that ``target`` names (one of its import paths,
    :meth:`~kernelnn.registry.Registry.targets`), else ``None``. Nothing is imported by name."""
    from kernelnn.registry import MODELS

    if not isinstance(target, str) or target not in MODELS.targets():
        return None
    name = target.rsplit(".", 1)[-1]
    return next(cls for cls in map(MODELS.get, MODELS.names()) if getattr(cls, "__name__", None) == name)


def _build_registered(node: Any, source: str) -> Any:
    """Build a model description from a file without Hydra: every ``_target_`` must be a registered model."""
    if isinstance(node, list):
        return [_build_registered(v, source) for v in node]
    if not isinstance(node, dict):
        return node
    args = {k: _build_registered(v, source) for k, v in node.items() if k not in ("_target_", "_convert_")}
    odd = sorted(k for k in args if k.startswith("_") and k.endswith("_"))
    if odd:
        raise ValueError(f"{source}: the model description uses {odd}, which load_model does not accept")
    if "_target_" not in node:
        return args
    cls = registered_model(node["_target_"])
    if cls is None:
        raise ValueError(f"{source}: the model description names _target_={node['_target_']!r}, which is not a model "
                         "in kernelnn.registry.MODELS; load_model builds registered models only (register yours "
                         "with MODELS.register('name')(YourModel))")
    return cls(**args)


def build_model(model_cfg: dict[str, Any], normalization: dict[str, Any] | None = None, *, trusted: bool = True,
                source: str = "model") -> nn.Module:
    """A model from a filled model config, and the :class:`Normalized` wrapper a checkpoint records.

    ``trusted=True`` (the run's own config) instantiates with Hydra, so any class a user names can be trained;
    ``trusted=False`` (a description read from a file) builds registered kernelnn models only.
    """
    if trusted:
        check_arguments("model", model_cfg)
        model = instantiate_config(OmegaConf.create(model_cfg), f"model ({model_cfg.get('_target_')})")
    else:
        try:
            model = _build_registered(model_cfg, source)
        except TypeError as err:  # wrong arguments for a registered class
            target = model_cfg.get("_target_")
            raise ValueError(f"{source}: the model description does not fit {target}: {err}") from err
    if normalization:
        placeholders = {k: torch.zeros(n) for k, n in normalization["sizes"].items()}
        model = Normalized(model, **placeholders, channel_dim=normalization["channel_dim"])
    return model


def check_model_on_data(model: nn.Module, bundle: DataBundle) -> None:
    """Fail before training if the model cannot take every split or its output does not match the target."""
    for split, ds in {"train": bundle.train, **bundle.eval_sets()}.items():
        x, y = first_batch(ds, 2)
        shapes = [tuple(t.shape) for t in x] if isinstance(x, tuple) else tuple(x.shape)
        try:
            if isinstance(model, InputChecked):
                model.check_input(*x) if isinstance(x, tuple) else model.check_input(x)
            with torch.no_grad():
                out = model(*x) if isinstance(x, tuple) else model(x)
        except (ValueError, TypeError, RuntimeError) as err:
            raise ConfigError(f"the model cannot take the {split} data of {bundle.name} (input shape "
                              f"{shapes}): {err}") from err
        if isinstance(y, dict):  # named targets: the model predicts each floating one, in its shape
            got = {k: tuple(out[k].shape) for k in y if isinstance(out, dict) and k in out}
            want = {k: tuple(v.shape) for k, v in y.items() if v.is_floating_point()}
            if not isinstance(out, dict) or any(got.get(k) != v for k, v in want.items()):
                given = got if isinstance(out, dict) else shape_of(out)
                raise ConfigError(f"the model's output {given} on the {split} data of {bundle.name} does not hold the "
                                  f"targets {want}")
            continue
        expected = (len(y), bundle.out_channels) if bundle.task == "classification" else tuple(y.shape)
        if tuple(out.shape) != expected:
            raise ConfigError(f"the model's output shape {tuple(out.shape)} on the {split} data of {bundle.name} "
                              f"does not match the expected {expected} (check model.out_channels / out_features)")


def normalizing_wrapper(model: nn.Module, bundle: DataBundle, normalize: dict[str, bool]) -> nn.Module:
    """Wrap ``model`` in :class:`Normalized` with per-channel training-set statistics."""
    use_in = normalize.get("input", False)
    use_out = normalize.get("output", False) and bundle.task != "classification"
    if bundle.geometric and (use_in or use_out):
        # Per-axis standardisation of coordinates would break rotation equivariance; geometric models scale
        # their outputs themselves.
        log.info("data %s holds point coordinates: normalize.input / normalize.output are not applied", bundle.name)
        return model
    if not (use_in or use_out):
        return model
    if hasattr(bundle.train, "channel_statistics"):  # a split read lazily: one streaming pass, never all in memory
        streamed = bundle.train.channel_statistics()
        stats = {k: (v if (use_in if k.startswith("in") else use_out) else None) for k, v in streamed.items()}
        stats = {k: v.clamp_min(1e-8) if v is not None and k.endswith("std") else v for k, v in stats.items()}
        return Normalized(model, **stats, channel_dim=1)
    x, y = inputs_and_targets(bundle.train)
    if isinstance(x, tuple):
        raise ConfigError(f"data {bundle.name} has several inputs per sample; normalize.input / normalize.output "
                          "apply to one input tensor only: set them false")
    channel_dim = -1 if bundle.dim == 0 else 1
    reduce_dims = [d for d in range(x.dim()) if d != (channel_dim % x.dim())]
    stats: dict[str, torch.Tensor | None] = {"in_mean": None, "in_std": None, "out_mean": None, "out_std": None}
    if use_in:
        stats["in_mean"] = x.double().mean(reduce_dims).float()
        stats["in_std"] = x.double().std(reduce_dims).float().clamp_min(1e-8)
    if use_out:
        stats["out_mean"] = y.double().mean(reduce_dims).float()
        stats["out_std"] = y.double().std(reduce_dims).float().clamp_min(1e-8)
    return Normalized(model, **stats, channel_dim=channel_dim)


def normalization_record(model: nn.Module) -> dict[str, Any] | None:
    """What :func:`build_model` needs to rebuild the :class:`Normalized` wrapper (sizes; values are weights)."""
    if not isinstance(model, Normalized):
        return None
    sizes = {k: getattr(model, k).numel() for k in ("in_mean", "in_std", "out_mean", "out_std")
             if getattr(model, k) is not None}
    return {"sizes": sizes, "channel_dim": model.channel_dim}


def model_sizes(model: nn.Module) -> dict[str, int | float]:
    """Parameter count, and for spectral models the stored-vs-dense spectral weights (MG-TFNO's compression)."""
    sizes: dict[str, int | float] = {"n_parameters": sum(p.numel() for p in model.parameters())}
    if any(isinstance(m, SpectralConv) for m in model.modules()):
        sizes.update(spectral_parameter_counts(model))
    return sizes

