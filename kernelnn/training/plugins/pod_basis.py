"""POD bases: layers with a basis of their outputs (POD-DeepONet's trunk) fit it to the training targets."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from kernelnn.protocols import OutputBasisFitted, layers_with
from kernelnn.training.config import require
from kernelnn.training.plugins.base import TrainingPlugin


@dataclass
class PODBasisConfig:
    enabled: bool = True
    samples: int = 100_000  # training targets the basis is fitted on (all of a usual training set)

    def __post_init__(self) -> None:
        require(self.samples >= 1, "samples", self.samples, "must be a positive integer")


class PODBasis(TrainingPlugin):
    """Before training, every :class:`~kernelnn.protocols.OutputBasisFitted` layer fits its basis to the first
    ``samples`` training targets, scaled as the model is trained to output them (through the run's
    :class:`~kernelnn.models.Normalized` wrapper). Deterministic, so DDP ranks agree; a resumed run loads the
    basis it trained with (it is a buffer of the model)."""

    name = "pod_basis"
    Config = PODBasisConfig

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def setup(self, trainer) -> None:
        layers = list(layers_with(trainer.model, OutputBasisFitted).values())
        if not layers:
            return
        targets = []
        for _, y in DataLoader(trainer.train_set, batch_size=1024):
            targets.append(y)
            if sum(len(t) for t in targets) >= self.config.samples:
                break
        y = torch.cat(targets)[: self.config.samples].to(trainer.device, trainer.dtype)
        normalize = getattr(trainer.model, "normalize_target", None)
        if callable(normalize):
            y = normalize(y)
        fitted = [type(layer).__name__ for layer in layers if layer.fit_output_basis(y)]
        if fitted:
            trainer.log(f"output bases fitted to {len(y)} training targets: {', '.join(fitted)}")
