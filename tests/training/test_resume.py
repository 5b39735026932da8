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
    """The message's advice works as written: resuming from the named checkpoint with a lower rate applies it."""
    last = tmp_path / "checkpoints" / "last.pt"
    with pytest.raises(NonFiniteLossError, match=r"training loss became nan in epoch 3 .* last good checkpoint "
                       rf"\(epoch 2\) is intact: continue with trainer.resume={last} and a lower optim.lr"):
        run(tiny_darcy("trainer.epochs=3"), output_dir=tmp_path, plugins=[PoisonAt(2)])
    ckpt = load_checkpoint(last)
    assert ckpt["epoch"] == 2
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())
    resumed = run(tiny_darcy("trainer.epochs=3", "optim.lr=0.0005", f"trainer.resume={last}"), output_dir=tmp_path)
    assert resumed["epochs"] == 3 and math.isfinite(resumed["test"]["test_16/l2"])
    assert resumed["resumes"] == [{"epoch": 2, "changes": ["optim.lr: 0.001 -> 0.0005"]}]
    planned = run(tiny_darcy("trainer.epochs=3", "optim.lr=0.0005"), output_dir=tmp_path / "planned")
    rates = [row["lr"] for row in load_checkpoint(planned["last_checkpoint"])["history"]]
    assert load_checkpoint(last)["history"][-1]["lr"] == rates[-1]  # the new rate's schedule at epoch 3


def test_checkpoint_of_another_model_is_refused(tiny_darcy, tmp_path):
    first = run(tiny_darcy("trainer.epochs=1"), output_dir=tmp_path / "a")
    expected = r"was trained with another config .*\n  config.model.hidden_channels: 8 -> 12"
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


def test_a_finished_run_resumed_elsewhere_names_only_files_that_exist(tiny_darcy, tmp_path):
    first = run(tiny_darcy("trainer.epochs=1"), output_dir=tmp_path / "a")
    again = run(tiny_darcy("trainer.epochs=1", f"trainer.resume={tmp_path / 'a'}"), output_dir=tmp_path / "b")
    assert again["epochs_run"] == 0 and again["seconds_per_epoch"] is None
    for name in ("checkpoints/last.pt", "checkpoints/best.pt", "metrics.csv"):
        assert (tmp_path / "b" / name).is_file(), name
    assert again["test"] == first["test"]


def test_two_runs_never_share_a_folder(tiny_darcy, tmp_path):
    run(tiny_darcy("trainer.epochs=1"), output_dir=tmp_path)
    before = (tmp_path / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run .* trainer.resume=auto, or give this run another"):
        run(tiny_darcy("trainer.epochs=2"), output_dir=tmp_path)
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == before
    # A live run's lock keeps others out; a dead run's lock is stale and taken over.
    import os
    import socket

    other = tmp_path / "other"
    other.mkdir()
    (other / ".kernelnn-run.lock").write_text(f"{socket.gethostname()} {os.getppid()}\n")  # a live process
    with pytest.raises(ConfigError, match=r"is in use by another run \(host .*, pid"):
        run(tiny_darcy("trainer.epochs=1"), output_dir=other)
    dead = tmp_path / "dead"
    dead.mkdir()
    (dead / ".kernelnn-run.lock").write_text(f"{socket.gethostname()} 999999999\n")
    assert run(tiny_darcy("trainer.epochs=1"), output_dir=dead)["epochs"] == 1
    assert not (dead / ".kernelnn-run.lock").exists()  # released at the end


def test_a_damaged_own_checkpoint_is_not_silently_replaced(tiny_darcy, tmp_path):
    run(tiny_darcy("trainer.epochs=1"), output_dir=tmp_path)
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="this run's checkpoint cannot be resumed"):
        run(tiny_darcy("trainer.epochs=2", "trainer.resume=auto"), output_dir=tmp_path)


def test_temporary_files_of_a_killed_save_are_cleaned(tiny_darcy, tmp_path):
    ckpt_dir = tmp_path / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    for name in (".last.pt.tmp999999999", ".last.prev.pt.tmp999999999", ".best.pt.tmp999999999"):
        (ckpt_dir / name).write_bytes(b"half a checkpoint")  # their writer is gone
    run(tiny_darcy("trainer.epochs=1"), output_dir=tmp_path)
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["best.pt", "last.pt"]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_last_checkpoint_falls_back_to_the_previous_one(tiny_darcy, tmp_path, damage, caplog):
    """last.pt is verified on load (the CRC-32 of every archive entry; torch alone loads a flipped tensor); resume
    then falls back to last.prev.pt with a warning and repeats the lost epoch, ending where the full run ends."""
    overrides = ("trainer.epochs=3", "trainer.deterministic=true")
    full = run(tiny_darcy(*overrides), output_dir=tmp_path / "full")
    with pytest.raises(Crash):
        run(tiny_darcy(*overrides), output_dir=tmp_path / "run", plugins=[CrashAfter(2)])
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    data = bytearray(last.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    last.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged|not a complete torch archive"):
        load_checkpoint(last)
    with caplog.at_level("WARNING", logger="kernelnn.training"):
        resumed = run(tiny_darcy(*overrides, "trainer.resume=auto"), output_dir=tmp_path / "run")
    assert "resuming from the previous checkpoint" in caplog.text and resumed["epochs_run"] == 2
    a, b = load_checkpoint(full["last_checkpoint"]), load_checkpoint(resumed["last_checkpoint"])
    for key, value in a["model"].items():
        assert torch.equal(b["model"][key], value), key


def test_without_best_pt_the_summary_says_the_final_weights_were_tested(tiny_darcy, tmp_path, caplog):
    import logging
    import shutil

    first = run(tiny_darcy("trainer.epochs=1"), output_dir=tmp_path / "a")
    assert first["tested_weights"] == "best"
    (tmp_path / "lone").mkdir()
    shutil.copy(first["last_checkpoint"], tmp_path / "lone" / "last.pt")  # no best.pt beside it
    with caplog.at_level(logging.INFO, logger="kernelnn"):
        again = run(tiny_darcy("trainer.epochs=1", f"trainer.resume={tmp_path / 'lone' / 'last.pt'}"),
                    output_dir=tmp_path / "b")
    assert again["tested_weights"] == "final"
    assert "(final weights: no best.pt was written)" in caplog.text
