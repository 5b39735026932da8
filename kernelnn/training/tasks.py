"""What is learned: the training loss and the evaluation metrics of each kind of task."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kernelnn.losses import H1Loss, LpLoss, NegativeSobolevLoss, SphereLpLoss


class OperatorTask:
    """Field in, field out. Loss: relative ``l2``, ``h1`` or ``negative_sobolev`` (H^-s, exact on the torus);
    metrics: relative L2 and H1 per sample, plus the loss itself. With ``sphere_grid`` (fields on the sphere) the
    L2 error integrates with the grid's area weights, channel by channel (:class:`~kernelnn.losses.SphereLpLoss`)."""

    losses = ("l2", "h1", "negative_sobolev")
    lower_is_better = {"l2": True, "h1": True, "negative_sobolev": True}

    def __init__(self, loss: str = "l2", periodic: bool = False, dim: int = 1, sobolev_s: float = 1.0,
                 sphere_grid: str | None = None) -> None:
        if loss not in self.losses:
            raise ValueError(f"trainer.loss={loss!r} is not valid for operator learning; valid: {self.losses}")
        self.loss_name = loss
        l2 = (SphereLpLoss(sphere_grid, per_channel=True, reduction="none") if sphere_grid
              else LpLoss(p=2, reduction="none"))
        per_sample = {"l2": l2}
        if dim >= 1:
            per_sample["h1"] = H1Loss(periodic=periodic, reduction="none")
        if loss == "negative_sobolev":
            per_sample["negative_sobolev"] = NegativeSobolevLoss(sobolev_s, reduction="none")
        self._metrics = per_sample
        self.metric_names = sorted(per_sample)
        self.main_metric = loss
        self.relative = True  # every loss is relative to the target's norm: all-zero targets are refused

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


class FieldTask:
    """A field: coordinates in, values out, ``(batch, d) -> (batch, channels)`` (images, signed distances).

    Loss: mean squared error (``mse``, NeuRBF's) or mean absolute error (``l1``, Gaussian RBFNet's). Metrics: both,
    and from the set's mean squared error the RMSE and, for values in a known range (images in ``[0, 1]``:
    ``value_range`` 1), the PSNR ``10 log10(value_range^2 / mse)``.
    """

    losses = ("mse", "l1")
    lower_is_better = {"mse": True, "mae": True, "rmse": True, "psnr": False}

    def __init__(self, loss: str = "mse", value_range: float | None = None) -> None:
        if loss not in self.losses:
            raise ValueError(f"trainer.loss={loss!r} is not valid for a field; valid: {self.losses}")
        if value_range is not None and not 0 < value_range < math.inf:
            raise ValueError(f"field: value_range={value_range} must be a positive number")
        self.loss_name, self.value_range = loss, value_range
        self.main_metric = "mse"
        self.metric_names = ["mae", "mse"]
        self.derived_metrics = {"rmse": ("mse", math.sqrt)}
        if value_range is not None:
            self.derived_metrics["psnr"] = ("mse", self.psnr)

    def psnr(self, mse: float) -> float:
        return 10 * math.log10(self.value_range**2 / mse) if mse > 0 else math.inf

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(pred, target) if self.loss_name == "mse" else F.l1_loss(pred, target)

    def metrics(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        err = (pred - target).flatten(1)
        return {"mse": err.square().mean(1), "mae": err.abs().mean(1)}


class EnergyForcesTask:
    """Energies and forces of atomic systems, in either of two forms (predictions and targets alike):

    - stacked, systems of one size: ``(batch, 1 + 3 n_atoms)`` = ``[energy, forces.flatten()]``;
    - packed, systems of any sizes without padding (:class:`~kernelnn.data.atomic_systems.AtomicSystems`):
      ``{"energy": (B,), "forces": (N, 3)}`` predicted, with the targets' ``"atoms": (B,)`` (atoms per system).

    Loss: ``energy_weight * mean(((E_pred - E) / n_atoms)^2) + force_weight * mean((F_pred - F)^2)`` (energy per
    atom, so the weights do not depend on the system size; the force mean is over each system's components, then
    over systems). Metrics, per system: energy MAE (per system and per atom), force-component MAE, RMSEs, the loss.
    """

    losses = ("energy_forces",)
    lower_is_better = {"loss": True, "energy_mae": True, "energy_mae_per_atom": True, "energy_mse": True,
                       "energy_rmse": True, "force_mae": True, "force_mse": True, "force_rmse": True}
    derived_metrics = {"energy_rmse": ("energy_mse", math.sqrt), "force_rmse": ("force_mse", math.sqrt)}

    def __init__(self, loss: str = "energy_forces", energy_weight: float = 1.0, force_weight: float = 1.0) -> None:
        if loss not in self.losses:
            raise ValueError(f"trainer.loss={loss!r} is not valid for energies and forces; valid: {self.losses}")
        self.loss_name = loss
        self.energy_weight, self.force_weight = float(energy_weight), float(force_weight)
        self.main_metric = "loss"
        self.metric_names = ["energy_mae", "energy_mae_per_atom", "energy_mse", "force_mae", "force_mse", "loss"]

    @staticmethod
    def _errors(pred, target) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Energy errors ``(B,)``, per-system sums of absolute and squared force-component errors ``(B,)``, and the
        atoms per system ``(B,)``."""
        if isinstance(target, dict):
            if not isinstance(pred, dict) or not {"energy", "forces"} <= pred.keys():
                raise ValueError(f"energy_forces: packed targets need predictions {{'energy', 'forces'}}, got "
                                 f"{sorted(pred) if isinstance(pred, dict) else type(pred).__name__}")
            if not {"energy", "forces", "atoms"} <= target.keys():
                raise ValueError(f"energy_forces: packed targets need 'energy', 'forces' and 'atoms' (atoms per "
                                 f"system), got {sorted(target)}")
            atoms = target["atoms"]
            if pred["energy"].shape != target["energy"].shape or pred["forces"].shape != target["forces"].shape:
                raise ValueError(f"energy_forces: predicted energy {tuple(pred['energy'].shape)} and forces "
                                 f"{tuple(pred['forces'].shape)} do not match the targets' "
                                 f"{tuple(target['energy'].shape)} and {tuple(target['forces'].shape)}")
            if atoms.shape != target["energy"].shape or int(atoms.sum()) != len(target["forces"]) or \
                    bool((atoms < 1).any()):
                raise ValueError(f"energy_forces: atoms per system {atoms.tolist()[:8]} must be >= 1, one per energy "
                                 f"({len(target['energy'])}), summing to the forces' {len(target['forces'])} rows")
            owner = torch.arange(len(atoms), device=atoms.device).repeat_interleave(atoms)
            err = pred["forces"] - target["forces"]
            per_system = err.new_zeros(len(atoms), 2)
            per_system = per_system.index_add(0, owner, torch.stack([err.abs().sum(1), err.square().sum(1)], 1))
            return pred["energy"] - target["energy"], per_system[:, 0], per_system[:, 1], atoms
        if isinstance(pred, dict) or pred.shape != target.shape or pred.dim() != 2 or (pred.shape[1] - 1) % 3:
            raise ValueError(f"energy_forces: predictions {shape_of(pred)} and targets {tuple(target.shape)} "
                             "must both be (batch, 1 + 3 n_atoms)")
        err = pred - target
        atoms = torch.full((len(err),), (pred.shape[1] - 1) // 3, device=err.device)
        return err[:, 0], err[:, 1:].abs().sum(1), err[:, 1:].square().sum(1), atoms

    def _per_sample_loss(self, energy_err, force_sq, atoms):
        return self.energy_weight * (energy_err / atoms).square() + self.force_weight * force_sq / (3 * atoms)

    def loss(self, pred, target) -> torch.Tensor:
        energy_err, _, force_sq, atoms = self._errors(pred, target)
        return self._per_sample_loss(energy_err, force_sq, atoms).mean()

    def metrics(self, pred, target) -> dict[str, torch.Tensor]:
        energy_err, force_abs, force_sq, atoms = self._errors(pred, target)
        return {
            "energy_mae": energy_err.abs(),
            "energy_mae_per_atom": energy_err.abs() / atoms,
            "energy_mse": energy_err.square(),
            "force_mae": force_abs / (3 * atoms),
            "force_mse": force_sq / (3 * atoms),
            "loss": self._per_sample_loss(energy_err, force_sq, atoms),
        }


def shape_of(t) -> str:
    """A tensor's shape, or the type of anything else, for error messages."""
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


def build_task(task: str, loss: str, periodic: bool, dim: int, sobolev_s: float = 1.0,
               loss_weights: dict[str, float] | None = None, field_layout: dict | None = None,
               sphere_grid: str | None = None):
    if task == "energy_forces":
        weights = loss_weights or {}
        return EnergyForcesTask("energy_forces" if loss == "auto" else loss, weights.get("energy", 1.0),
                                weights.get("forces", 1.0))
    if task == "operator":
        return OperatorTask("l2" if loss == "auto" else loss, periodic=periodic, dim=dim, sobolev_s=sobolev_s,
                            sphere_grid=sphere_grid)
    if task == "field":
        return FieldTask("mse" if loss == "auto" else loss, (field_layout or {}).get("value_range"))
    if task == "regression":
        return RegressionTask("mse" if loss == "auto" else loss)
    return ClassificationTask("cross_entropy" if loss == "auto" else loss)
