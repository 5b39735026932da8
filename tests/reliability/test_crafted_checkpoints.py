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
