"""Crafted checkpoints: plain data that passes ``torch.load(weights_only=True)`` must still not choose code to run
through any field of its model description."""

import os

import pytest

from kernelnn.training import load_model
from kernelnn.training.checkpoint import WEIGHTS_FORMAT, save_checkpoint


@pytest.mark.parametrize(("model_config", "message"), [
    ({"_target_": "os.system", "command": "touch PWNED"}, r"_target_='os.system', which is not a model in "
                                                          r"kernelnn.registry.MODELS"),
    ({"_target_": "kernelnn.models.MLP", "in_features": 3, "out_features": 2,
      "neuron_options": {"_target_": "builtins.exec", "source": "1"}}, r"_target_='builtins.exec'"),
    ({"_target_": "kernelnn.models.MLP", "_args_": ["x"], "in_features": 3}, r"uses \['_args_'\]"),
    ({"_target_": "kernelnn.models.MLP", "_partial_": True}, r"uses \['_partial_'\]"),
    ({"_target_": "kernelnn.models.MLP", "widths": 3}, r"does not fit kernelnn.models.MLP"),
])
def test_a_crafted_checkpoint_cannot_choose_code_to_run(tmp_path, model_config, message):
    """A checkpoint of plain data passes torch.load(weights_only=True); its model description still must not
    reach Hydra's instantiate: only registered kernelnn models are built."""
    path = save_checkpoint({"format": WEIGHTS_FORMAT, "model": {}, "model_config": model_config}, tmp_path / "x.pt")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(ValueError, match=message):
            load_model(path)
    finally:
        os.chdir(cwd)
    assert not (tmp_path / "PWNED").exists()


def test_resuming_from_a_crafted_checkpoint_runs_nothing_it_names(tiny_darcy, tmp_path):
    from kernelnn.training import ConfigError, run
    from kernelnn.training.checkpoint import TRAINING_FORMAT

    crafted = {"format": TRAINING_FORMAT, "model": {}, "model_config": {"_target_": "os.system", "command": "touch X"},
               "config": {"model": {"_target_": "os.system"}}, "optimizer": {}, "scheduler": {}, "scaler": {},
               "epoch": 0, "step": 0, "best": None, "best_epoch": None, "bad_epochs": 0, "history": [], "rng": []}
    path = save_checkpoint(crafted, tmp_path / "last.pt")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(ConfigError, match="was trained with another config"):
            run(tiny_darcy("trainer.epochs=1", f"trainer.resume={path}"), output_dir=tmp_path / "run")
    finally:
        os.chdir(cwd)
    assert not (tmp_path / "X").exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 2-epoch run: its last.pt is the base of the tampered ones."""
    from kernelnn.training import run
    from tests.conftest import tiny_darcy_config

    out = tmp_path_factory.mktemp("base")
    run(tiny_darcy_config("trainer.epochs=2"), output_dir=out)
    return out / "checkpoints" / "last.pt"


def set_path(ckpt, path, value):
    *parents, last = path.split(".")
    for key in parents:
        ckpt = ckpt[key]
    if value is DELETE:
        del ckpt[last]
    else:
        ckpt[last] = value


DELETE = object()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("scheduler.last_epoch", 10**12, r"the schedule's step \(last_epoch\) must be an integer in \[0, step=8\], got "
                                     r"1000000000000"),
    ("scheduler.last_epoch", -5, r"the schedule's step \(last_epoch\) must be an integer in \[0, step=8\], got -5"),
    ("scheduler.last_epoch", True, r"the schedule.s step .* got True"),
    ("scheduler.last_epoch", 8.0, r"the schedule.s step .* got 8.0"),
    ("scheduler.last_epoch", "8", r"the schedule.s step .* got .8."),
    ("scheduler", DELETE, r"'scheduler' must be a dict, got NoneType"),
    ("scheduler", "x", r"'scheduler' must be a dict, got str"),
    ("epoch", "2", r"'epoch' must be an integer >= 0, got '2'"),
    ("rng", [], r"'rng' must hold one RNG state \(a dict\) per rank"),
    ("rng", [{"python": 1}], r"its RNG state cannot be restored"),
    ("history", [], r"'history' must hold one row \(a dict\) per epoch: 0 rows for epoch 2"),
    ("optimizer.param_groups", None, r"'optimizer' must be an optimizer state_dict"),
])
def test_a_tampered_training_checkpoint_is_refused_before_use(finished_run, tmp_path, field, value, message):
    """Re-saved with a valid checksum, so only the structure check stands between the file and the loop: a huge
    step count would replay for weeks, a negative one restart the schedule, a float one hand the file's base rates
    to the scheduler."""
    from kernelnn.training import ConfigError, run
    from kernelnn.training.checkpoint import load_checkpoint
    from tests.conftest import tiny_darcy_config

    ckpt = load_checkpoint(finished_run)
    set_path(ckpt, field, value)
    path = save_checkpoint(ckpt, tmp_path / "last.pt")
    with pytest.raises(ConfigError, match=rf"is malformed: {message}"):
        run(tiny_darcy_config("trainer.epochs=4", f"trainer.resume={path}"), output_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()
