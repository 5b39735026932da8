"""Data is checked at load: every defect below stops the run before training, with the split and sample named."""

import numpy as np
import pytest
import torch

from kernelnn.losses import LpLoss
from kernelnn.training import ConfigError, run
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


@pytest.mark.parametrize(("defect", "message"), [
    ("nan_input", r"data files: (train|val|test) inputs hold 1 non-finite value\(s\) \(NaN or inf\), the first "
                  r"in sample"),
    ("inf_target", r"targets hold 2 non-finite value\(s\)"),
    ("zero_target", r"1 (train|val|test) target\(s\) are all zero \(the first is sample \d+\); a relative loss "
                    r"divides"),
    ("constant", r"every training target is the same; there is nothing to learn"),
    ("complex", r"'x' holds complex values; give real and imaginary parts as two channels"),
])
def test_bad_field_data_is_refused_before_training(tmp_path, defect, message):
    x, y = fields()
    if defect == "nan_input":
        x[7, 3, 3] = np.nan
    elif defect == "inf_target":
        y[5, 0, :2] = np.inf
    elif defect == "zero_target":
        y[11] = 0
    elif defect == "constant":
        y[:] = 1.5
    elif defect == "complex":
        x = x + 1j * x
    with pytest.raises(ConfigError, match=message):
        files_run(tmp_path, x, y)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_outlier_class_label_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 3)).astype(np.float32), rng.integers(0, 3, 40)
    y[4] = 1_000_000
    with pytest.raises(ConfigError, match=r"labels go up to 1000000 but only 4 distinct classes occur|labels must be"):
        files_run(tmp_path, x, y, "data.task=classification", "data.dim=0", model=("model=mlp",))


def test_empty_split_is_named(tmp_path):
    x, y = fields(n=3)
    with pytest.raises(ConfigError, match=r"the (val|test) split is empty"):
        files_run(tmp_path, x, y, "data.val_fraction=0.1", "data.test_fraction=0.1")


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
