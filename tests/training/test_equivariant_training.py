"""The Gaunt equivariant network in the training loop: tetris to 100% on rotated shapes, Lennard-Jones energies
and forces (task energy_forces), checkpoints that rebuild the model."""

import math

import pytest
import torch
from hydra.utils import instantiate

from kernelnn.training import load_model, run
from kernelnn.training.checkpoint import load_checkpoint
from kernelnn.training.tasks import EnergyForcesTask
from tests.conftest import QUIET_TRAINER, TINY_DATA, compose_config


def test_energy_forces_task_formula():
    task = EnergyForcesTask(energy_weight=2.0, force_weight=0.5)
    target = torch.randn(4, 1 + 3 * 5)
    pred = target + torch.randn(4, 16)
    err = pred - target
    expected = 2.0 * ((err[:, 0] / 5) ** 2).mean() + 0.5 * err[:, 1:].square().mean()
    torch.testing.assert_close(task.loss(pred, target), expected)
    metrics = task.metrics(pred, target)
    torch.testing.assert_close(metrics["energy_mae"], err[:, 0].abs())
    torch.testing.assert_close(metrics["energy_mae_per_atom"], err[:, 0].abs() / 5)
    torch.testing.assert_close(metrics["force_mae"], err[:, 1:].abs().mean(1))
    torch.testing.assert_close(metrics["loss"].mean(), expected)
    assert task.derived_metrics["force_rmse"] == ("force_mse", math.sqrt)
    with pytest.raises(ValueError, match=r"must both be \(batch, 1 \+ 3 n_atoms\)"):
        task.loss(torch.randn(4, 15), torch.randn(4, 15))
    with pytest.raises(ValueError, match="trainer.loss='mse' is not valid for energies and forces"):
        EnergyForcesTask("mse")


def test_tetris_reaches_100_percent_on_rotated_shapes(tmp_path):
    """The shipped recipe, as `python train.py experiment=tetris_gaunt` runs it (20 epochs of 16 steps)."""
    cfg = compose_config("experiment=tetris_gaunt", "data.n_test=400", *QUIET_TRAINER)
    summary = run(cfg, output_dir=tmp_path)
    assert summary["test"]["test/accuracy"] == 1.0
    model = load_model(summary["best_checkpoint"])
    x, y = instantiate(cfg.data).tests["test"].tensors
    assert (model(x).argmax(-1) == y).all()


@pytest.mark.parametrize("compile", [False, True])
def test_lennard_jones_trains_and_the_checkpoint_predicts_forces(tmp_path, compile):
    cfg = compose_config("experiment=lennard_jones_gaunt", *TINY_DATA["lennard_jones"], "data.n_train=64",
                         "model.channels=4", "model.layers=1", "trainer.epochs=3", "trainer.batch_size=16",
                         f"trainer.compile={str(compile).lower()}", *QUIET_TRAINER)
    summary = run(cfg, output_dir=tmp_path)
    test = summary["test"]
    assert all(math.isfinite(v) for v in test.values())
    history = [row["train/loss"] for row in load_checkpoint(summary["last_checkpoint"])["history"]]
    assert history[-1] < history[0]
    model = load_model(summary["best_checkpoint"])
    assert model.output == "energy_forces" and model.energy_scale > 0  # filled from the data
    x = torch.randn(2, 5, 3)
    out = model(x)
    xg = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(model(xg)[:, 0].sum(), xg)
    torch.testing.assert_close(out[:, 1:], -grad.flatten(1), rtol=1e-5, atol=1e-6)
