"""Layer regularisation: every layer's own penalty (ReLinear's shrinkage, the RBF and KAN regularisers, a
user's layer with ``regularization()``) added to the training objective."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kernelnn.protocols import Regularized, layers_with
from kernelnn.training.plugins.base import TrainingPlugin


@dataclass
class RegularizationConfig:
    enabled: bool = True  # false: train without the layers' penalties (their strengths stay as configured)


class Regularization(TrainingPlugin):
    """Adds ``sum of layer.regularization()`` over :class:`~kernelnn.protocols.Regularized` layers whose
    penalty is on (``regularization_active``, default true) as the loss term ``regularization``."""

    name = "regularization"
    Config = RegularizationConfig

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def setup(self, trainer) -> None:
        self.layers = [m for m in layers_with(trainer.model, Regularized).values()
                       if getattr(m, "regularization_active", True)]

    def loss_terms(self, trainer) -> dict[str, torch.Tensor]:
        if not self.layers:
            return {}
        return {"regularization": sum(m.regularization() for m in self.layers)}
