"""SIGKILL at random moments (during epochs, evaluations and checkpoint writes), each followed by
``trainer.resume=auto``: the run ends exactly where an uninterrupted run ends, and no file is lost or left over."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from kernelnn.training.checkpoint import load_checkpoint
from tests.conftest import QUIET_TRAINER, ROOT, TINY_DATA, TINY_MODEL

ARGS = [*TINY_DATA["darcy"], *TINY_MODEL["fno"], *QUIET_TRAINER, "data.n_train=200", "trainer.batch_size=4",
        "trainer.epochs=60", "trainer.deterministic=true", "trainer.test_every=5"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def start(out, *extra):
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *ARGS, *extra, f"hydra.run.dir={out}"],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def comparable(history):
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in history]


@pytest.mark.slow
def test_random_kills_then_resume_match_the_uninterrupted_run(tmp_path):
    full = start(tmp_path / "full" / "run")  # separate parents: resume=auto would adopt a sibling run
    _, err = full.communicate(timeout=600)
    assert full.returncode == 0, err[-3000:]
    rng = random.Random(0)
    out, kills = tmp_path / "killed" / "run", 0
    last = out / "checkpoints" / "last.pt"
    for _ in range(6):  # each try writes at least one new checkpoint, then dies a moment later
        before = last.stat().st_mtime_ns if last.exists() else None
        proc = start(out, "trainer.resume=auto")
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline and (
                not last.exists() or last.stat().st_mtime_ns == before):
            time.sleep(0.02)
        if proc.poll() is not None:
            break
        time.sleep(rng.uniform(0.0, 0.4))  # inside an epoch, an evaluation or the next checkpoint write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    final = start(out, "trainer.resume=auto")
    _, err = final.communicate(timeout=600)
    assert final.returncode == 0, err[-3000:]
    assert kills >= 3
    a, b = load_checkpoint(tmp_path / "full/run/checkpoints/last.pt"), load_checkpoint(out / "checkpoints/last.pt")
    assert b["epoch"] == a["epoch"] == 60
    for key, value in a["model"].items():
        assert torch.equal(b["model"][key], value), key
    assert comparable(b["history"]) == comparable(a["history"])
    left = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert left == ["best.pt", "last.prev.pt", "last.pt"], left  # no temporary file of a killed write survives
    assert not (out / ".kernelnn-run.lock").exists()
