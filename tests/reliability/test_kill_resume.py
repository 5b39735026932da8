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
        "trainer.epochs=40", "trainer.deterministic=true", "trainer.test_every=5"]
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
    for _ in range(15):
        proc = start(out, "trainer.resume=auto")
        time.sleep(rng.uniform(2.0, 6.0))  # start-up takes ~3 s: kills land in training, evaluation and saving
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            continue
        _, err = proc.communicate()
        assert proc.returncode == 0, err[-3000:]
        break
    else:  # every try was killed: one last run to the end
        last = start(out, "trainer.resume=auto")
        _, err = last.communicate(timeout=600)
        assert last.returncode == 0, err[-3000:]
    assert kills >= 2
    a, b = load_checkpoint(tmp_path / "full/run/checkpoints/last.pt"), load_checkpoint(out / "checkpoints/last.pt")
    assert b["epoch"] == a["epoch"] == 40
    for key, value in a["model"].items():
        assert torch.equal(b["model"][key], value), key
    assert comparable(b["history"]) == comparable(a["history"])
    left = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert left == ["best.pt", "last.prev.pt", "last.pt"], left  # no temporary file of a killed write survives
    assert not (out / ".kernelnn-run.lock").exists()
