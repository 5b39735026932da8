"""Data-dependent initialisation: templates (RBF centres, distance / Gaussian filters) start on the data."""

from __future__ import annotations

from dataclasses import dataclass

from kernelnn.layers.data_init import data_dependent_init
from kernelnn.protocols import DataInitialized, layers_with
from kernelnn.training.config import require
from kernelnn.training.plugins.base import TrainingPlugin


@dataclass
class DataInitConfig:
    enabled: bool = True
    samples: int = 2048  # training inputs the templates are placed on (k-means over the patches they give)

    def __post_init__(self) -> None:
        require(self.samples >= 1, "samples", self.samples, "must be a positive integer")


class DataInit(TrainingPlugin):
    """Before training, :func:`~kernelnn.layers.data_dependent_init` places every
    :class:`~kernelnn.protocols.DataInitialized` layer on the first ``samples`` training inputs, each on
    the activations the layers before it produce (deterministic for the run's seed, so DDP ranks agree).
    A resumed run then loads its trained weights over them."""

    name = "data_init"
    Config = DataInitConfig

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def setup(self, trainer) -> None:
        if not layers_with(trainer.model, DataInitialized):
            return
        x = trainer.first_inputs(self.config.samples)
        data_dependent_init(trainer.model, x, trainer.seed)
