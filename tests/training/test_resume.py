"""Interrupted runs resume exactly; NaN losses stop cleanly; checkpoints are atomic and self-describing."""

import math

import pytest
import torch

from kernelnn.training import ConfigError, NonFiniteLossError, run
from kernelnn.training.checkpoint import load_checkpoint
from kernelnn.training.plugins import TrainingPlugin


class Crash(Exception):
    pass


class CrashAfter(TrainingPlugin):
    """Simulates the process dying right after epoch ``n`` was checkpointed."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def on_epoch_end(self, trainer, epoch, row):
        if epoch + 1 == self.n:
            raise Crash


def comparable(history):
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in history]


def test_resume_auto_reproduces_the_uninterrupted_run_exactly(tiny_darcy, tmp_path):
    overrides = ("trainer.epochs=4", "trainer.deterministic=true", "scheduler=cosine")
    full = run(tiny_darcy(*overrides), output_dir=tmp_path / "full")
    with pytest.raises(Crash):
        run(tiny_darcy(*overrides), output_dir=tmp_path / "broken", plugins=[CrashAfter(2)])
    assert load_checkpoint(tmp_path / "broken" / "checkpoints" / "last.pt")["epoch"] == 2
    resumed = run(tiny_darcy(*overrides, "trainer.resume=auto"), output_dir=tmp_path / "broken")
    assert resumed["epochs_run"] == 2
    a, b = load_checkpoint(full["last_checkpoint"]), load_checkpoint(resumed["last_checkpoint"])
    for key, value in a["model"].items():
        assert torch.equal(b["model"][key], value), key
    assert comparable(a["history"]) == comparable(b["history"])
    assert resumed["test"] == full["test"]


def test_resume_auto_finds_the_latest_sibling_run(tiny_darcy, tmp_path):
    with pytest.raises(Crash):
        run(tiny_darcy("trainer.epochs=3"), output_dir=tmp_path / "run1", plugins=[CrashAfter(1)])
    resumed = run(tiny_darcy("trainer.epochs=3", "trainer.resume=auto"), output_dir=tmp_path / "run2")
    assert resumed["epochs_run"] == 2 and resumed["epochs"] == 3
    history = load_checkpoint(resumed["last_checkpoint"])["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3]  # the history carried over to the new folder
    # Another model config is not resumed from: it starts fresh.
    other = run(tiny_darcy("trainer.epochs=1", "model.hidden_channels=6", "trainer.resume=auto"),
                output_dir=tmp_path / "run3")
    assert other["epochs_run"] == 1


class PoisonAt(TrainingPlugin):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_start(self, trainer, epoch):
        if epoch == self.epoch:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(math.nan)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_darcy, tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"training loss became nan in epoch 3 .* last good checkpoint .* "
                                                 r"\(epoch 2\) is intact; resume with trainer.resume=auto"):
        run(tiny_darcy("trainer.epochs=3"), output_dir=tmp_path, plugins=[PoisonAt(2)])
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 2
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())
    resumed = run(tiny_darcy("trainer.epochs=3", "trainer.resume=auto"), output_dir=tmp_path)
    assert resumed["epochs"] == 3 and math.isfinite(resumed["test"]["test_16/l2"])


def test_checkpoint_of_another_model_is_refused(tiny_darcy, tmp_path):
    first = run(tiny_darcy("trainer.epochs=1"), output_dir=tmp_path / "a")
    expected = r"does not match this run's config .*\n  model_config.hidden_channels: 8 -> 12"
    with pytest.raises(ConfigError, match=expected):
        run(tiny_darcy("trainer.epochs=2", "model.hidden_channels=12", f"trainer.resume={first['last_checkpoint']}"),
            output_dir=tmp_path / "b")


def test_checkpoint_contents_load_weights_only(tiny_darcy, tmp_path):
    summary = run(tiny_darcy("trainer.epochs=1", "trainer.amp=bf16"), output_dir=tmp_path)
    ckpt = torch.load(summary["last_checkpoint"], weights_only=True)
    for key in ("model", "optimizer", "scheduler", "scaler", "epoch", "step", "best", "config", "rng", "history"):
        assert key in ckpt
    assert isinstance(ckpt["rng"][0]["torch"], torch.Tensor)
    assert ckpt["config"]["trainer"]["epochs"] == 1
    assert not list((tmp_path / "checkpoints").glob(".*tmp*"))  # no temporary files left behind
