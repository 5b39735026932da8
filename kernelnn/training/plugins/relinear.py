"""ReLinear (Fan et al., "Expressivity and Trainability of Quadratic Networks", 2021): the quadratic terms of
quadratic neurons train at their own, much smaller learning rate."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from kernelnn.layers.quadratic import relinear_param_groups
from kernelnn.protocols import TwoSpeed, describe, layers_with
from kernelnn.training.config import require
from kernelnn.training.errors import ConfigError
from kernelnn.training.plugins.base import TrainingPlugin


@dataclass
class RelinearConfig:
    quadratic_lr: float | None = None  # lr of the quadratic terms W_g, b_g, W_b, c (e.g. 1e-5); null: off

    def __post_init__(self) -> None:
        require(self.quadratic_lr is None or self.quadratic_lr >= 0, "quadratic_lr", self.quadratic_lr,
                "must be a number >= 0 or null")


class ReLinear(TrainingPlugin):
    """Two optimizer groups: ``"quadratic"`` (every :class:`~kernelnn.protocols.TwoSpeed` layer's
    ``quadratic_parameters()``) at ``quadratic_lr``, ``"linear"`` (the rest) at the optimizer's rate."""

    name = "relinear"
    Config = RelinearConfig

    @property
    def enabled(self) -> bool:
        return self.config.quadratic_lr is not None

    def check(self, trainer) -> None:
        if not layers_with(trainer.model, TwoSpeed):
            raise ConfigError(f"plugins.relinear.quadratic_lr={self.config.quadratic_lr} sets ReLinear's learning "
                              f"rate of quadratic neurons, but {describe(trainer.model)} has none (try "
                              "model.neuron=quadratic)")

    def param_groups(self, model: nn.Module) -> list[dict]:
        return relinear_param_groups(model, None, self.config.quadratic_lr)
