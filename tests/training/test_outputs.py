"""What a run leaves behind: a slim best.pt, the learning rate each epoch trained with, a summary that names only
what exists, and checkpoints that cannot choose code to run."""

import logging
import os

import pytest
import torch

from kernelnn.models import MLP
from kernelnn.training import ConfigError, Trainer, TrainerConfig, load_model, run
from kernelnn.training.checkpoint import TRAINING_FORMAT, WEIGHTS_FORMAT, load_checkpoint
from kernelnn.training.tasks import RegressionTask


def test_best_checkpoint_holds_what_inference_needs_only(tiny_darcy, tmp_path):
    summary = run(tiny_darcy("trainer.epochs=2"), output_dir=tmp_path)
    best, last = load_checkpoint(summary["best_checkpoint"]), load_checkpoint(summary["last_checkpoint"])
    assert best["format"] == WEIGHTS_FORMAT and last["format"] == TRAINING_FORMAT
    assert not {"optimizer", "scheduler", "scaler", "rng", "history"} & set(best)
    assert {"model", "model_config", "normalization", "best", "best_epoch", "monitor"} <= set(best)
    assert os.path.getsize(summary["best_checkpoint"]) < 0.6 * os.path.getsize(summary["last_checkpoint"])
    assert load_model(summary["best_checkpoint"]) is not None
    with pytest.raises(ConfigError, match="best.pt holds the best weights only; resume from last.pt"):
        run(tiny_darcy("trainer.epochs=3", f"trainer.resume={summary['best_checkpoint']}"), output_dir=tmp_path / "b")


def test_metrics_log_the_rate_each_epoch_trained_with(tiny_darcy, tmp_path):
    summary = run(tiny_darcy("trainer.epochs=1", "scheduler=cosine", "optim.lr=2e-3"), output_dir=tmp_path)
    header, row = (tmp_path / "metrics.csv").read_text().splitlines()
    assert float(row.split(",")[header.split(",").index("lr")]) == pytest.approx(2e-3)  # not the decayed 0.0
    steps = load_checkpoint(summary["last_checkpoint"])["steps"]
    assert steps and steps[-1]["epoch"] == 1.0 and all(s["loss"] > 0 for s in steps)


def test_summary_names_plots_only_when_drawn(tiny_darcy, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="kernelnn.training"):
        summary = run(tiny_darcy("trainer.epochs=1"), output_dir=tmp_path)  # QUIET_TRAINER: plots=false
    assert summary["plots"] == [] and not (tmp_path / "plots").exists()
    assert "Plots:" not in caplog.text and "Test l2 (best weights)" in caplog.text


def python_trainer(tmp_path, meta=None):
    x = torch.randn(16, 3)
    data = torch.utils.data.TensorDataset(x, x[:, :2])
    return Trainer(MLP(3, 2, hidden=[4]), RegressionTask(), data, {"val": data},
                   make_optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
                   make_scheduler=lambda o, **k: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0),
                   options=TrainerConfig(epochs=1, batch_size=8, progress_bar=False, tensorboard=False),
                   output_dir=tmp_path, device=torch.device("cpu"), checkpoint_meta=meta)


def test_load_model_says_what_a_python_trainers_checkpoint_lacks(tmp_path):
    trainer = python_trainer(tmp_path / "bare")
    trainer.fit()
    with pytest.raises(ValueError, match="holds weights but no model description .* checkpoint_meta="):
        load_model(tmp_path / "bare" / "checkpoints" / "last.pt")
    described = python_trainer(tmp_path / "described", meta={
        "model_config": {"_target_": "kernelnn.models.MLP", "in_features": 3, "out_features": 2, "hidden": [4]}})
    described.fit()
    model = load_model(tmp_path / "described" / "checkpoints" / "best.pt")
    x = torch.randn(5, 3)
    torch.testing.assert_close(model(x), described.model.eval()(x))


def test_evaluation_shows_a_progress_bar_when_asked(tmp_path, capsys):
    """Long evaluations (MNIST's test set) are not silent: tqdm's 'evaluating' bar, on stderr, when the trainer's
    progress bar is on, and nothing when it is off."""
    x = torch.randn(64, 3)
    data = torch.utils.data.TensorDataset(x, x[:, :2])
    for progress_bar in (True, False):
        trainer = Trainer(MLP(3, 2, hidden=[4]), RegressionTask(), data, {"val": data, "test": data},
                          make_optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
                          make_scheduler=lambda o, **k: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0),
                          options=TrainerConfig(epochs=1, batch_size=8, progress_bar=progress_bar,
                                                tensorboard=False),
                          output_dir=tmp_path / str(progress_bar), device=torch.device("cpu"))
        capsys.readouterr()
        trainer.evaluate()
        err = capsys.readouterr().err
        assert ("evaluating" in err) is progress_bar, err
