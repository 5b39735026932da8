"""Train any kernelnn model: ``python train.py [model=...] [data=...] [key=value ...]`` (Hydra overrides)."""

import logging
import sys

import hydra
from omegaconf import DictConfig

from kernelnn.training.launch import prepare_launch

prepare_launch()
log = logging.getLogger("kernelnn")


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    import torch.distributed as dist

    from kernelnn.data.files import DataFileError
    from kernelnn.training import ConfigError, NonFiniteLossError, run

    try:
        summary = run(cfg)
    except (ConfigError, DataFileError, NonFiniteLossError) as err:
        log.error("%s: %s", type(err).__name__, err)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)  # on error no barrier: a rank failing alone must not wait for the others; torchrun cleans up
    if dist.is_initialized():
        dist.barrier()  # rank 0 hosts the rendezvous store: no rank may leave while others still use it
        dist.destroy_process_group()
    # The monitored value, so Hydra sweepers (e.g. Optuna) can optimise it.
    return summary["best"]


if __name__ == "__main__":
    main()
