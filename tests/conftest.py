"""Shared fixtures: an isolated data cache, Hydra composition, and tiny overrides per config."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"

# One data cache per test session (subprocesses inherit it), never the user's ~/.cache.
os.environ.setdefault("KERNELNN_CACHE", tempfile.mkdtemp(prefix="kernelnn-test-cache-"))
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)  # workers share the cores

# Small sizes per config. Nothing here must be edited when a config is added: a data config gets its sample counts
# shrunk (whichever of n_train / n_val / n_test it has) and a model config gets the sizes of its registry example
# (``MODELS.register(name, example={...})``). The tables below only tune entries that tests train or time.
# Small sizes per data config: sample counts and time spans, keeping each config's own resolutions.
_TUNED_SIZES = {
    "darcy": ["data.n_train=8", "data.n_val=4", "data.n_test=4"],
    "burgers": ["data.n_train=8", "data.n_val=4", "data.n_test=4", "data.t_final=0.05"],
    "navier_stokes": ["data.n_train=4", "data.n_val=2", "data.n_test=2", "data.t_final=0.1", "data.record_steps=6",
                      "data.input_steps=1", "data.output_steps=5", "data.dt=0.01"],
    "spirals": ["data.n_train=64", "data.n_val=16", "data.n_test=32"],
    "shallow_water": ["data.n_train=4", "data.n_val=1", "data.n_test=2", "data.hours=0.5"],
    "mnist": [],  # the shipped 5,000 digits load in well under a second
    "digits": [],
    "active_subspace": ["data.n_train=64", "data.n_val=16", "data.n_test=32"],
    "symbolic": ["data.n_train=64", "data.n_val=16", "data.n_test=32"],
    "moving_digits": ["data.n_train=16", "data.n_val=8", "data.n_test=8", "data.frames=4"],
    "tetris": ["data.train_copies=2", "data.n_val=16", "data.n_test=16"],
    "lennard_jones": ["data.n_atoms=5", "data.n_train=16", "data.n_val=4", "data.n_test=4", "data.sweeps=5"],
    "periodic_atoms": ["data.n_atoms=27", "data.n_train=8", "data.n_val=2", "data.n_test=2", "data.test_atoms=[64]",
                       "data.n_test_large=1", "data.trajectories=2", "data.cutoff=1.5", "data.equilibrate=20",
                       "data.stride=5"],
    "antiderivative": ["data.n_train=16", "data.n_val=4", "data.n_test=4", "data.solve_resolution=200"],
    "image": ["data.downscale=16"],  # 26 x 40 pixels of china.jpg
    "land_ocean": ["data.n_train=16", "data.n_val=4", "data.n_test=4", "data.n_polar=4"],
    "sphere_checkerboard": ["data.n_train=16", "data.n_val=4", "data.n_test=4", "data.n_polar=4"],
}
# Small resolutions as well, for training runs.
_TUNED_DATA = {
    "darcy": _TUNED_SIZES["darcy"] + ["data.resolution=16", "data.test_resolutions=[16,32]", "data.n_train=16"],
    "burgers": _TUNED_SIZES["burgers"] + ["data.resolution=32", "data.test_resolutions=[32,64]"],
    "navier_stokes": _TUNED_SIZES["navier_stokes"] + ["data.resolution=16", "data.test_resolutions=[16]"],
    "spirals": _TUNED_SIZES["spirals"],
    "mnist": _TUNED_SIZES["mnist"],
    "digits": _TUNED_SIZES["digits"],
    "active_subspace": _TUNED_SIZES["active_subspace"],
    "symbolic": _TUNED_SIZES["symbolic"],
    "antiderivative": _TUNED_SIZES["antiderivative"],
    "moving_digits": _TUNED_SIZES["moving_digits"],
    "tetris": _TUNED_SIZES["tetris"],
    "lennard_jones": _TUNED_SIZES["lennard_jones"],
    "periodic_atoms": _TUNED_SIZES["periodic_atoms"],
    "shallow_water": _TUNED_SIZES["shallow_water"] + ["data.nlat=16", "data.nlon=32"],
}
_TUNED_MODEL = {
    "fno": ["model.n_modes=4", "model.hidden_channels=8", "model.n_layers=2", "model.projection_channels=16"],
    "tfno": ["model.n_modes=4", "model.hidden_channels=8", "model.n_layers=2", "model.projection_channels=16"],
    "mgno": ["model.hidden_channels=4", "model.n_layers=2", "model.levels=3"],
    "sfno": ["model.n_modes=4", "model.hidden_channels=8", "model.n_layers=2", "model.projection_channels=16"],
    "stfno": ["model.n_modes=[4,4,2]", "model.hidden_channels=8", "model.n_layers=2", "model.projection_channels=16",
              "model.time_padding=0.5"],
    "mlp": ["model.hidden=[16]"],
    "cnn": ["model.channels=[4,8]"],
    "kan": [],
    "frame_cnn": ["model.channels=[4,8]"],
    "equivariant": ["model.channels=4", "model.layers=1", "model.L=1"],
    "interatomic": ["model.channels=4", "model.layers=1", "model.L=1"],
    "deeponet": ["model.width=16", "model.branch_depth=2", "model.trunk_depth=2"],
    "pod_deeponet": ["model.width=8", "model.branch_depth=2"],
    # NeuRBF's k-means needs as many points as kernels: fewer kernels than any tiny data set has points
    "neurbf": ["model.n_kernels=8", "model.feature_channels=4", "model.grid_resolutions=[4]",
               "model.hidden_features=8"],
    "rbf_field": ["model.n_kernels=4", "model.grid_resolutions=[4,8]", "model.grid_channels=2"],
    "t1": ["model.n_modes=4", "model.hidden_channels=8", "model.n_layers=2", "model.head_channels=16"],
    "t1_fft": ["model.n_modes=4", "model.hidden_channels=8", "model.n_layers=2", "model.head_channels=16"],
}


def _config_names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def _hydra_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_hydra_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def generic_tiny_sizes(data: str) -> list[str]:
    """Small sample counts for a data config nobody tuned: the keys it has among n_train / n_val / n_test."""
    import yaml

    keys = yaml.safe_load((CONFIG_DIR / "data" / f"{data}.yaml").read_text()) or {}
    return [f"data.{key}={n}" for key, n in (("n_train", 16), ("n_val", 4), ("n_test", 4)) if key in keys]


# Model arguments the data fills (train.py), left to the data here too.
_DATA_FILLED = {"in_channels", "out_channels", "in_features", "out_features", "dim", "coord_dim", "n_sensors",
                "n_outputs", "resolution", "periodic", "inputs"}


def registry_tiny_model(model: str) -> list[str]:
    """The sizes of model ``model``'s registry example as overrides (``[]`` when its example is a function)."""
    from kernelnn.registry import MODELS

    options = MODELS.example_options(model) if model in MODELS else None
    return [f"++model.{key}={_hydra_value(value)}" for key, value in (options or {}).items()
            if key not in _DATA_FILLED]


TINY_SIZES = {data: _TUNED_SIZES.get(data) or generic_tiny_sizes(data)
              for data in _config_names("data") if data not in ("files", "extxyz")}
TINY_DATA = {data: _TUNED_DATA.get(data, TINY_SIZES[data]) for data in TINY_SIZES}
TINY_MODEL = {model: _TUNED_MODEL.get(model, registry_tiny_model(model)) for model in _config_names("model")}
QUIET_TRAINER = ["trainer.progress_bar=false", "trainer.tensorboard=false", "trainer.plots=false"]


def compose_config(*overrides: str):
    """The root config composed with ``overrides``, as ``python train.py`` would see it."""
    from hydra import compose, initialize_config_dir

    from kernelnn.training.launch import register_resolvers

    register_resolvers()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        return compose("train", overrides=list(overrides))


def tiny_darcy_config(*extra: str):
    return compose_config(*TINY_DATA["darcy"], *TINY_MODEL["fno"], *QUIET_TRAINER, "trainer.batch_size=4", *extra)


@pytest.fixture
def tiny_darcy():
    return tiny_darcy_config


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA: on a machine without it they are skipped, with the reason shown."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# Kept for tests written before kernelnn.testing (imported lazily: conftest sets the environment first).
def gradcheck_module(module, *inputs) -> bool:
    """:func:`kernelnn.testing.assert_gradcheck` (which raises on failure), then ``True``."""
    from kernelnn.testing import assert_gradcheck

    assert_gradcheck(module, *inputs)
    return True


def assert_state_dict_round_trip(make_module, *inputs, **tolerances) -> None:
    """:func:`kernelnn.testing.assert_state_dict_round_trip`."""
    from kernelnn.testing import assert_state_dict_round_trip as check

    check(make_module, *inputs, **tolerances)
