"""What ``train.py`` does before Hydra starts: one output folder for all ``torchrun`` ranks."""

from __future__ import annotations

import os
import sys
from datetime import datetime

from omegaconf import OmegaConf

STAMP_ENV = "KERNELNN_RUN_STAMP"


def run_stamp() -> str:
    """The run folder's time stamp: rank 0's under torchrun (shared through the environment), else now."""
    return os.environ.get(STAMP_ENV) or datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def register_resolvers() -> None:
    """The ``${run_stamp:}`` resolver and the structured configs (``trainer/schema``), before Hydra composes."""
    if not OmegaConf.has_resolver("run_stamp"):
        OmegaConf.register_new_resolver("run_stamp", run_stamp, use_cache=True)
    from kernelnn.training.config import register_configs

    register_configs()


def prepare_launch() -> None:
    """Register resolvers; under torchrun, agree on rank 0's time stamp and keep other ranks quiet.

    Hydra builds the output folder from ``${run_stamp:}`` before any of our code runs inside the app, so
    the process group is joined here, rank 0's stamp is broadcast, and ranks > 0 are told not to write
    Hydra's own files or logs.
    """
    register_resolvers()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    from kernelnn.training import distributed as D

    info = D.init_from_env()
    os.environ[STAMP_ENV] = D.broadcast_object(run_stamp(), info)
    if not info.is_main:
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]


register_resolvers()
