"""Resume never lies: what a resumed run changes is either applied and recorded, or refused with the diff."""

import re

import pytest

from kernelnn.training import ConfigError, run
from kernelnn.training.checkpoint import load_checkpoint
from tests.training.test_resume import Crash, CrashAfter

SCHEDULES = {"constant": ["scheduler=constant"], "cosine": ["scheduler=cosine", "scheduler.warmup_steps=3"],
             "step": ["scheduler=step", "scheduler.step_epochs=1"], "onecycle": ["scheduler=onecycle"]}


def training(rows):
    """What training did each epoch (the 2-epoch run also tested at its last epoch; the 4-epoch run did not)."""
    return [{k: v for k, v in row.items() if not k.startswith(("test", "time/"))} for row in rows]


def history(summary):
    return load_checkpoint(summary["last_checkpoint"])["history"]


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_schedule_resumes_with_more_epochs(tiny_darcy, tmp_path, schedule):
    """A run of 2 epochs resumed to 4 re-plans its schedule for 4: from epoch 3 on its rates are those of a run
    planned for 4 epochs from the start. A schedule that does not depend on the length (constant, step) then
    reproduces the 4-epoch run exactly."""
    args = ("trainer.deterministic=true", *SCHEDULES[schedule])
    short = run(tiny_darcy("trainer.epochs=2", *args), output_dir=tmp_path / "short")
    longer = run(tiny_darcy("trainer.epochs=4", *args, f"trainer.resume={short['last_checkpoint']}"),
                 output_dir=tmp_path / "longer")
    planned = run(tiny_darcy("trainer.epochs=4", *args), output_dir=tmp_path / "planned")
    assert longer["epochs_run"] == 2
    assert [r["lr"] for r in history(longer)[2:]] == [r["lr"] for r in history(planned)[2:]]
    assert longer["resumes"] == [{"epoch": 2, "changes": ["trainer.epochs: 2 -> 4 (the schedule re-planned for the "
                                                          "new length)"]}]
    if schedule in ("constant", "step"):
        assert training(history(longer)) == training(history(planned))
    else:  # its first two epochs ran on the 2-epoch plan
        assert history(longer)[1]["lr"] != history(planned)[1]["lr"]


@pytest.mark.parametrize("change", [["optim.lr=0.003"], ["optim.weight_decay=0.01"], ["scheduler=onecycle"],
                                    ["scheduler=step", "scheduler.step_epochs=1", "scheduler.gamma=0.1"],
                                    ["+optim.betas=[0.8,0.9]"]])
def test_optimizer_and_schedule_changes_are_applied_and_recorded(tiny_darcy, tmp_path, change):
    """Crashed after 2 of 4 epochs, resumed with another setting: epochs 3 and 4 run at the rates of a run configured
    so from the start, the optimizer's settings are the new ones, and the checkpoint and summary say what changed."""
    args = ("trainer.epochs=4", "trainer.deterministic=true", "scheduler=cosine")
    with pytest.raises(Crash):
        run(tiny_darcy(*args), output_dir=tmp_path / "run", plugins=[CrashAfter(2)])
    resumed = run(tiny_darcy(*args, *change, "trainer.resume=auto"), output_dir=tmp_path / "run")
    planned = run(tiny_darcy(*args, *change), output_dir=tmp_path / "planned")
    assert [r["lr"] for r in history(resumed)[2:]] == [r["lr"] for r in history(planned)[2:]]
    assert len(resumed["resumes"]) == 1 and resumed["resumes"][0]["epoch"] == 2
    recorded = resumed["resumes"][0]["changes"]
    assert recorded and all(line.split(":")[0].startswith(("optim.", "scheduler.")) for line in recorded), recorded
    assert load_checkpoint(resumed["last_checkpoint"])["resumes"] == resumed["resumes"]
    ckpt, ref = load_checkpoint(resumed["last_checkpoint"]), load_checkpoint(planned["last_checkpoint"])
    for group, expected in zip(ckpt["optimizer"]["param_groups"], ref["optimizer"]["param_groups"], strict=True):
        assert {k: v for k, v in group.items() if k != "params"} == \
            {k: v for k, v in expected.items() if k != "params"}


@pytest.mark.parametrize("override, diff", [
    ("optim=sgd", r"config.optim._target_: 'torch.optim.Adam' -> 'torch.optim.SGD'"),
    ("seed=7", r"config.seed: 0 -> 7"),
    ("model.hidden_channels=12", r"config.model.hidden_channels: 8 -> 12"),
    ("trainer.batch_size=2", r"config.trainer.batch_size: 4 -> 2"),
])
def test_other_changes_are_refused_with_the_diff(tiny_darcy, tmp_path, override, diff):
    first = run(tiny_darcy("trainer.epochs=1"), output_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match=rf"(?s)was trained with another config.*{diff}.*may change only "
                                          r"trainer.resume, trainer.epochs, .*optim.lr, .*scheduler; start a new run"):
        run(tiny_darcy("trainer.epochs=2", override, f"trainer.resume={first['last_checkpoint']}"),
            output_dir=tmp_path / "b")


def test_resume_auto_adopts_only_a_sibling_trained_exactly_so(tiny_darcy, tmp_path):
    """A sibling run with another rate is another training: auto starts fresh rather than adopt it (an explicit
    trainer.resume=PATH applies the change)."""
    run(tiny_darcy("trainer.epochs=1", "optim.lr=0.01"), output_dir=tmp_path / "a")
    fresh = run(tiny_darcy("trainer.epochs=2", "optim.lr=0.5", "trainer.resume=auto"), output_dir=tmp_path / "b")
    assert fresh["epochs_run"] == 2 and fresh["resumes"] == []
    adopted = run(tiny_darcy("trainer.epochs=2", "optim.lr=0.01", "trainer.resume=auto"), output_dir=tmp_path / "c")
    assert adopted["epochs_run"] == 1


def test_fewer_epochs_than_trained_are_refused(tiny_darcy, tmp_path):
    first = run(tiny_darcy("trainer.epochs=2"), output_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match=r"trainer.epochs=1: the checkpoint .* has trained 2 epochs already; "
                                          r"resume with trainer.epochs >= 2"):
        run(tiny_darcy("trainer.epochs=1", f"trainer.resume={first['last_checkpoint']}"), output_dir=tmp_path / "b")


@pytest.mark.parametrize(("optim", "change", "key"), [
    ("adam", "+optim.amsgrad=true", "config.optim.amsgrad: (absent) -> True"),
    ("lbfgs", "optim.history_size=6", "config.optim.history_size: 10 -> 6"),
])
def test_settings_that_reshape_the_optimizer_state_are_refused(tiny_darcy, tmp_path, optim, change, key):
    """amsgrad adds a moment, L-BFGS's history_size sizes its saved history: applying them to the saved state would
    crash inside the optimizer, so they are refused up front."""
    first = run(tiny_darcy("trainer.epochs=1", f"optim={optim}"), output_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match=rf"was trained with another config.*\n  {re.escape(key)}"):
        run(tiny_darcy("trainer.epochs=2", f"optim={optim}", change, f"trainer.resume={first['last_checkpoint']}"),
            output_dir=tmp_path / "b")


def test_every_changed_setting_is_recorded(tiny_darcy, tmp_path):
    first = run(tiny_darcy("trainer.epochs=1"), output_dir=tmp_path)
    again = run(tiny_darcy("trainer.epochs=2", "trainer.grad_clip=0.5", "trainer.test_every=1",
                           f"trainer.resume={first['last_checkpoint']}"), output_dir=tmp_path)
    assert again["resumes"] == [{"epoch": 1, "changes": [
        "trainer.grad_clip: None -> 0.5", "trainer.test_every: 5 -> 1",
        "trainer.epochs: 1 -> 2 (the schedule re-planned for the new length)"]}]


def test_resuming_into_a_folder_that_holds_another_run_is_refused(tiny_darcy, tmp_path):
    """trainer.resume=PATH continues PATH's run in this folder: a folder holding another run is not overwritten;
    a path to the folder's own checkpoint continues it."""
    a = run(tiny_darcy("trainer.epochs=1"), output_dir=tmp_path / "a")
    run(tiny_darcy("trainer.epochs=1", "optim=sgd"), output_dir=tmp_path / "b")
    before = {p: p.read_bytes() for p in (tmp_path / "b").rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=rf"{tmp_path / 'b'} already holds a run .*, to resume "
                                          rf"{re.escape(a['last_checkpoint'])} there"):
        run(tiny_darcy("trainer.epochs=2", f"trainer.resume={a['last_checkpoint']}"), output_dir=tmp_path / "b")
    assert {p: p.read_bytes() for p in (tmp_path / "b").rglob("*") if p.is_file()} == before
    own = run(tiny_darcy("trainer.epochs=2", f"trainer.resume={a['last_checkpoint']}"), output_dir=tmp_path / "a")
    assert own["epochs"] == 2 and own["epochs_run"] == 1
