"""Where and how reproducibly a run computes: the device of this rank, and seeding."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from kernelnn.training import distributed as D
from kernelnn.training.errors import ConfigError


def select_device(name: str, info: D.DistInfo) -> torch.device:
    """``auto``: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU; or the named device."""
    if name == "auto":
        return torch.device(f"cuda:{info.local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"trainer.device={name!r} is not a device name (auto, cpu, cuda, cuda:0, ...)") from err
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"trainer.device={name!r}: kernelnn trains on auto, cpu or cuda[:index]")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"trainer.device={name!r} but CUDA is not available here; use trainer.device=auto "
                              "or cpu")
        if device.index is not None and info.enabled:
            raise ConfigError(f"trainer.device={name!r} names one GPU, but under torchrun each process takes "
                              "cuda:LOCAL_RANK; use trainer.device=cuda or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"trainer.device={name!r}: this machine has {torch.cuda.device_count()} GPU(s)")
        if device.index is None:
            device = torch.device(f"cuda:{info.local_rank}")
    return device


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = not deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
