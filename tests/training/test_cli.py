"""``python train.py`` as a user runs it: end to end, multirun, clean errors, and torchrun (DDP on CPU)."""

import os
import subprocess
import sys

import pytest
import torch

from kernelnn.training.checkpoint import load_checkpoint
from tests.conftest import QUIET_TRAINER, ROOT, TINY_DATA, TINY_MODEL

TINY = [*TINY_DATA["darcy"], *TINY_MODEL["fno"], "trainer.batch_size=4", "trainer.progress_bar=false"]


def train(*args, launcher=(sys.executable,), cwd=ROOT, timeout=300):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*launcher, str(ROOT / "train.py"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_train_py_end_to_end(tmp_path):
    out = tmp_path / "run"
    proc = train(*TINY, "trainer.epochs=2", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "Test l2 (best weights): test_16" in log and "test_32" in log
    for path in ("checkpoints/last.pt", "checkpoints/best.pt", "metrics.csv", "plots/loss_curves.png",
                 "plots/samples_test_16.png", "plots/samples_test_32.png", ".hydra/config.yaml"):
        assert (out / path).is_file(), path
    header, *rows = (out / "metrics.csv").read_text().splitlines()
    assert header.startswith("epoch,step,lr,train/loss") and len(rows) == 2
    assert (out / "plots/loss_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_multirun_as_the_readme_writes_it(tmp_path):
    """``python train.py -m key=a,b`` with the default sweep folder: multirun/<data>-<model>/<stamp>/<job>."""
    proc = train("-m", *TINY, *QUIET_TRAINER, "trainer.epochs=1,2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = (tmp_path / "multirun" / "darcy-fno").iterdir()
    epochs = sorted(load_checkpoint(sweep / str(i) / "checkpoints" / "last.pt")["epoch"] for i in (0, 1))
    assert epochs == [1, 2]


def test_bad_value_exits_with_a_clear_message(tmp_path):
    proc = train(*TINY, "trainer.epochs=0", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    assert "error: trainer.epochs=0 must be a positive integer" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.distributed
def test_torchrun_two_processes_match_one_process(tmp_path):
    args = [*TINY, *QUIET_TRAINER, "trainer.epochs=2", "trainer.batch_size=8", "trainer.eval_batch_size=3"]
    single = train(*args, f"hydra.run.dir={tmp_path / 'single'}")
    assert single.returncode == 0, single.stderr[-3000:]
    launcher = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2")
    # No hydra.run.dir: both ranks must agree on the one time-stamped folder under the working directory.
    ddp = train(*args, launcher=launcher, cwd=tmp_path)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "darcy-fno").iterdir()
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "metrics.csv").is_file()
    a = load_checkpoint(tmp_path / "single" / "checkpoints" / "last.pt")
    b = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert b["world_size"] == 2 and len(b["rng"]) == 2
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=1e-4, atol=1e-5)
    assert "test_32/l2" in a["history"][-1]
    for row_a, row_b in zip(a["history"], b["history"], strict=True):
        assert row_a.keys() == row_b.keys()
        for key in [k for k in row_a if k.startswith(("train/", "val/", "test_"))]:
            # Sharded evaluation (eval batch 3 over 2 ranks) counts every sample exactly once.
            assert abs(row_a[key] - row_b[key]) <= 1e-4 * abs(row_a[key]), key


def test_a_second_run_on_the_same_folder_leaves_the_first_untouched(tmp_path):
    out = tmp_path / "run"
    first = train(*TINY, *QUIET_TRAINER, "trainer.epochs=1", f"hydra.run.dir={out}")
    assert first.returncode == 0, first.stderr[-3000:]
    kept = {p: p.read_bytes() for p in [out / ".hydra" / "config.yaml", out / "checkpoints" / "last.pt",
                                        out / "metrics.csv"]}
    second = train(*TINY, *QUIET_TRAINER, "trainer.epochs=2", "model.hidden_channels=6", f"hydra.run.dir={out}")
    assert second.returncode == 2 and "already holds a run" in second.stderr and "Traceback" not in second.stderr
    assert all(p.read_bytes() == data for p, data in kept.items())
