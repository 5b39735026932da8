"""The interface between the one training loop and a family's own training behaviour.

A plugin overrides the hooks it needs; every hook of this base class does nothing. The loop calls them in this
order (``trainer`` is the :class:`~kernelnn.training.trainer.Trainer`):

==========================================  ====================================================================
hook                                        when
==========================================  ====================================================================
``check(trainer)``                          model on its device: raise ``ConfigError`` if the plugin cannot serve
                                            this model or data (every plugin's check runs before any set-up)
``setup(trainer)``                          before DDP/compile wrappers and the optimizer: place weights, find
                                            layers
``param_groups(model)``                     building the optimizer: return groups, or ``None`` for the default
``on_load_checkpoint(trainer, state)``      resuming: after the weights and plugin states, before the
                                            optimizer/scheduler states
``on_fit_start(trainer)``                   ``fit()`` begins
``on_epoch_start(trainer, epoch)``          before each epoch (0-based ``epoch``)
``on_step_start(trainer, x)``               before each optimizer step, with its (first micro-)batch input
``loss_terms(trainer)``                     after each forward: named terms added to the objective
``on_step_end(trainer)``                    after each optimizer step
``epoch_metrics(trainer)``                  after each training epoch: extra columns of ``metrics.csv``
``on_epoch_end(trainer, epoch, row)``       after evaluation and checkpointing of the epoch
``after_fit(trainer)``                      after training and testing: an extra stage (e.g. fine-tuning);
                                            a returned dict goes into the run summary under the plugin's name
``state_dict()`` / ``load_state_dict(s)``   plugin state stored in ``last.pt`` (tensors and plain data only)
==========================================  ====================================================================

Each plugin has a config section ``plugins.<name>`` whose keys are the fields of its ``Config`` dataclass
(checked by :func:`kernelnn.training.config.typed`; value checks in ``__post_init__`` with
:func:`~kernelnn.training.config.require`). ``enabled`` says from the config alone whether the plugin has
anything to do; disabled plugins are not attached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from kernelnn.training.trainer import Trainer


@dataclass
class NoOptions:
    """The config of a plugin without options."""


class TrainingPlugin:
    """Base class of training plugins; see the module docstring for the hooks and their order."""

    name: str = ""  # the config section plugins.<name> (default: the class name)
    Config: ClassVar[type] = NoOptions

    def __init__(self, config: Any = None) -> None:
        self.config = self.Config() if config is None else config

    @property
    def enabled(self) -> bool:
        return True

    # ------------------------------------------------------------------------------------------ setup
    def check(self, trainer: Trainer) -> None:
        pass

    def setup(self, trainer: Trainer) -> None:
        pass

    def param_groups(self, model: nn.Module) -> list[dict] | None:
        return None

    def on_load_checkpoint(self, trainer: Trainer, state: dict[str, Any]) -> None:
        pass

    # --------------------------------------------------------------------------------------- training
    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        pass

    def on_step_start(self, trainer: Trainer, x: torch.Tensor) -> None:
        pass

    def loss_terms(self, trainer: Trainer) -> dict[str, torch.Tensor]:
        return {}

    def on_step_end(self, trainer: Trainer) -> None:
        pass

    def epoch_metrics(self, trainer: Trainer) -> dict[str, float]:
        return {}

    def on_epoch_end(self, trainer: Trainer, epoch: int, row: dict[str, Any]) -> None:
        pass

    def after_fit(self, trainer: Trainer) -> dict[str, Any] | None:
        return None

    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"
