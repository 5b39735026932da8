"""Kernels placed on the signal before training: every :class:`~kernelnn.protocols.SignalPlaced` layer (NeuRBF's
adaptive kernels) gets weighted k-means on the signal's points, weighted where the signal varies, as the authors:

- an image: its training pixels, weighted by the Sobel gradient magnitude of the image (held-out pixels replaced
  by their training neighbours' mean first, so they place nothing);
- a signed distance field: the training points, weighted by ``1 / |sdf|`` (kernels gather at the surface);
- other data: the training inputs, uniformly.

Deterministic for the run's seed (every DDP rank places the same kernels); a resumed run loads its kernels over
them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kernelnn.layers.adaptive_rbf import image_gradient_magnitude
from kernelnn.protocols import SignalPlaced, layers_with
from kernelnn.training.config import require
from kernelnn.training.errors import ConfigError
from kernelnn.training.plugins.base import TrainingPlugin


@dataclass
class FieldInitConfig:
    enabled: bool = True
    n_iter: int = 10  # Lloyd iterations (the authors' image setting)
    alpha: float = 0.5  # shapes: alpha / covariance (a kernel is 1/2 at Mahalanobis distance 1 / sqrt(alpha))

    def __post_init__(self) -> None:
        require(isinstance(self.n_iter, int) and self.n_iter >= 0, "n_iter", self.n_iter, "must be an int >= 0")
        require(self.alpha > 0, "alpha", self.alpha, "must be positive")


class FieldInit(TrainingPlugin):
    name = "field_init"
    Config = FieldInitConfig

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def setup(self, trainer) -> None:
        layers = layers_with(trainer.model, SignalPlaced)
        if not layers:
            return
        points, weights = self.signal_points(trainer)
        for name, layer in layers.items():
            try:
                layer.init_kernels(points, weights, n_iter=self.config.n_iter, alpha=self.config.alpha,
                                   seed=trainer.seed)
            except ValueError as err:
                raise ConfigError(f"plugins.{self.name}: layer {name or 'model'}: {err}") from err

    @staticmethod
    def signal_points(trainer):
        data = trainer.data
        layout = getattr(data, "field_layout", None) or {}
        if layout.get("kind") == "image":
            _, y = data.tests["test"].tensors  # every pixel, row-major
            height, width = layout["shape"]
            image = y.T.reshape(-1, height, width).double()
            mask = layout.get("train_mask")
            if mask is None:
                return data.tests["test"].tensors[0], image_gradient_magnitude(image).reshape(-1)
            # Held-out pixels must not place kernels: each gets the mean of the training pixels around it (3 x 3,
            # else the training mean) before the gradient is taken, and only training pixels are points.
            m = mask.double()[None, None]
            box = torch.ones(1, 1, 3, 3, dtype=torch.float64)
            sums = torch.nn.functional.conv2d(image[:, None] * m, box, padding=1)[:, 0]
            counts = torch.nn.functional.conv2d(m, box, padding=1)[0]
            mean = (image * m[0]).sum((1, 2), keepdim=True) / m.sum()
            filled = torch.where(counts > 0, sums / counts.clamp_min(1), mean)
            image = torch.where(mask, image, filled)
            weights = image_gradient_magnitude(image).reshape(-1)[mask.reshape(-1)]
            return data.train.tensors[0], weights
        x, y = data.train.tensors
        if layout.get("kind") == "sdf":
            return x, 1 / (y.reshape(-1).double().abs() + 1e-9)
        return x, None
