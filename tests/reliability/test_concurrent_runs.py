"""Two runs started on one folder at once: the second stops at once, naming the folder and the first run's pid; the
first finishes untouched."""

import os
import subprocess
import sys
import time

from kernelnn.training.checkpoint import load_checkpoint
from tests.conftest import QUIET_TRAINER, ROOT, TINY_DATA, TINY_MODEL

ARGS = [*TINY_DATA["darcy"], *TINY_MODEL["fno"], *QUIET_TRAINER, "data.n_train=200", "trainer.batch_size=4",
        "trainer.epochs=30"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_a_second_run_on_a_busy_folder_stops_and_the_first_is_untouched(tmp_path):
    out = tmp_path / "run"
    # the first run trains for 20 s whatever the machine's speed, so the second surely starts while it holds the
    # folder (30 fixed epochs once finished before a slow second start, and the second then met a finished run)
    busy = [*ARGS, "trainer.epochs=100000", "trainer.time_limit=20", "scheduler=constant"]
    first = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *busy, f"hydra.run.dir={out}"], env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lock = out / ".kernelnn-run.lock"
    deadline = time.monotonic() + 120
    while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.exists(), "the first run never took its folder"
    second = subprocess.run([sys.executable, str(ROOT / "train.py"), *ARGS, "model.hidden_channels=6",
                             f"hydra.run.dir={out}"], env=ENV, capture_output=True, text=True, timeout=300)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-3000:]
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert f"is in use by another run (host {os.uname().nodename}, pid {first.pid})" in second.stderr, second.stderr
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["epoch"] >= 1 and ckpt["config"]["model"]["hidden_channels"] == 8
    assert "hidden_channels: 8" in (out / ".hydra" / "config.yaml").read_text()
    log = (out / "train.log").read_text()
    assert f"epoch {ckpt['epoch']}/100000" in log and "trainer.time_limit" in log
    assert "in use by another run" not in log and "hidden_channels=6" not in log
    assert not lock.exists()


def test_a_refused_resume_leaves_the_folder_s_record_as_it_was(tmp_path):
    """A resume refused for another config (here another model) leaves .hydra/ and the checkpoints as they were;
    train.log, the run's own log, gains the attempt and why it was refused."""
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), *ARGS, "trainer.epochs=1", f"hydra.run.dir={out}"],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    record = {p.name: p.read_bytes() for p in (out / ".hydra").iterdir()}
    log = (out / "train.log").read_bytes()
    refused = subprocess.run([sys.executable, str(ROOT / "train.py"), *ARGS, "trainer.epochs=2",
                              "model.hidden_channels=6", "trainer.tensorboard=true", "trainer.resume=auto",
                              f"hydra.run.dir={out}"], env=ENV,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "was trained with another config" in refused.stderr, refused.stderr[-3000:]
    assert {p.name: p.read_bytes() for p in (out / ".hydra").iterdir()} == record
    after = (out / "train.log").read_bytes()
    assert after.startswith(log) and b"ERROR] - ConfigError: trainer.resume: checkpoint" in after[len(log):]
    assert not (out / "tensorboard").exists()  # the refused run asked for TensorBoard; it opened no event file


def test_train_log_holds_the_run_from_its_start_to_the_error_that_ended_it(tmp_path):
    """Records logged before the run held its folder (data generation) are written once it does; the error that
    ends the run is its last line; nothing after the folder is released."""
    import logging

    from kernelnn.training import distributed as D
    from kernelnn.training.run_folder import HeldLog, claim

    log, root = logging.getLogger("kernelnn.test"), logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    held = HeldLog()
    try:
        log.info("before the claim")
        try:
            with claim(tmp_path, None, D.init_from_env(), held):
                log.info("inside")
                raise RuntimeError("the run broke")
        except RuntimeError:
            pass
        log.info("after the release")
    finally:
        held.close()
        root.setLevel(level)
    lines = (tmp_path / "train.log").read_text().splitlines()
    assert [line.split(" - ", 1)[1] for line in lines] == ["before the claim", "inside",
                                                           "RuntimeError: the run broke"]
