"""KAN grid schedules (Liu et al., "KAN: Kolmogorov-Arnold Networks", 2024): grids that follow the data, and
coarse-to-fine grid refinement (pykan's fit-refine-fit recipe)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kernelnn.layers.kan import update_grids
from kernelnn.protocols import GridAdaptive, describe, layers_with
from kernelnn.training.config import require
from kernelnn.training.errors import ConfigError
from kernelnn.training.plugins.base import TrainingPlugin


@dataclass
class KANGridsConfig:
    # Update the grids from the current batch every `update_every` optimizer steps during the first `update_until`
    # steps of each stage (null: throughout; 0: never).
    update_every: int = 0
    update_until: int | None = None
    # Refine every grid to refine_sizes[i] before epoch refine_epochs[i] (0-based). Each refinement starts a new
    # stage: the optimizer and scheduler restart (sized for the epochs left) and grid updates resume.
    refine_epochs: list[int] = field(default_factory=list)
    refine_sizes: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        require(self.update_every >= 0, "update_every", self.update_every, "must be an integer >= 0 (0: off)")
        require(self.update_until is None or self.update_until >= 1, "update_until", self.update_until,
                "must be a positive integer or null")
        epochs, sizes = list(self.refine_epochs), list(self.refine_sizes)
        require(len(epochs) == len(sizes), "refine_epochs", epochs,
                f"and plugins.kan_grids.refine_sizes={sizes} must have the same length (one grid size per epoch)")
        require(all(e >= 1 for e in epochs) and epochs == sorted(set(epochs)), "refine_epochs", epochs,
                "must be increasing epoch numbers >= 1 (0-based: the epoch before which the grids are refined)")
        require(all(n >= 1 for n in sizes), "refine_sizes", sizes, "must be positive integers")


class KANGrids(TrainingPlugin):
    """Runs the schedules on every :class:`~kernelnn.protocols.GridAdaptive` layer. Grid updates gather
    samples across DDP ranks (``update_grid`` does), so every rank moves to the same grid."""

    name = "kan_grids"
    Config = KANGridsConfig

    @property
    def enabled(self) -> bool:
        return self.config.update_every > 0 or bool(self.config.refine_epochs)

    def check(self, trainer) -> None:
        if not layers_with(trainer.model, GridAdaptive):
            raise ConfigError(f"plugins.kan_grids schedules KAN grids, but {describe(trainer.model)} has no KAN "
                              "layer (try model=kan or model.neuron=kan)")

    def setup(self, trainer) -> None:
        self.layers = list(layers_with(trainer.model, GridAdaptive).values())
        late = [e for e in self.config.refine_epochs if e >= trainer.options.epochs]
        if late:  # not an error: a run resumed with more epochs reaches them
            trainer.log(f"plugins.kan_grids.refine_epochs {late} lie at or beyond trainer.epochs="
                        f"{trainer.options.epochs}: they happen only if the run is resumed with more epochs")

    def _stage_start_epoch(self, epoch: int) -> int:
        """The epoch at which the grid stage containing ``epoch`` began."""
        return max([e for e in self.config.refine_epochs if e <= epoch], default=0)

    def on_load_checkpoint(self, trainer, state) -> None:
        # A run resumed inside a later stage needs that stage's optimizer and schedule (sized for its epochs).
        start = self._stage_start_epoch(max(trainer.state.epoch - 1, 0))  # the stage of the last epoch run
        if start > 0:
            trainer.new_stage(trainer.options.epochs - start)

    def on_epoch_start(self, trainer, epoch: int) -> None:
        if epoch not in self.config.refine_epochs:
            return
        size = self.config.refine_sizes[self.config.refine_epochs.index(epoch)]
        for layer in self.layers:
            layer.refine(size)
        trainer.new_stage(trainer.options.epochs - epoch)
        trainer.log(f"epoch {epoch + 1}: KAN grids refined to {size} intervals ({len(self.layers)} layers); "
                    "optimizer restarted")

    def on_step_start(self, trainer, x) -> None:
        every, until = self.config.update_every, self.config.update_until
        steps = trainer.state.step - self._stage_start_epoch(trainer.state.epoch) * trainer.steps_per_epoch
        if every and steps % every == 0 and (until is None or steps < until):
            update_grids(trainer.model, x)
