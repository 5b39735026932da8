"""Delta activations (Yousefzadeh & Sifalakis, "Training for temporal sparsity in deep neural networks, application
in video processing", 2021): the sparsity penalty and the per-layer share of zero deltas."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kernelnn.protocols import SparsityPenalized, describe, layers_with
from kernelnn.training import distributed as D
from kernelnn.training.config import require
from kernelnn.training.errors import ConfigError
from kernelnn.training.plugins.base import TrainingPlugin


@dataclass
class DeltaSparsityConfig:
    rate: float = 0.0  # loss += rate * sum of the layers' sparsity_loss() (fan_out * mean|delta|); 0: statistics only

    def __post_init__(self) -> None:
        require(self.rate >= 0, "rate", self.rate, "must be a number >= 0 (0: no sparsity penalty)")


class DeltaSparsity(TrainingPlugin):
    """Adds ``rate * sum(sparsity_loss())`` of every :class:`~kernelnn.protocols.SparsityPenalized` layer
    (loss term ``delta_sparsity``), and logs each layer's share of zero deltas over the training epoch as
    ``train/delta_sparsity/<layer>`` (counts summed over DDP ranks)."""

    name = "delta_sparsity"
    Config = DeltaSparsityConfig

    def check(self, trainer) -> None:
        if self.config.rate > 0 and not layers_with(trainer.model, SparsityPenalized):
            raise ConfigError(f"plugins.delta_sparsity.rate={self.config.rate} penalises delta activations, but "
                              f"{describe(trainer.model)} has no DeltaActivation layer (try model=frame_cnn "
                              "model.delta=true)")

    def setup(self, trainer) -> None:
        self.layers = layers_with(trainer.model, SparsityPenalized)

    def on_epoch_start(self, trainer, epoch: int) -> None:
        for layer in self.layers.values():
            layer.reset_statistics()

    def loss_terms(self, trainer) -> dict[str, torch.Tensor]:
        if self.config.rate == 0 or not self.layers:
            return {}
        return {"delta_sparsity": self.config.rate * sum(m.sparsity_loss() for m in self.layers.values())}

    def epoch_metrics(self, trainer) -> dict[str, float]:
        if not self.layers:
            return {}
        stats = [m.statistics() for m in self.layers.values()]
        counts = torch.tensor([[s["delta_density"] * s["elements"], s["elements"]] for s in stats],
                              dtype=torch.float64, device=trainer.device)
        counts = D.all_reduce_sum(counts, trainer.dist)
        return {f"train/delta_sparsity/{name}": 1 - (nonzero / total.clamp_min(1)).item()
                for name, (nonzero, total) in zip(self.layers, counts, strict=True)}
