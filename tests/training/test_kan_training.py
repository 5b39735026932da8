"""KAN support in the training loop: L-BFGS, grid-update and grid-refinement schedules, float64, resuming."""

import pytest
import torch

from kernelnn.training import load_model, run
from kernelnn.training.checkpoint import load_checkpoint
from kernelnn.training.errors import ConfigError
from tests.conftest import QUIET_TRAINER, TINY_DATA, TINY_MODEL, compose_config

TINY_DARCY = ("data=darcy", *TINY_DATA["darcy"], *TINY_MODEL["fno"], "trainer.epochs=1")


def kan_fit(*overrides):
    return compose_config("experiment=kan_fit", "data.n_train=200", "data.n_val=50", "data.n_test=100",
                          "trainer.epochs=9", "trainer.batch_size=200", "trainer.test_every=9",
                          "plugins.kan_grids.update_every=2", "plugins.kan_grids.update_until=4",
                          "plugins.kan_grids.refine_epochs=[3,6]", "plugins.kan_grids.refine_sizes=[8,12]",
                          "optim.max_iter=5", *QUIET_TRAINER, *overrides)


def test_lbfgs_with_grid_updates_and_coarse_to_fine_grids(tmp_path):
    summary = run(kan_fit(), output_dir=tmp_path)
    history = load_checkpoint(summary["last_checkpoint"])["history"]
    assert history[-1]["train/loss"] < 0.05 * history[0]["train/loss"]
    assert summary["test"]["test/rmse"] ** 2 == pytest.approx(summary["test"]["test/mse"])
    state = load_checkpoint(summary["last_checkpoint"])["model"]
    grids = [v for k, v in state.items() if k.endswith(".grid")]
    assert len(grids) == 2 and all(g.shape[1] == 12 + 2 * 3 + 1 for g in grids)  # refined twice, 5 -> 8 -> 12
    # the checkpoint rebuilds the refined model from the constructor's config
    model = load_model(summary["last_checkpoint"])
    assert all(m.grid_size == 12 for m in model.modules() if hasattr(m, "grid_size"))


def test_grid_updates_follow_the_schedule(tmp_path, monkeypatch):
    from kernelnn.training.plugins import kan_grids

    calls = []
    original = kan_grids.update_grids
    monkeypatch.setattr(kan_grids, "update_grids", lambda model, x: calls.append(1) or original(model, x))
    # 1 step per epoch; stages start at steps 0, 3, 6; updates at stage steps 0 and 2 (every 2, until 4)
    run(kan_fit(), output_dir=tmp_path)
    assert len(calls) == 3 * 2


def test_resume_after_refinement_continues_exactly(tmp_path):
    full = run(kan_fit("trainer.deterministic=true"), output_dir=tmp_path / "full")
    run(kan_fit("trainer.deterministic=true", "trainer.epochs=5"), output_dir=tmp_path / "part")
    resumed = run(kan_fit("trainer.deterministic=true", f"trainer.resume={tmp_path / 'part'}"),
                  output_dir=tmp_path / "resumed")
    a = load_checkpoint(full["last_checkpoint"])["model"]
    b = load_checkpoint(resumed["last_checkpoint"])["model"]
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=1e-5, atol=1e-7)


def test_float64_training(tmp_path):
    summary = run(kan_fit("trainer.precision=float64", "trainer.epochs=2", "plugins.kan_grids.refine_epochs=[]",
                          "plugins.kan_grids.refine_sizes=[]"), output_dir=tmp_path)
    state = load_checkpoint(summary["last_checkpoint"])["model"]
    assert all(v.dtype == torch.float64 for v in state.values() if v.is_floating_point())


def test_kan_neurons_in_mlp_and_fno_channel_mlp(tmp_path):
    cfg = compose_config("experiment=spirals_mlp", "data.n_train=100", "trainer.epochs=1", "model.neuron=kan",
                         "model.hidden=[8]", "plugins.kan_grids.update_every=1", *QUIET_TRAINER)
    assert run(cfg, output_dir=tmp_path / "mlp")["epochs"] == 1
    cfg = compose_config("experiment=spirals_mlp", "data.n_train=100", "trainer.epochs=1", "model.neuron=trukan",
                         "model.hidden=[8]", *QUIET_TRAINER)
    assert run(cfg, output_dir=tmp_path / "trukan")["epochs"] == 1
    cfg = compose_config(*TINY_DARCY, "model.channel_mlp.neuron=kan", "model.channel_mlp.expansion=0.5",
                         "plugins.kan_grids.update_every=2", *QUIET_TRAINER)
    summary = run(cfg, output_dir=tmp_path / "fno")
    assert summary["epochs"] == 1
    state = load_checkpoint(summary["last_checkpoint"])["model"]
    assert sum(k.endswith("spline_weight") for k in state) == 2 + 1  # 2 channel MLPs and the projection


def test_kan_convolutions_in_the_cnn(tmp_path):
    cfg = compose_config("model=cnn", "data=digits", "model.conv=kan", "model.channels=[4]", "trainer.epochs=1",
                         "trainer.batch_size=64", "plugins.kan_grids.update_every=5", *QUIET_TRAINER)
    assert run(cfg, output_dir=tmp_path)["epochs"] == 1


@pytest.mark.parametrize(("overrides", "message"), [
    (("plugins.kan_grids.refine_epochs=[3]", "plugins.kan_grids.refine_sizes=[8,12]"), "must have the same length"),
    (("plugins.kan_grids.refine_epochs=[6,3]", "plugins.kan_grids.refine_sizes=[8,12]"), "must be increasing"),
    (("plugins.kan_grids.update_every=-1",), "plugins.kan_grids.update_every=-1 must be an integer >= 0"),
    (("trainer.grad_accum=2",), "LBFGS re-evaluates its batch"),
    (("trainer.precision=float64", "trainer.amp=bf16"), "lowers the precision"),
])
def test_bad_kan_training_configs(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run(kan_fit(*overrides), output_dir=tmp_path)


def test_grid_schedules_need_kan_layers(tmp_path):
    cfg = compose_config("experiment=spirals_mlp", "plugins.kan_grids.update_every=5", *QUIET_TRAINER)
    with pytest.raises(ConfigError, match="has no KAN layer"):
        run(cfg, output_dir=tmp_path)
