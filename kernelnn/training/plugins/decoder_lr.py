"""A field's decoder at its own learning rate: NeuRBF's authors train the decoder MLP at 1e-2 and the kernels'
features and the grid at 5e-3. Two optimizer groups: ``"decoder"`` (every :class:`~kernelnn.protocols.Decoded`
layer's ``decoder_parameters()``) at ``lr``, ``"features"`` (the rest) at the optimizer's rate, first, so the
rate the loop logs is the optimizer's."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from kernelnn.protocols import Decoded, describe, layers_with
from kernelnn.training.config import require
from kernelnn.training.errors import ConfigError
from kernelnn.training.plugins.base import TrainingPlugin


@dataclass
class DecoderLRConfig:
    lr: float | None = None  # the decoders' learning rate (NeuRBF's authors: 1e-2; 0 freezes them); null: off

    def __post_init__(self) -> None:
        require(self.lr is None or 0 <= self.lr < math.inf, "lr", self.lr, "must be a finite number >= 0 or null")


class DecoderLR(TrainingPlugin):
    name = "decoder_lr"
    Config = DecoderLRConfig

    @property
    def enabled(self) -> bool:
        return self.config.lr is not None

    def check(self, trainer) -> None:
        if not layers_with(trainer.model, Decoded):
            raise ConfigError(f"plugins.decoder_lr.lr={self.config.lr} sets a decoder's learning rate, but "
                              f"{describe(trainer.model)} has no layer with a decoder (model=neurbf has one)")

    def param_groups(self, model: nn.Module) -> list[dict]:
        decoder = {id(p): p for layer in layers_with(model, Decoded).values() for p in layer.decoder_parameters()
                   if p.requires_grad}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in decoder]
        groups = [{"name": "features", "params": rest}] if rest else []
        return groups + ([{"name": "decoder", "params": list(decoder.values()), "lr": self.config.lr}]
                         if decoder else [])
