"""Data checks that are not a message in tests/reliability/test_catalogue.py: the loss at zero error, and data files
that hold regression data."""

import numpy as np
import torch

from kernelnn.losses import LpLoss
from kernelnn.training import run
from tests.conftest import QUIET_TRAINER, compose_config

FNO = ("model.n_modes=3", "model.hidden_channels=4")


def files_run(tmp_path, x, y, *overrides, model=FNO):
    path = tmp_path / "data.npz"
    np.savez(path, x=x, y=y)
    cfg = compose_config("data=files", f"data.path={path}", *overrides, *model, "trainer.epochs=1",
                         "trainer.batch_size=4", *QUIET_TRAINER)
    return run(cfg, output_dir=tmp_path / "run")


def fields(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8, 8)).astype(np.float32), rng.standard_normal((n, 8, 8)).astype(np.float32)


def test_relative_loss_has_a_zero_gradient_at_zero_error():
    y = torch.randn(2, 1, 8, 8)
    pred = y.clone().requires_grad_()
    LpLoss()(pred, y).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().max() == 0
    assert LpLoss()(torch.full_like(y, float("nan")), y).isnan()  # a NaN prediction is never a zero error


def test_files_can_hold_regression_data(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 4)).astype(np.float32)
    y = np.stack([x[:, 0] * x[:, 1], np.sin(x[:, 2])], 1).astype(np.float32)
    summary = files_run(tmp_path, x, y, "data.task=regression", model=("model=mlp", "model.hidden=[16]"))
    assert summary["monitor"] == "val/mse" and np.isfinite(summary["test"]["test/mse"])
