"""plugins.pod_basis: POD-DeepONet's modes are fitted to the training targets as the model is trained on them."""

import torch
from hydra.utils import instantiate

from kernelnn.training import run
from kernelnn.training.checkpoint import load_checkpoint
from tests.conftest import QUIET_TRAINER, TINY_DATA, compose_config


def test_the_basis_is_the_pod_of_the_normalised_training_targets(tmp_path):
    cfg = compose_config("data=darcy", *TINY_DATA["darcy"], *QUIET_TRAINER, "model=pod_deeponet", "model.width=6",
                         "trainer.epochs=1", "trainer.batch_size=4")
    summary = run(cfg, output_dir=tmp_path)
    state = load_checkpoint(summary["last_checkpoint"])["model"]
    bundle = instantiate(cfg.data)
    y = bundle.train.tensors[1].double()
    y = (y - state["out_mean"].double().view(-1, 1, 1)) / state["out_std"].double().view(-1, 1, 1)
    centred = (y - y.mean(0)).flatten(1)
    basis = state["model.basis"][0].double().flatten(1) / 16  # (6, 256), orthonormal rows (scaled by sqrt(256))
    torch.testing.assert_close(basis @ basis.T, torch.eye(6, dtype=torch.float64), atol=1e-5, rtol=0)
    # the modes span the leading principal subspace: projecting on them keeps the top-6 singular values' energy
    s = torch.linalg.svdvals(centred)
    kept = (centred @ basis.T).square().sum()
    torch.testing.assert_close(kept, s[:6].square().sum(), rtol=1e-4, atol=0)
    torch.testing.assert_close(state["model.mean"][0].double(), y.mean(0)[0], atol=1e-5, rtol=0)


def test_transform_once_picks_its_frequencies_from_the_training_targets(tmp_path, caplog):
    import logging

    cfg = compose_config("data=darcy", *TINY_DATA["darcy"], *QUIET_TRAINER, "model=t1", "model.n_modes=4",
                         "model.hidden_channels=4", "model.n_layers=1", "model.selection=energy", "trainer.epochs=1",
                         "trainer.batch_size=4")
    with caplog.at_level(logging.INFO, logger="kernelnn"):
        summary = run(cfg, output_dir=tmp_path)
    assert "output bases fitted to 16 training targets: TransformOnce" in caplog.text
    state = load_checkpoint(summary["last_checkpoint"])["model"]
    chosen = [state["model.frequencies_0"].tolist(), state["model.frequencies_1"].tolist()]
    assert all(len(f) == 4 and f == sorted(f) and len(set(f)) == 4 for f in chosen)
