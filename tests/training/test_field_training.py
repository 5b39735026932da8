"""Field fitting through the one training loop: images, signed distances and the sphere, with the field_init
plugin placing NeuRBF's kernels, field_report's whole-field metrics and pictures, and trainer.time_limit."""

import logging
import math

import numpy as np
import pytest
import torch

from kernelnn.training import run
from kernelnn.training.checkpoint import load_checkpoint
from kernelnn.training.errors import ConfigError
from tests.conftest import compose_config

QUIET = ["trainer.progress_bar=false", "trainer.tensorboard=false"]


@pytest.fixture
def image_file(tmp_path):
    from PIL import Image

    r = np.linspace(-1, 1, 20)
    rows, cols = np.meshgrid(r, r, indexing="ij")
    rgb = np.stack([0.5 + 0.4 * np.sin(3 * rows), (rows**2 + cols**2 < 0.4).astype(float), 0.5 + 0.3 * cols], -1)
    path = tmp_path / "picture.png"
    Image.fromarray((rgb * 255).astype(np.uint8)).save(path)
    return str(path)


def test_neurbf_fits_an_image_and_the_report_measures_it(image_file, tmp_path):
    summary = run(compose_config("data=image", f"data.image={image_file}", "model=neurbf", "model.n_kernels=64",
                                 "model.grid_resolutions=[8]", "trainer.epochs=60", "trainer.batch_size=400",
                                 "trainer.eval_batch_size=1000", "optim.lr=5e-3", "optim.weight_decay=0",
                                 "scheduler=constant", *QUIET), output_dir=tmp_path / "run")
    report = summary["plugins"]["field_report"]
    # The report's PSNR (prediction clipped to [0, 1]) is at least the task's (unclipped) one, and both are high.
    assert report["psnr"] >= summary["test"]["test/psnr"] - 1e-6 and summary["test"]["test/psnr"] > 25
    assert math.isclose(summary["test"]["test/psnr"], 10 * math.log10(1 / summary["test"]["test/mse"]))
    assert 0.5 < report["ssim"] <= 1 and (tmp_path / "run" / "plots" / "image_fit.png").exists()
    # field_init placed the kernels where the image varies: the gradient magnitude at the kernels' pixels is well
    # above its mean over the image (random positions: about equal)
    from kernelnn.data import make_image
    from kernelnn.layers.adaptive_rbf import image_gradient_magnitude

    centers = load_checkpoint(summary["best_checkpoint"])["model"]["centers"]
    image = make_image(image_file).tests["test"].tensors[1].T.reshape(3, 20, 20)
    magnitude = image_gradient_magnitude(image)
    pixels = ((centers + 1) / 2 * 19).round().long().clamp(0, 19)
    assert magnitude[pixels[:, 0], pixels[:, 1]].mean() > 1.4 * magnitude.mean()


def test_an_sdf_is_fitted_and_reported_with_iou_and_chamfer(tmp_path):
    summary = run(compose_config("data=sdf", "data.shape=sphere", "data.n_train=4000", "data.n_test=500",
                                 "data.cache=false", "model=siren", "model.hidden_features=32", "model.n_layers=2",
                                 "model.first_omega_0=3", "trainer.epochs=30", "trainer.batch_size=500",
                                 "optim.lr=3e-3", "plugins.field_report.grid=24", *QUIET), output_dir=tmp_path)
    report = summary["plugins"]["field_report"]
    assert report["grid"] == 24 and 0.8 < report["iou"] <= 1 and report["chamfer"] < 0.05
    assert (tmp_path / "plots" / "sdf_slices.png").exists()


def test_neurbf_kernels_gather_at_the_surface_of_an_sdf(tmp_path):
    """field_init weights SDF points by 1 / |sdf|: the placed kernels sit near the zero set."""
    from kernelnn.data.sdf import shape_sdf

    summary = run(compose_config("data=sdf", "data.shape=torus", "data.n_train=3000", "data.n_test=200",
                                 "data.cache=false", "model=neurbf", "model.n_kernels=64", "model.frequencies=[1,8]",
                                 "model.grid_resolutions=[4]", "trainer.epochs=1", "trainer.batch_size=1000",
                                 "plugins.field_report.grid=16", "trainer.plots=false", *QUIET), output_dir=tmp_path)
    centers = load_checkpoint(summary["last_checkpoint"])["model"]["centers"]
    assert shape_sdf("torus", centers.double()).abs().mean() < 0.03  # uniform points: about 0.3


def test_the_sphere_is_reported_by_latitude_band(tmp_path):
    summary = run(compose_config("data=sphere_checkerboard", "data.n_train=400", "data.n_val=50", "data.n_test=300",
                                 "data.n_polar=100", "data.n_support=20", "data.n_classes=4",
                                 "model=coordinate_network", "model.encoding=spherical_harmonics",
                                 "+model.encoding_options.L=4", "trainer.epochs=3",
                                 "trainer.batch_size=100", "plugins.field_report.map_step=5", *QUIET),
                  output_dir=tmp_path)
    report = summary["plugins"]["field_report"]
    assert set(report["test_polar/accuracy_by_latitude"]) <= {"[-90, -70)", "[-70, -50)", "[50, 70)", "[70, 90]"}
    assert len(report["test/accuracy_by_latitude"]) == 9 and (tmp_path / "plots" / "world_map.png").exists()


def test_the_time_limit_stops_training_after_the_epoch_that_passes_it(image_file, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="kernelnn.training"):
        summary = run(compose_config("data=image", f"data.image={image_file}", "model=siren",
                                     "model.hidden_features=16", "trainer.epochs=100000", "trainer.batch_size=40",
                                     "trainer.time_limit=0.5", "trainer.plots=false", *QUIET), output_dir=tmp_path)
    history = load_checkpoint(summary["last_checkpoint"])["history"]
    trained = sum(row["time/train_s"] for row in history)
    assert summary["epochs"] < 100000 and trained >= 0.5
    assert trained - history[-1]["time/train_s"] < 0.5  # the last epoch is the one that passed the limit
    assert "time limit: " in caplog.text


def test_a_resumed_run_out_of_time_trains_no_further_epoch(image_file, tmp_path, caplog):
    """The limit counts the checkpoint's recorded training time: resuming a run that used it up (say with more
    epochs) starts no epoch."""
    common = ["data=image", f"data.image={image_file}", "model=siren", "model.hidden_features=16",
              "trainer.batch_size=40", "trainer.time_limit=0.3", "trainer.plots=false", *QUIET]
    first = run(compose_config(*common, "trainer.epochs=100000"), output_dir=tmp_path)
    with caplog.at_level(logging.INFO, logger="kernelnn.training"):
        again = run(compose_config(*common, "trainer.epochs=200000", "trainer.resume=auto"), output_dir=tmp_path)
    assert again["epochs"] == first["epochs"] and again["epochs_run"] == 0
    assert "time limit: " in caplog.text


def test_decoder_lr_puts_the_decoder_in_its_own_group(image_file, tmp_path):
    """``plugins.decoder_lr.lr``: NeuRBF's decoder trains at its own rate; at 0 it keeps its initial weights while
    the kernels' features train at the optimizer's rate."""
    common = ["data=image", f"data.image={image_file}", "model=neurbf", "model.n_kernels=32",
              "model.grid_resolutions=[8]", "trainer.epochs=2", "trainer.batch_size=200", "trainer.plots=false",
              "optim.lr=5e-3", "scheduler=constant", *QUIET]
    start = run(compose_config(*common, "optim.lr=0"), output_dir=tmp_path / "start")  # the initial weights
    summary = run(compose_config(*common, "plugins.decoder_lr.lr=0"), output_dir=tmp_path / "frozen")
    before = load_checkpoint(start["last_checkpoint"])["model"]
    after = load_checkpoint(summary["last_checkpoint"])
    assert [(g["name"], g["lr"]) for g in after["optimizer"]["param_groups"]] == [("features", 5e-3), ("decoder", 0)]
    for name, value in after["model"].items():
        frozen = name.startswith(("hidden.", "decoder."))
        assert torch.equal(value, before[name]) == (frozen or name in ("centers", "shape_factor")), name


def test_decoder_lr_needs_a_model_with_a_decoder(tmp_path):
    with pytest.raises(ConfigError, match=r"plugins\.decoder_lr\.lr=0\.01.*model=neurbf"):
        run(compose_config("data=image", "data.downscale=16", "model=siren", "plugins.decoder_lr.lr=1e-2",
                           "trainer.epochs=1", *QUIET), output_dir=tmp_path)
