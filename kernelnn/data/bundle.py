"""What every data builder returns, and the on-disk cache keyed by the builder's parameters."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import TensorDataset

from kernelnn.archive import verify_archive

log = logging.getLogger(__name__)

TASKS = ("operator", "classification", "regression", "field", "energy_forces")


@dataclass
class DataBundle:
    """Train / validation / named test sets of one task, plus what a model needs to know about them.

    ``task`` is ``"operator"`` (field in, field out: tensors ``(n, channels, *spatial)``) or
    ``"classification"`` (inputs ``(n, ..., features)`` or fields, integer labels ``(n,)``) or ``"regression"``
    (vectors in, vectors out: ``(n, features)``) or ``"energy_forces"`` (point positions ``(n, atoms, 3)`` in,
    ``(n, 1 + 3 atoms)`` = energy and flattened forces out; or systems of any sizes batched without padding,
    :class:`~kernelnn.data.atomic_systems.AtomicSystems`; :class:`~kernelnn.training.tasks.EnergyForcesTask`).
    ``in_channels`` / ``out_channels`` are channels (fields) or features (vectors); for classification
    ``out_channels`` is the number of classes. ``dim`` is the number of spatial dims (0 for vectors).
    ``tests`` maps a set's name (e.g. ``"test_64"``) to its data; several resolutions are several sets.
    ``periodic`` tells derivative-based losses how to treat the boundary; ``sphere_grid`` (a torch-harmonics grid
    name) says the fields live on the sphere, so that L2 losses and metrics integrate with its area weights.

    Fields the training loop reads (typed, so a misspelt one fails at construction): ``geometric`` marks point
    coordinates, which are never standardised per axis (that would break rotation equivariance); ``model_fill``
    offers model settings the data implies (filled only where the model config leaves them null); ``field_layout``
    describes how the points of a field task (``"field"``: coordinates ``(n, d)`` in, values ``(n, c)`` out; or
    ``"classification"`` of points) tile a signal, for full-field metrics and plots
    (:class:`~kernelnn.training.plugins.field_report.FieldReport`): ``{"kind": "image", "shape": [H, W],
    "value_range": 1.0}``, ``{"kind": "sdf", ...}`` or ``{"kind": "sphere"}``. ``loss_weights`` are weights of the
    task's loss terms (e.g. ``{"energy": 1, "forces": 1}``). ``info`` holds anything else, for people (solver
    settings, the raw sequences, ...). ``sources`` says where each split's samples come from in a user's file,
    ``{split: (path, the file's index of each sample)}``, so that errors name the sample a user can find.
    """

    name: str
    task: str
    train: TensorDataset
    tests: dict[str, TensorDataset]
    in_channels: int
    out_channels: int
    dim: int
    val: TensorDataset | None = None
    periodic: bool = False
    geometric: bool = False
    model_fill: dict[str, Any] = field(default_factory=dict)
    loss_weights: dict[str, float] | None = None
    field_layout: dict[str, Any] | None = None
    info: dict = field(default_factory=dict)
    sphere_grid: str | None = None
    sources: dict[str, tuple[str, torch.Tensor]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"DataBundle: task={self.task!r} is not one of {TASKS}")

    def eval_sets(self) -> dict[str, TensorDataset]:
        """Validation (if any) then test sets, in a stable order."""
        sets = {} if self.val is None else {"val": self.val}
        sets.update(self.tests)
        return sets

    def spatial_shapes(self) -> dict[str, tuple[int, ...]]:
        """The spatial shape of the inputs of each split (empty for feature vectors)."""
        splits = {"train": self.train, **self.eval_sets()}
        return {k: tuple(_first_input(ds).shape[1:]) if self.dim else () for k, ds in splits.items()}


def _first_input(dataset: Any) -> torch.Tensor:
    """The first sample's input (a ``TensorDataset``'s without indexing it: its tensors are at hand)."""
    return dataset.tensors[0][0] if hasattr(dataset, "tensors") else dataset[0][0]


def inputs_and_targets(dataset: Any) -> tuple[torch.Tensor | tuple[torch.Tensor, ...], torch.Tensor]:
    """All inputs and targets of a split: a ``TensorDataset``'s two tensors, or, for datasets whose samples have
    several inputs (atoms: positions, species, cell), what its ``inputs_and_targets()`` returns (inputs a tuple,
    targets a tensor or, for packed systems of several sizes, a dict of named tensors)."""
    if hasattr(dataset, "inputs_and_targets"):
        return dataset.inputs_and_targets()
    return dataset.tensors[0], dataset.tensors[1]


def first_batch(dataset: Any, n: int) -> tuple[Any, Any]:
    """The first ``n`` samples of a split as one batch ``(inputs, targets)``, joined as the training loop's loader
    joins them (by the dataset's own ``collate`` when it has one)."""
    if hasattr(dataset, "collate"):
        return dataset.collate([dataset[i] for i in range(min(n, len(dataset)))])
    if hasattr(dataset, "chunks"):  # read sample by sample: only the first n
        return next(iter(dataset.chunks(max(n, 1))))[1:]
    x, y = inputs_and_targets(dataset)
    return first_samples(x, n), y[:n]


def first_samples(inputs: torch.Tensor | tuple[torch.Tensor, ...], n: int) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """The first ``n`` samples of one input tensor or of each of several."""
    return tuple(t[:n] for t in inputs) if isinstance(inputs, tuple) else inputs[:n]


def default_cache_dir() -> Path:
    return Path(os.environ.get("KERNELNN_CACHE", Path.home() / ".cache" / "kernelnn"))


def cache_key(name: str, params: dict) -> str:
    blob = json.dumps(params, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha1(blob.encode()).hexdigest()[:12]}"


def cached(
    name: str, params: dict, build: Callable[[], dict[str, torch.Tensor]], cache_dir: str | Path | None = None,
    use_cache: bool = True, version: int = 1,
) -> dict[str, torch.Tensor]:
    """Return ``build()``, stored at ``cache_dir/<name>-<hash(params)>.pt`` and reused on the next call.

    The file holds the tensors with a manifest (the generator's ``name``, ``version`` and ``params``, the tensor
    names). It is reused only if it is a whole archive whose entries match their checksums and whose manifest
    matches this call; anything else (a damaged file, an older generator version) is regenerated with a warning.
    Writes are atomic (temporary file then ``os.replace``), so concurrent readers never see half a file. Bump a
    generator's ``version`` when its output changes.
    """
    if not use_cache:
        return build()
    directory = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    path = directory / f"{cache_key(name, params)}.pt"
    manifest = {"name": name, "version": version, "params": json.loads(json.dumps(params, default=str))}
    if path.exists():
        try:
            tensors = _read_cache(path, manifest)
        except ValueError as err:
            log.warning("data cache %s cannot be used (%s); regenerating", path, err)
        else:
            return tensors
    log.info("generating %s data (%s); cached at %s", name, ", ".join(f"{k}={v}" for k, v in params.items()), path)
    tensors = build()
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"manifest": {**manifest, "keys": sorted(tensors)}, "tensors": tensors}, tmp)
    os.replace(tmp, path)
    return tensors


def _read_cache(path: Path, manifest: dict) -> dict[str, torch.Tensor]:
    verify_archive(path, "data cache")
    try:
        stored = torch.load(path, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable cache is rebuilt
        raise ValueError(f"unreadable: {err}") from None
    if not isinstance(stored, dict) or "manifest" not in stored:
        raise ValueError("no manifest (written by an older kernelnn)")
    saved, tensors = stored["manifest"], stored.get("tensors")
    expected = {k: saved.get(k) for k in manifest}
    if expected != manifest:
        raise ValueError(f"its manifest {expected} does not match {manifest}")
    if not isinstance(tensors, dict) or sorted(tensors) != saved.get("keys"):
        raise ValueError(f"it holds {sorted(tensors or {})}, its manifest lists {saved.get('keys')}")
    return tensors


def resolution_splits(x: torch.Tensor, y: torch.Tensor, solve: int, resolution: int, tests: tuple[int, ...],
                      n_train: int, n_val: int, n_test: int) -> dict[str, Any]:
    """``train`` / ``val`` / ``tests`` (``test_<r>``) of fields ``(n, C, *grid)`` solved at ``solve`` points per
    axis, in that sample order, each subsampled to its resolution (exactly: every resolution divides ``solve``)."""
    dims = x.dim() - 2

    def at(res: int, start: int, stop: int) -> TensorDataset:
        index = (slice(start, stop), slice(None), *[slice(None, None, solve // res)] * dims)
        return TensorDataset(x[index].contiguous(), y[index].contiguous())

    n_tv = n_train + n_val
    return {"train": at(resolution, 0, n_train), "val": at(resolution, n_train, n_tv) if n_val else None,
            "tests": {f"test_{r}": at(r, n_tv, n_tv + n_test) for r in tests}}


def check_resolutions(owner: str, resolution: int, test_resolutions, solve_resolution: int | None) -> tuple:
    """Validate resolutions (config keys named in errors); return (test_resolutions, solve_resolution)."""
    tests = tuple(int(r) for r in (test_resolutions or [resolution]))
    for key, value in [("resolution", resolution), *(("test_resolutions", r) for r in tests)]:
        if int(value) < 4:
            raise ValueError(f"{owner}: data.{key}={value} must be at least 4 grid points")
    finest = max(resolution, *tests)
    solve = int(solve_resolution or finest)
    bad = sorted({r for r in (resolution, *tests) if solve % r})
    if bad:
        raise ValueError(
            f"{owner}: every resolution must divide the solver resolution data.solve_resolution={solve} "
            f"(data is subsampled from it); {bad} do not"
        )
    return tests, solve
