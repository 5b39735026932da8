"""One run per folder: a run claims its output folder for as long as it writes there.

A second run pointed at a folder that a live run holds, or at a folder holding a finished or interrupted run it
was not asked to resume, stops before writing anything: kernelnn, not Hydra, writes ``.hydra/`` and ``train.log``,
after the folder is this run's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from kernelnn.training import distributed as D
from kernelnn.training.errors import ConfigError

LOCK = ".kernelnn-run.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(lock: Path) -> tuple[str, int] | None:
    """``(host, pid)`` of the run holding ``lock`` if it is still running (a lock of a dead run is stale)."""
    try:
        host, pid = lock.read_text().split()
        pid = int(pid)
    except (OSError, ValueError):
        return None
    if host == socket.gethostname() and not _alive(pid):
        return None
    return host, pid


def _continues_own_run(out: Path, resume: str | None) -> bool:
    """Whether ``trainer.resume`` continues the run already in ``out`` (``auto``, or a path to it)."""
    if resume is None:
        return False
    if resume == "auto":
        return True
    own = (out / "checkpoints").resolve()
    path = Path(resume).expanduser().resolve()
    return path in (out.resolve(), own) or path.parent == own


class HeldLog(logging.Handler):
    """The run's log records from its start until it holds its folder, for ``train.log`` (at most ``limit``)."""

    def __init__(self, limit: int = 10_000) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.limit = limit
        logging.getLogger().addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < self.limit:
            self.records.append(record)

    def close(self) -> None:
        logging.getLogger().removeHandler(self)
        super().close()


@contextlib.contextmanager
def claim(out: Path, resume: str | None, info: D.DistInfo, held: HeldLog | None = None) -> Iterator[None]:
    """Hold ``out`` for this run (rank 0 takes the lock; every rank learns whether it got it), logging to
    ``out/train.log`` meanwhile: first the ``held`` records of the run so far, last the error that ends it, if one
    does."""
    error = None
    lock = out / LOCK
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        for _ in range(2):  # a stale lock (its run died) is removed once, then taken
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = _holder(lock)
                if holder is not None:
                    error = (f"{out} is in use by another run (host {holder[0]}, pid {holder[1]}); give this run "
                             "another folder (hydra.run.dir=...)")
                    break
                lock.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{socket.gethostname()} {os.getpid()}\n")
            if (out / "checkpoints" / "last.pt").exists() and not _continues_own_run(out, resume):
                lock.unlink()
                error = (f"{out} already holds a run (checkpoints/last.pt); continue it with trainer.resume=auto, "
                         "or give this run another folder (hydra.run.dir=...)")
                if resume is not None:
                    error += f", to resume {resume} there"
            break
    error = D.broadcast_object(error, info)
    if error:
        raise ConfigError(error)
    log_file = None
    try:
        if info.is_main:
            log_file = _log_to(out / "train.log", held)
        yield
    except BaseException as err:
        if log_file is not None:  # train.py reports it on the console once the folder is released
            log_file.handle(logging.makeLogRecord({"name": "kernelnn", "levelno": logging.ERROR,
                                                   "levelname": "ERROR", "msg": f"{type(err).__name__}: {err}"}))
        raise
    finally:
        if log_file is not None:
            logging.getLogger().removeHandler(log_file)
            log_file.close()
        if info.is_main:
            lock.unlink(missing_ok=True)


def _log_to(path: Path, held: HeldLog | None) -> logging.Handler:
    """Append the run's log records to ``path`` (what Hydra's file handler did, but only once the folder is ours),
    starting with those ``held`` so far."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    if held is not None:
        held.close()
        for record in held.records:
            handler.handle(record)
    logging.getLogger().addHandler(handler)
    return handler


def write_hydra_record(out: Path, config) -> None:
    """``out/.hydra/{config,hydra,overrides}.yaml``, as Hydra writes them, once the folder is this run's (Hydra's
    own writing is off: ``hydra.output_subdir: null``). Nothing outside a Hydra app."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    folder = out / ".hydra"
    folder.mkdir(parents=True, exist_ok=True)
    if config is not None:
        OmegaConf.save(config, folder / "config.yaml", resolve=False)
    OmegaConf.save(OmegaConf.create({"hydra": hydra_cfg}), folder / "hydra.yaml", resolve=False)
    OmegaConf.save(list(hydra_cfg.overrides.task), folder / "overrides.yaml")
