"""Delta activations in the training loop: the sparsity penalty and per-layer delta sparsity in the history."""

import pytest
import torch

from kernelnn.protocols import SparsityPenalized, layers_with
from kernelnn.training import run
from kernelnn.training.checkpoint import load_checkpoint
from kernelnn.training.errors import ConfigError
from kernelnn.training.plugins import TrainingPlugin
from tests.conftest import QUIET_TRAINER, TINY_DATA, TINY_MODEL, compose_config


def tiny(experiment, *overrides):
    return compose_config(f"experiment={experiment}", *TINY_DATA["moving_digits"], *TINY_MODEL["frame_cnn"],
                          "trainer.epochs=2", "trainer.batch_size=8", *QUIET_TRAINER, *overrides)


class PenaltyProbe(TrainingPlugin):
    """Checks at the end of each epoch that the objective is loss + rate * sum of sparsity losses."""

    def __init__(self):
        super().__init__()
        self.checked = 0

    def on_epoch_end(self, trainer, epoch, row):
        trainer.model.train()
        x, y = next(iter(trainer.train_loader))
        with torch.no_grad():
            loss, objective = trainer._objective(x, y)
            penalty = sum(m.sparsity_loss() for m in layers_with(trainer.model, SparsityPenalized).values())
        assert penalty > 0
        torch.testing.assert_close(objective, loss + 0.5 * penalty)
        self.checked += 1


def test_penalty_is_added_and_sparsity_is_logged_per_layer(tmp_path):
    probe = PenaltyProbe()
    summary = run(tiny("moving_digits_delta", "plugins.delta_sparsity.rate=0.5"), output_dir=tmp_path, plugins=[probe])
    assert probe.checked == 2
    history = load_checkpoint(summary["last_checkpoint"])["history"]
    keys = sorted(k for k in history[-1] if k.startswith("train/delta_sparsity/"))
    assert keys == ["train/delta_sparsity/features.3", "train/delta_sparsity/features.7"]
    assert all(0 <= history[-1][k] <= 1 for k in keys)


def test_dense_baseline_logs_no_delta_sparsity(tmp_path):
    summary = run(tiny("moving_digits"), output_dir=tmp_path)
    history = load_checkpoint(summary["last_checkpoint"])["history"]
    assert not any(k.startswith("train/delta_sparsity") for k in history[-1])


def test_penalty_without_delta_layers_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="plugins.delta_sparsity.rate=0.1 penalises delta activations, but"):
        run(tiny("moving_digits", "plugins.delta_sparsity.rate=0.1"), output_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"plugins.delta_sparsity.rate=-1(\.0)? must be a number >= 0"):
        run(tiny("moving_digits_delta", "plugins.delta_sparsity.rate=-1"), output_dir=tmp_path)
