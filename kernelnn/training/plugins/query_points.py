"""Query-point training: the loss is taken at a random subset of each output's grid points, fresh every epoch."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kernelnn.data.query_points import QueryPoints
from kernelnn.training.config import require
from kernelnn.training.errors import ConfigError
from kernelnn.training.plugins.base import TrainingPlugin
from kernelnn.training.tasks import OperatorTask


@dataclass
class QueryPointsConfig:
    n_queries: int = 0  # output points per training function and epoch; 0: off (the whole grid)

    def __post_init__(self) -> None:
        require(self.n_queries >= 0, "n_queries", self.n_queries, "must be an integer >= 0 (0: off)")


class QueryPointsPlugin(TrainingPlugin):
    """Training functions become ``((u, coords), values)`` (:class:`~kernelnn.data.query_points.QueryPoints`):
    the model is called as ``model(u, coords)`` and answers ``(batch, n_queries, channels)``, as DeepONet does.
    Validation and test sets stay whole grids, at any resolution, answered by ``model(u)``. The training loss is
    the relative L2 error over the drawn points (an unbiased estimate of the grid's up to the normalisation)."""

    name = "query_points"
    Config = QueryPointsConfig

    @property
    def enabled(self) -> bool:
        return self.config.n_queries > 0

    def check(self, trainer) -> None:
        key = f"plugins.{self.name}.n_queries={self.config.n_queries}"
        if not isinstance(trainer.task, OperatorTask) or trainer.task.loss_name != "l2":
            raise ConfigError(f"{key}: query points need operator data and trainer.loss=l2 (a derivative loss needs "
                              "the whole grid)")

    def setup(self, trainer) -> None:
        key = f"plugins.{self.name}.n_queries={self.config.n_queries}"
        try:
            points = QueryPoints(trainer.train_set, self.config.n_queries, trainer.seed)
        except (ValueError, AttributeError) as err:
            raise ConfigError(f"{key}: {err}") from err
        (u, coords), values = points[0]
        try:
            with torch.no_grad():
                out = trainer.model(u[None].to(trainer.device, trainer.dtype),
                                    coords[None].to(trainer.device, trainer.dtype))
        except TypeError as err:
            raise ConfigError(f"{key}: the model cannot answer query points, model(u, coords) failed: {err}") from err
        if out.shape != (1, *values.shape):
            raise ConfigError(f"{key}: the model answered query points with shape {tuple(out.shape)}, expected "
                              f"{(1, *values.shape)} (batch, n_queries, channels)")
        trainer.use_train_set(points)
        self.points = points

    def on_epoch_start(self, trainer, epoch: int) -> None:
        self.points.epoch = epoch
