"""In-process training runs of the one loop: learning, tasks, accumulation, AMP, compile, reloading."""

import math

import pytest
import torch
from hydra.utils import instantiate

from kernelnn.models import MGPatching
from kernelnn.training import load_model, run
from kernelnn.training.checkpoint import load_checkpoint
from kernelnn.training.errors import ConfigError
from tests.conftest import QUIET_TRAINER, TINY_DATA, TINY_MODEL, compose_config


def test_short_run_lowers_the_loss(tiny_darcy, tmp_path):
    summary = run(tiny_darcy("data.n_train=64", "trainer.epochs=8", "optim.lr=3e-3"), output_dir=tmp_path)
    history = load_checkpoint(summary["last_checkpoint"])["history"]
    assert len(history) == 8
    assert history[-1]["train/loss"] < 0.7 * history[0]["train/loss"]
    assert history[-1]["val/l2"] < history[0]["val/l2"]
    assert set(summary["test"]) == {"test_16/l2", "test_16/h1", "test_32/l2", "test_32/h1"}
    # The saved model, rebuilt from the checkpoint alone, reproduces the reported test error.
    model = load_model(summary["best_checkpoint"])
    bundle = instantiate(tiny_darcy("data.n_train=64").data)
    x, y = bundle.tests["test_32"].tensors
    with torch.no_grad():
        err = ((model(x) - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)).mean()
    assert abs(err.item() - summary["test"]["test_32/l2"]) < 1e-5


def test_classification_learns_spirals(tmp_path):
    cfg = compose_config("experiment=spirals_mlp", "data.n_train=600", "trainer.epochs=15", "trainer.batch_size=32",
                         *QUIET_TRAINER)
    summary = run(cfg, output_dir=tmp_path)
    assert summary["monitor"] == "val/accuracy"
    assert summary["test"]["test/accuracy"] > 0.6  # chance is 1/3


def final_weights(summary):
    return load_checkpoint(summary["last_checkpoint"])["model"]


def test_gradient_accumulation_equals_the_larger_batch(tiny_darcy, tmp_path):
    one = run(tiny_darcy("trainer.epochs=2", "trainer.batch_size=8"), output_dir=tmp_path / "a")
    two = run(tiny_darcy("trainer.epochs=2", "trainer.batch_size=4", "trainer.grad_accum=2"),
              output_dir=tmp_path / "b")
    for key, value in final_weights(one).items():
        torch.testing.assert_close(final_weights(two)[key], value, rtol=1e-4, atol=1e-6)


def test_bf16_autocast_and_clipping(tiny_darcy, tmp_path):
    summary = run(tiny_darcy("trainer.epochs=2", "trainer.amp=bf16", "trainer.grad_clip=1.0"), output_dir=tmp_path)
    assert all(torch.isfinite(t).all() for t in final_weights(summary).values())
    assert summary["test"]["test_16/l2"] < 1.0


def test_early_stopping_on_the_monitored_metric(tiny_darcy, tmp_path):
    # With a zero learning rate the validation error never improves: stop after `patience` flat epochs.
    summary = run(tiny_darcy("trainer.epochs=6", "optim.lr=0", "trainer.early_stopping_patience=2"),
                  output_dir=tmp_path)
    assert summary["epochs"] == 3 and summary["best_epoch"] == 1


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_on_cpu(tiny_darcy, tmp_path, amp):
    summary = run(tiny_darcy("trainer.epochs=1", f"trainer.amp={amp}"), output_dir=tmp_path)
    assert all(torch.isfinite(t).all() for t in final_weights(summary).values())
    assert "scale" in load_checkpoint(summary["last_checkpoint"])["scaler"] or amp == "bf16"


@pytest.mark.slow
def test_compiled_training_matches_eager(tiny_darcy, tmp_path):
    eager = run(tiny_darcy("trainer.epochs=1"), output_dir=tmp_path / "eager")
    compiled = run(tiny_darcy("trainer.epochs=1", "trainer.compile=true"), output_dir=tmp_path / "compiled")
    for key, value in final_weights(eager).items():
        torch.testing.assert_close(final_weights(compiled)[key], value, rtol=1e-3, atol=1e-5)


def test_other_data_and_schedulers_train(tmp_path):
    cfg = compose_config("data=burgers", *TINY_DATA["burgers"], "model.n_modes=6", "model.hidden_channels=8",
                         "scheduler=onecycle", "trainer.loss=h1", "trainer.epochs=2", "trainer.batch_size=4",
                         *QUIET_TRAINER)
    summary = run(cfg, output_dir=tmp_path)
    assert summary["monitor"] == "val/h1"
    assert {"test_32/l2", "test_64/l2"} <= set(summary["test"])


def test_unlocking_modes_keeps_the_function_and_freezes_the_rest():
    from kernelnn.models import FNO
    from kernelnn.training.plugins.spectral_refiner import unlock_last_spectral_conv

    torch.manual_seed(0)
    model = FNO(1, 1, n_modes=(3, 3), hidden_channels=6, n_layers=3, domain_padding=0.25).double()
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    before = model(x)
    name, modes = unlock_last_spectral_conv(model, x[:1])
    assert name == "spectral.2" and modes == (10, 10)  # every mode of the padded 20x20 grid
    torch.testing.assert_close(model(x), before, rtol=1e-12, atol=1e-14)  # new modes start at zero
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("spectral.2.") for n in trainable)


TINY_REFINER = ("experiment=navier_stokes_refiner", *TINY_DATA["navier_stokes"], "data.solve_resolution=16",
                "model.n_modes=[3,3,2]", "model.hidden_channels=4", "model.n_layers=1", "trainer.epochs=1",
                "plugins.spectral_refiner.iterations=5", *QUIET_TRAINER)


def test_the_residual_refiner_refines_each_test_trajectory_and_scores_it_against_the_solver(tmp_path):
    summary = run(compose_config(*TINY_REFINER), output_dir=tmp_path)
    refined = summary["plugins"]["spectral_refiner"]
    row = refined["test_16"]
    assert refined["parameterization"] == "output" and row["samples"] == 2
    assert row["residual_after"] < row["residual_before"]
    assert row["residual_of_targets"] < row["residual_before"]
    assert row["seconds"] > 0 and row["solver_seconds"] > 0
    assert all(math.isfinite(v) for v in row.values())


def test_the_residual_refiner_says_when_the_data_were_solved_on_another_grid(tmp_path, caplog):
    with caplog.at_level("INFO", logger="kernelnn"):
        summary = run(compose_config(*TINY_REFINER, "data.solve_resolution=32"), output_dir=tmp_path)
    assert "the data were solved at 32 and are seen at 16" in caplog.text
    assert summary["plugins"]["spectral_refiner"]["test_16"]["residual_of_targets"] > 0


@pytest.mark.parametrize(("overrides", "message"), [
    (("model=fno", "model.n_modes=3"), "loss=residual refines a BochnerFNO"),
    (("normalize.output=true",), "without input/output normalisation"),
    (("plugins.spectral_refiner.parameterization=raw",), r"must be one of \('output', 'weights'\)"),
    (("plugins.spectral_refiner.epochs=2",), "epochs=2 is for loss=sobolev"),
])
def test_the_residual_refiner_refuses_what_it_cannot_refine(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run(compose_config(*TINY_REFINER, *overrides), output_dir=tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_refine_step_trains_only_the_last_spectral_conv(tmp_path):
    cfg = compose_config("data=burgers", *TINY_DATA["burgers"], "model.n_modes=4", "model.hidden_channels=8",
                         "trainer.epochs=2", "trainer.batch_size=4", "plugins.spectral_refiner.loss=sobolev",
                         "plugins.spectral_refiner.epochs=2",
                         *QUIET_TRAINER)
    summary = run(cfg, output_dir=tmp_path)
    refined = summary["plugins"]["spectral_refiner"]
    assert refined["epochs"] == 2 and refined["n_modes"] == [16]  # a 32-point grid keeps |k| < 16
    before, after = load_checkpoint(summary["best_checkpoint"]), load_checkpoint(refined["best_checkpoint"])
    assert after["monitor"] == "val/negative_sobolev"
    same_shape = [k for k in after["model"] if before["model"][k].shape == after["model"][k].shape]
    changed = [k for k in same_shape if not torch.equal(before["model"][k], after["model"][k])]
    resized = [k for k in after["model"] if k not in same_shape]
    assert resized and all(".spectral.3." in k for k in resized)
    assert all(".spectral.3." in k for k in changed)  # only the last of the 4 layers moved
    model = load_model(refined["best_checkpoint"])  # refined checkpoints reload with their extra modes
    bundle = instantiate(cfg.data)
    x, y = bundle.tests["test_32"].tensors
    with torch.no_grad():
        err = ((model(x) - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)).mean()
    assert abs(err.item() - refined["test"]["test_32/l2"]) < 1e-5


def test_mg_tfno_patching_and_global_factorization_from_config(tmp_path):
    """``patching=mg`` wraps any 2-D model in MGPatching; the checkpoint rebuilds the wrapped model."""
    cfg = compose_config(*TINY_DATA["darcy"], "model=tfno", *TINY_MODEL["tfno"], "model.global_factorization=true",
                         "patching=mg", "patching.padding=2", *QUIET_TRAINER, "trainer.batch_size=4",
                         "trainer.epochs=2")
    summary = run(cfg, output_dir=tmp_path)
    assert summary["spectral_compression"] > 1
    model = load_model(summary["best_checkpoint"])
    assert isinstance(model.model, MGPatching) and model.model.levels == 1
    assert model.model.model.lifting.in_channels == 2 * 1 + 2  # field + one context level, plus the 2-D grid
    x, y = instantiate(cfg.data).tests["test_32"].tensors
    with torch.no_grad():
        err = ((model(x) - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)).mean()
    assert abs(err.item() - summary["test"]["test_32/l2"]) < 1e-5


def test_patching_needs_2d_fields(tmp_path):
    cfg = compose_config("experiment=spirals_mlp", "patching=mg", *QUIET_TRAINER)
    with pytest.raises(ConfigError, match="patching \\(MGPatching\\) splits 2-D fields; data spirals"):
        run(cfg, output_dir=tmp_path)


def test_relinear_groups_and_shrinkage_from_config(tmp_path):
    """``plugins.relinear.quadratic_lr`` puts the quadratic terms in their own group: at lr 0 they keep ReLinear's start
    while the linear paths train; a layer's ``regularization()`` (ReLinear's shrinkage) is added to the loss."""
    common = ["experiment=spirals_mlp", "model.neuron=quadratic", "data.n_train=64", "trainer.epochs=2",
              "scheduler=constant", *QUIET_TRAINER]
    summary = run(compose_config(*common, "plugins.relinear.quadratic_lr=0"), output_dir=tmp_path / "frozen")
    ckpt = load_checkpoint(summary["last_checkpoint"])
    assert [g["name"] for g in ckpt["optimizer"]["param_groups"]] == ["linear", "quadratic"]
    assert [g["lr"] for g in ckpt["optimizer"]["param_groups"]] == [3e-3, 0.0]  # the recipe's optim.lr
    weights = ckpt["model"]
    first = "model.net.0." if "model.net.0.g.weight" in weights else "net.0."
    assert torch.equal(weights[first + "g.weight"], torch.zeros_like(weights[first + "g.weight"]))
    assert torch.equal(weights[first + "g.bias"], torch.ones_like(weights[first + "g.bias"]))
    assert torch.equal(weights[first + "b.weight"], torch.zeros_like(weights[first + "b.weight"]))
    start = run(compose_config(*common, "trainer.epochs=1", "optim.lr=0"), output_dir=tmp_path / "start")
    r_start = load_checkpoint(start["last_checkpoint"])["model"][first + "r.weight"]
    assert not torch.equal(weights[first + "r.weight"], r_start)  # the linear path did train

    # Shrinkage: a huge gamma_b makes the quadratic weights of the trained model far smaller.
    free = run(compose_config(*common), output_dir=tmp_path / "free")
    shrunk = run(compose_config(*common, "+model.neuron_options.shrinkage=[0,1e3]"), output_dir=tmp_path / "shrunk")
    norm = {name: load_checkpoint(s["last_checkpoint"])["model"][first + "b.weight"].norm()
            for name, s in (("free", free), ("shrunk", shrunk))}
    assert norm["shrunk"] < 0.5 * norm["free"]


def test_quadratic_lr_needs_quadratic_neurons(tmp_path):
    with pytest.raises(ConfigError, match="plugins.relinear.quadratic_lr=1e-05 sets ReLinear's learning rate .* none"):
        run(compose_config("experiment=spirals_mlp", "plugins.relinear.quadratic_lr=1e-5", *QUIET_TRAINER),
            output_dir=tmp_path)


def test_rbf_network_from_config_places_centres_on_data(tmp_path):
    cfg = compose_config("experiment=spirals_mlp", "model.neuron=rbf", "model.hidden=[32]", "data.n_train=600",
                         "trainer.epochs=15", "trainer.batch_size=32", "optim.lr=1e-2", *QUIET_TRAINER)
    summary = run(cfg, output_dir=tmp_path)
    model = load_model(summary["best_checkpoint"])
    layer = next(m for m in model.modules() if type(m).__name__ == "RBFLayer")
    assert layer.n_centers == 32
    fresh = instantiate(cfg.model, in_features=2, out_features=3)
    start = next(m for m in fresh.modules() if type(m).__name__ == "RBFLayer").centers
    x = instantiate(cfg.data).train.tensors[0]
    if hasattr(model, "in_mean"):
        x = (x - model.in_mean) / model.in_std
    # k-means centres sit inside the data's range; the untrained N(0, 1) placeholders do not fit it as well
    nearest = torch.cdist(layer.centers.detach(), x).min(dim=1).values
    assert nearest.max() < 0.5 * torch.cdist(start.detach(), x).min(dim=1).values.max()
    assert summary["test"]["test/accuracy"] > 0.6  # chance is 1/3
