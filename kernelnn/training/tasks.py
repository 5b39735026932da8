"""What is learned: the training loss and the evaluation metrics of each kind of task."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kernelnn.losses import H1Loss, LpLoss, NegativeSobolevLoss


class OperatorTask:
    """Field in, field out. Loss: relative ``l2``, ``h1`` or ``negative_sobolev`` (H^-s, exact on the torus);
    metrics: relative L2 and H1 per sample, plus the loss itself."""

    losses = ("l2", "h1", "negative_sobolev")
    lower_is_better = {"l2": True, "h1": True, "negative_sobolev": True}

    def __init__(self, loss: str = "l2", periodic: bool = False, dim: int = 1, sobolev_s: float = 1.0) -> None:
        if loss not in self.losses:
            raise ValueError(f"trainer.loss={loss!r} is not valid for operator learning; valid: {self.losses}")
        self.loss_name = loss
        per_sample = {"l2": LpLoss(p=2, reduction="none")}
        if dim >= 1:
            per_sample["h1"] = H1Loss(periodic=periodic, reduction="none")
        if loss == "negative_sobolev":
            per_sample["negative_sobolev"] = NegativeSobolevLoss(sobolev_s, reduction="none")
        self._metrics = per_sample
        self.metric_names = sorted(per_sample)
        self.main_metric = loss

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self._metrics[self.loss_name](pred, target).mean()

    def metrics(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample metric values ``(batch,)``; the trainer averages them over a whole set."""
        return {name: fn(pred, target) for name, fn in self._metrics.items()}


class ClassificationTask:
    """Class logits ``(batch, classes)`` against integer labels. Loss: cross-entropy; metrics add accuracy."""

    losses = ("cross_entropy",)
    lower_is_better = {"cross_entropy": True, "accuracy": False}

    def __init__(self, loss: str = "cross_entropy") -> None:
        if loss not in self.losses:
            raise ValueError(f"trainer.loss={loss!r} is not valid for classification; valid: {self.losses}")
        self.loss_name = loss
        self.main_metric = "accuracy"
        self.metric_names = ["accuracy", "cross_entropy"]

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels)

    def metrics(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "cross_entropy": F.cross_entropy(logits, labels, reduction="none"),
            "accuracy": (logits.argmax(-1) == labels).float(),
        }


class RegressionTask:
    """Vectors in, vectors out ``(batch, features)``. Loss: mean squared error; metrics add mean absolute error."""

    losses = ("mse",)
    lower_is_better = {"mse": True, "mae": True, "rmse": True}
    # Metrics computed from the set's means (RMSE is not a mean of per-sample values).
    derived_metrics = {"rmse": ("mse", math.sqrt)}

    def __init__(self, loss: str = "mse") -> None:
        if loss not in self.losses:
            raise ValueError(f"trainer.loss={loss!r} is not valid for regression; valid: {self.losses}")
        self.loss_name = loss
        self.main_metric = "mse"
        self.metric_names = ["mae", "mse"]

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(pred, target)

    def metrics(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        err = (pred - target).flatten(1)
        return {"mse": err.square().mean(1), "mae": err.abs().mean(1)}


def build_task(task: str, loss: str, periodic: bool, dim: int, sobolev_s: float = 1.0):
    if task == "operator":
        return OperatorTask("l2" if loss == "auto" else loss, periodic=periodic, dim=dim, sobolev_s=sobolev_s)
    if task == "regression":
        return RegressionTask("mse" if loss == "auto" else loss)
    return ClassificationTask("cross_entropy" if loss == "auto" else loss)
