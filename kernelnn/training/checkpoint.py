"""Checkpoints: atomic writes, RNG states as tensors, everything loadable with ``weights_only=True``; rebuilding a
model from one (:func:`load_model`), and finding the one to resume from."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kernelnn.archive import verify_archive


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) RNG states as tensors and plain numbers."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state((nps["name"], nps["keys"].numpy().astype(np.uint32), nps["pos"], nps["has_gauss"],
                         nps["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _writer_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def previous(path: Path) -> Path:
    """Where :func:`save_checkpoint` keeps the file it replaced (``last.pt`` -> ``last.prev.pt``)."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


LOGS = ("history", "steps")  # per-epoch metrics and per-step losses: stored as JSON text, read back as lists


def _temporary(path: Path) -> Path:
    """This process's temporary name for ``path``: hidden, and carrying the pid so a later run can tell a stale one."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def save_checkpoint(state: dict[str, Any], path: str | Path, keep_previous: bool = False) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

    A crash mid-write leaves the previous checkpoint intact. With ``keep_previous`` the replaced file stays as
    :func:`previous` (a hard link, so no copy), the fallback when the newest file turns out damaged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(".*.tmp*"):  # any file's, left by a process killed mid-write
        if not _writer_alive(stale.name.rsplit(".tmp", 1)[-1]):
            stale.unlink(missing_ok=True)
    tmp, kept = _temporary(path), _temporary(previous(path))
    # The logs grow by a row an epoch: as one JSON string each they pickle in microseconds, as lists of dicts
    # torch.save visits every number (a 6,000-epoch run spent 2/3 of its time saving them).
    state = {k: json.dumps(v) if k in LOGS and isinstance(v, list) else v for k, v in state.items()}
    try:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        verify(tmp)
        if keep_previous and path.exists():
            try:
                os.link(path, kept)
            except OSError:  # a file system without hard links
                shutil.copy2(path, kept)
            os.replace(kept, previous(path))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        kept.unlink(missing_ok=True)
    return path


def verify(path: Path) -> None:
    """Raise ``ValueError`` unless ``path`` is a whole torch archive whose every entry matches its stored CRC-32."""
    verify_archive(path, "checkpoint")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint (tensors and plain Python only) after :func:`verify`; errors name the file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    verify(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(ckpt, dict):
            for key in LOGS:
                if isinstance(ckpt.get(key), str):
                    ckpt[key] = json.loads(ckpt[key])
        return ckpt
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"checkpoint {str(path)!r} could not be read: {err}") from err


def differences(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` for every leaf where two nested config containers differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            out.extend(differences(old.get(key, ABSENT), new.get(key, ABSENT), name))
        return out
    return [] if old == new else [(prefix, old, new)]


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()


def config_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Human-readable differences between two nested config containers (``key: old -> new``)."""
    return [f"{key}: {a!r} -> {b!r}" for key, a, b in differences(old, new, prefix)]


# ---------------------------------------------------------------------------------------------- formats
TRAINING_FORMAT = "kernelnn-checkpoint-1"  # last.pt: everything a resumed run needs
WEIGHTS_FORMAT = "kernelnn-weights-1"  # best.pt: weights, where training stood, the model's description


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a trained model (with its data normalisation) from a kernelnn checkpoint, in eval mode.

    Nothing in the file chooses code to run: every ``_target_`` in its model description must name a model in
    :data:`kernelnn.registry.MODELS` (register a model of your own there to load it), and is built without Hydra.
    """
    from kernelnn.training.assemble import build_model

    ckpt = load_checkpoint(path)
    if ckpt.get("format") not in (TRAINING_FORMAT, WEIGHTS_FORMAT) or "model" not in ckpt:
        raise ValueError(f"checkpoint {str(path)!r} is not a kernelnn checkpoint (no format / model entry)")
    if "model_config" not in ckpt:
        raise ValueError(f"checkpoint {str(path)!r} holds weights but no model description ('model_config'): it was "
                         "written by a Trainer used from Python without checkpoint_meta={'model_config': ...}. "
                         "Build the model yourself and load torch.load(path, weights_only=True)['model'] into it")
    model = build_model(ckpt["model_config"], ckpt.get("normalization"), trusted=False, source=str(path))
    model.load_state_dict(ckpt["model"])
    return model.to(map_location).eval()


# Config keys a resumed run may change: how long it trains, how it reports, where it runs. Anything else (model, data,
# seed, plugins, ...) would make the resumed run a different training than its checkpoint.
RESUMABLE_CHANGES = ("trainer.resume", "trainer.epochs", "trainer.time_limit", "trainer.early_stopping_patience",
                     "trainer.grad_clip", "trainer.device", "trainer.num_workers", "trainer.eval_batch_size",
                     "trainer.test_every", "trainer.log_every", "trainer.progress_bar", "trainer.tensorboard",
                     "trainer.plots", "trainer.plot_samples", "imports")
# Settings a resumed run applies, and records: the optimizer's hyper-parameters that do not change the shape of its
# saved state (so not its class, amsgrad, or L-BFGS's history_size), and the whole learning-rate schedule, which is
# rebuilt and replayed to the checkpoint's step.
APPLIED_ON_RESUME = ("optim.lr", "optim.weight_decay", "optim.betas", "optim.momentum", "optim.dampening",
                     "optim.nesterov", "optim.eps", "optim.max_iter", "optim.tolerance_grad", "optim.tolerance_change",
                     "optim.objective_scale", "scheduler")


def resume_identity(model_config: dict[str, Any], normalization: Any, config: dict[str, Any],
                    stage: str | None = None) -> dict[str, Any]:
    """What a checkpoint must share with a run that resumes from it (apart from :data:`APPLIED_ON_RESUME`)."""
    config = {k: dict(v) if isinstance(v, dict) else v for k, v in config.items()}
    for key in RESUMABLE_CHANGES:
        group, _, name = key.partition(".")
        if name:
            config.get(group, {}).pop(name, None)
        else:
            config.pop(group, None)
    return {"model_config": model_config, "normalization": normalization, "config": config, "stage": stage}


def _applied(key: str) -> bool:
    """Whether a difference at ``key`` (of :func:`resume_identity`) is one a resumed run applies."""
    return any(key == f"config.{k}" or key.startswith(f"config.{k}.") for k in APPLIED_ON_RESUME)


def checkpoint_identity(ckpt: dict[str, Any]) -> dict[str, Any]:
    return resume_identity(ckpt.get("model_config"), ckpt.get("normalization"), ckpt.get("config") or {},
                           ckpt.get("stage"))


def find_resume_checkpoint(resume: str | None, output_dir: Path,
                           identity: dict[str, Any]) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint to resume from and its contents: ``PATH`` (a file or a run folder); or for ``auto`` this
    run's ``last.pt``, else the newest ``last.pt`` of a sibling run (same parent folder) with the same
    :func:`resume_identity`. Each file is read once."""
    from kernelnn.training.errors import ConfigError

    if not resume:
        return None
    if resume != "auto":
        path = Path(resume).expanduser()
        if path.is_dir():
            path = path / "checkpoints" / "last.pt" if (path / "checkpoints").is_dir() else path / "last.pt"
        if not path.is_file():
            raise ConfigError(f"trainer.resume={resume!r}: no checkpoint at {str(path)!r}")
        try:
            return path, load_checkpoint(path)
        except ValueError as err:
            raise ConfigError(f"trainer.resume={resume!r}: {err}") from err
    own = output_dir / "checkpoints" / "last.pt"
    if own.is_file():
        try:
            return own, load_checkpoint(own)
        except ValueError as err:  # never start afresh over this run's own (damaged) checkpoint
            fallback = previous(own)
            if fallback.is_file():
                try:
                    ckpt = load_checkpoint(fallback)
                except ValueError:
                    pass
                else:
                    logging.getLogger("kernelnn.training").warning(
                        "%s; resuming from the previous checkpoint %s (epoch %s)", err, fallback, ckpt.get("epoch"))
                    return fallback, ckpt
            raise ConfigError(f"trainer.resume=auto: this run's checkpoint cannot be resumed: {err}") from err
    candidates = sorted(output_dir.parent.glob("*/checkpoints/last.pt"), key=lambda p: p.stat().st_mtime,
                        reverse=True)
    for path in candidates:
        try:
            ckpt = load_checkpoint(path)
        except (ValueError, FileNotFoundError):
            continue
        if not config_diff(checkpoint_identity(ckpt), identity):
            return path, ckpt
    if candidates:
        logging.getLogger("kernelnn.training").info(
            "trainer.resume=auto: %d earlier run(s) under %s trained another config; starting fresh",
            len(candidates), output_dir.parent)
    return None


def check_resume_identity(path: Path, ckpt: dict[str, Any], identity: dict[str, Any],
                          config: dict[str, Any]) -> list[str]:
    """A resumed run must continue the same training as the checkpoint's: only :data:`RESUMABLE_CHANGES` and
    :data:`APPLIED_ON_RESUME` may differ. Returns every difference of this run's ``config`` from the checkpoint's
    (``key: old -> new``), for the record."""
    from kernelnn.training.errors import ConfigError

    refused = [f"{key}: {a!r} -> {b!r}" for key, a, b in differences(checkpoint_identity(ckpt), identity)
               if not _applied(key)]
    if refused:
        raise ConfigError(f"trainer.resume: checkpoint {str(path)!r} was trained with another config (checkpoint "
                          "-> now):\n  " + "\n  ".join(refused) + "\nA resumed run may change only "
                          f"{', '.join(RESUMABLE_CHANGES + APPLIED_ON_RESUME)}; start a new run for anything else")
    return [f"{key}: {a!r} -> {b!r}" for key, a, b in differences(ckpt.get("config") or {}, config)
            if key not in ("trainer.resume", "trainer.epochs")]  # the length is recorded with the re-planning


def check_training_checkpoint(ckpt: Any, path: Path) -> None:
    """The structure a resumed run relies on, checked before anything of it is used: a crafted or damaged
    ``last.pt`` fails here with a message, not deep in the loop (nor by silently steering the schedule)."""
    from kernelnn.training.errors import ConfigError

    def fail(what: str) -> None:
        raise ConfigError(f"trainer.resume: checkpoint {str(path)!r} is malformed: {what}")

    def count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    if not isinstance(ckpt, dict):
        fail(f"it holds a {type(ckpt).__name__}, not a dict")
    for key, kind in (("model", dict), ("optimizer", dict), ("scheduler", dict), ("scaler", dict), ("history", list),
                      ("rng", list)):
        if not isinstance(ckpt.get(key), kind):
            fail(f"{key!r} must be a {kind.__name__}, got {type(ckpt.get(key)).__name__}")
    for key in ("epoch", "step", "bad_epochs"):
        if not count(ckpt.get(key)):
            fail(f"{key!r} must be an integer >= 0, got {ckpt.get(key)!r}")
    if ckpt.get("best_epoch") is not None and not count(ckpt["best_epoch"]):
        fail(f"'best_epoch' must be an integer >= 0 or None, got {ckpt['best_epoch']!r}")
    if ckpt.get("best") is not None and not isinstance(ckpt["best"], int | float):
        fail(f"'best' must be a number or None, got {ckpt['best']!r}")
    if not ckpt["rng"] or not all(isinstance(r, dict) for r in ckpt["rng"]):
        fail("'rng' must hold one RNG state (a dict) per rank")
    if len(ckpt["history"]) != ckpt["epoch"] or not all(isinstance(r, dict) for r in ckpt["history"]):
        fail(f"'history' must hold one row (a dict) per epoch: {len(ckpt['history'])} rows for epoch {ckpt['epoch']}")
    if not isinstance(ckpt["optimizer"].get("param_groups"), list) or not isinstance(ckpt["optimizer"].get("state"),
                                                                                      dict):
        fail("'optimizer' must be an optimizer state_dict (state and param_groups)")
    steps = ckpt["scheduler"].get("last_epoch")
    if "last_epoch" in ckpt["scheduler"] and not (count(steps) and steps <= ckpt["step"]):
        fail(f"the schedule's step (last_epoch) must be an integer in [0, step={ckpt['step']}], got {steps!r}")
    for key, kind in (("plugins", dict), ("resumes", list), ("steps", list)):
        if key in ckpt and not isinstance(ckpt[key], kind):
            fail(f"{key!r} must be a {kind.__name__}, got {type(ckpt[key]).__name__}")
