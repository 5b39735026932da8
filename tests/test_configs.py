"""Every config file composes, instantiates, and its model runs a forward pass on matching data."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from kernelnn.data.bundle import first_batch
from kernelnn.testing import assert_state_dict_round_trip
from kernelnn.training import ConfigError
from kernelnn.training.assemble import check_model_on_data, fill_model_config, patched_model_config
from tests.conftest import CONFIG_DIR, TINY_DATA, TINY_MODEL, TINY_SIZES, compose_config

MODELS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
DATAS = sorted(p.stem for p in (CONFIG_DIR / "data").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
# Preferred partners; a config missing here is paired with the first one (in name order) it builds and runs with.
MATCHING_DATA = {"fno": "darcy", "tfno": "darcy", "mgno": "darcy", "sfno": "shallow_water", "stfno": "navier_stokes",
                 "mlp": "spirals", "cnn": "digits", "kan": "symbolic", "vit": "digits",
                 "frame_cnn": "moving_digits", "equivariant": "tetris", "deeponet": "antiderivative",
                 "pod_deeponet": "darcy", "t1": "darcy", "t1_fft": "burgers", "interatomic": "periodic_atoms"}
OPTIMS = sorted(p.stem for p in (CONFIG_DIR / "optim").glob("*.yaml"))
SCHEDULERS = sorted(p.stem for p in (CONFIG_DIR / "scheduler").glob("*.yaml"))


def files_overrides(tmp_path: Path) -> list[str]:
    rng = np.random.default_rng(0)
    path = tmp_path / "user.npz"
    np.savez(path, x=rng.standard_normal((10, 16, 16)).astype(np.float32),
             y=rng.standard_normal((10, 16, 16)).astype(np.float32))
    return [f"data.path={path}"]


def extxyz_overrides(tmp_path: Path) -> list[str]:
    """A small extended-XYZ file: 12 frames of 5- and 6-atom Lennard-Jones clusters (our Monte Carlo samples) with
    their energies and forces, interleaved."""
    from kernelnn.data.lennard_jones import make_lennard_jones

    sets = [make_lennard_jones(n_atoms=n, n_train=6, n_val=1, n_test=1, sweeps=5, cache_dir=str(tmp_path)).train
            for n in (5, 6)]
    lines = []
    for frame in range(12):
        x, y = sets[frame % 2][frame // 2]  # clusters of two sizes, batched without padding
        n = len(x)
        lines += [str(n), f"Properties=species:S:1:pos:R:3:forces:R:3 energy={float(y[0]):.12g}"]
        forces = y[1:].reshape(n, 3)
        lines += [" ".join(["Ar", *(f"{v:.12g}" for v in (*x[k].tolist(), *forces[k].tolist()))]) for k in range(n)]
    path = tmp_path / "frames.xyz"
    path.write_text("\n".join(lines) + "\n")
    return [f"data.path={path}"]


def build_and_forward(cfg) -> None:
    bundle = instantiate(cfg.data)
    model_cfg = fill_model_config(OmegaConf.to_container(cfg.model, resolve=True), bundle)
    model_cfg = patched_model_config(model_cfg, OmegaConf.to_container(cfg.patching), bundle)
    model = instantiate(OmegaConf.create(model_cfg))
    check_model_on_data(model, bundle)  # forward on every split, output shape checked
    x, y = first_batch(bundle.train, 2)
    out = model(*x) if isinstance(x, tuple) else model(x)
    outs = list(out.values()) if isinstance(out, dict) else [out]  # named predictions (energy, forces)
    assert all(torch.isfinite(t).all() for t in outs)
    if bundle.task == "operator":
        assert out.shape == y.shape
    sum(t.square().mean() for t in outs).backward()  # backward reaches the parameters, finitely
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None for g in grads) and all(torch.isfinite(g).all() for g in grads if g is not None)
    inputs = x if isinstance(x, tuple) else (x,)
    assert_state_dict_round_trip(lambda: instantiate(OmegaConf.create(model_cfg)), *inputs, rtol=1e-6, atol=1e-6)


def first_fit(*, model: str | None = None, data: str | None = None) -> str:
    """The first data config (for ``model``) or model config (for ``data``), in name order, on which the tiny model
    builds and runs every split: how a new config is tested without an entry in a table."""
    candidates = [d for d in DATAS if d in TINY_DATA] if data is None else MODELS
    failures = []
    for other in candidates:
        m, d = (model, other) if data is None else (other, data)
        try:
            cfg = compose_config(f"model={m}", f"data={d}", *TINY_DATA[d], *TINY_MODEL[m])
            bundle = instantiate(cfg.data)
            model_cfg = fill_model_config(OmegaConf.to_container(cfg.model, resolve=True), bundle)
            check_model_on_data(instantiate(OmegaConf.create(model_cfg)), bundle)
            return other
        except (ConfigError, ValueError, InstantiationException) as error:  # refusals of a mismatched pair; a
            failures.append(f"{other}: {type(error).__name__}: {str(error)[:200]}")  # crash (a bug) propagates
    pytest.fail(f"no {'data' if data is None else 'model'} config runs with {model or data}:\n" + "\n".join(failures))


def test_a_config_without_a_table_entry_finds_its_partner():
    """The fallback pairs an untuned model with data it runs on: the registry example of the coordinate network
    encodes (longitude, latitude), so the first data whose inputs are two coordinates in range (in name order)."""
    name = "coordinate_network"
    assert name not in MATCHING_DATA and name not in __import__("tests.conftest").conftest._TUNED_MODEL
    assert first_fit(model=name) == "image"


def test_config_groups_are_not_empty():
    assert MODELS and DATAS and EXPERIMENTS and OPTIMS and SCHEDULERS


GROUP_TESTS = {"model": "test_model_configs", "data": "test_data_configs", "experiment": "test_experiment_configs",
               "optim": "test_optim_and_scheduler_configs", "scheduler": "test_optim_and_scheduler_configs",
               "trainer": "test_trainer_plugins_and_patching_configs",
               "plugins": "test_trainer_plugins_and_patching_configs",
               "patching": "test_trainer_plugins_and_patching_configs",
               "hydra": "test_hydra_job_logging_opens_no_file"}


def test_every_config_group_is_tested():
    """A new config group must get a test here; a new file in a group is picked up by that group's test."""
    groups = sorted(d.name for d in CONFIG_DIR.iterdir() if d.is_dir())
    assert groups == sorted(GROUP_TESTS), f"config groups without a test: {sorted(set(groups) - set(GROUP_TESTS))}"
    assert all(name in globals() for name in GROUP_TESTS.values())


def test_hydra_job_logging_opens_no_file():
    """train.yaml selects configs/hydra/job_logging/kernelnn.yaml, which logs to the console only: train.log is
    opened by kernelnn once the run holds its folder (tests/reliability/test_concurrent_runs.py runs it)."""
    from hydra import compose, initialize_config_dir

    from kernelnn.training.launch import register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    handlers = OmegaConf.to_container(cfg.hydra.job_logging.handlers)
    assert handlers and all(h["class"] == "logging.StreamHandler" for h in handlers.values()), handlers


@pytest.mark.parametrize("group,option", [(g, p.stem) for g in ("trainer", "plugins", "patching")
                                          for p in sorted((CONFIG_DIR / g).glob("*.yaml"))])
def test_trainer_plugins_and_patching_configs(group, option, tmp_path):
    """Each option composes and passes the checks run() applies: the typed trainer, the plugin sections, patching."""
    from kernelnn.training.config import TrainerConfig, typed
    from kernelnn.training.plugins import build_plugins

    cfg = compose_config(f"{group}={option}", *TINY_DATA["darcy"], *TINY_MODEL["fno"])
    container = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(typed(container["trainer"], TrainerConfig, "trainer"), TrainerConfig)
    build_plugins(container["plugins"])  # every section typed and valid (disabled ones are dropped)
    bundle = instantiate(cfg.data)
    model_cfg = patched_model_config(fill_model_config(container["model"], bundle), container["patching"], bundle)
    check_model_on_data(instantiate(OmegaConf.create(model_cfg)), bundle)


@pytest.mark.parametrize("model", MODELS)
def test_model_configs(model):
    data = MATCHING_DATA.get(model) or first_fit(model=model)
    cfg = compose_config(f"model={model}", f"data={data}", *TINY_DATA[data], *TINY_MODEL[model])
    build_and_forward(cfg)


@pytest.mark.parametrize("data", DATAS)
def test_data_configs(data, tmp_path):
    extra = {"files": files_overrides, "extxyz": extxyz_overrides}[data](tmp_path) if data in ("files", "extxyz") \
        else TINY_DATA[data]
    model = {"spirals": "mlp", "active_subspace": "mlp", "symbolic": "mlp", "mnist": "cnn", "digits": "cnn",
             "moving_digits": "frame_cnn", "tetris": "equivariant", "lennard_jones": "equivariant", "darcy": "fno",
             "burgers": "fno", "navier_stokes": "fno", "antiderivative": "fno", "files": "fno",
             "periodic_atoms": "interatomic", "extxyz": "interatomic"}.get(data) or first_fit(
        data=data)
    cfg = compose_config(f"data={data}", f"model={model}", *extra, *TINY_MODEL[model])
    build_and_forward(cfg)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_configs(experiment):
    cfg = compose_config(f"experiment={experiment}")
    cfg = compose_config(f"experiment={experiment}", *TINY_SIZES[cfg.data.name])  # the recipe's own model
    build_and_forward(cfg)


@pytest.mark.parametrize("optim", OPTIMS)
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_optim_and_scheduler_configs(optim, scheduler):
    cfg = compose_config(f"optim={optim}", f"scheduler={scheduler}")
    model = torch.nn.Linear(2, 2)
    optimizer = instantiate(cfg.optim)(model.parameters())
    sched = instantiate(cfg.scheduler)(optimizer, total_steps=10, steps_per_epoch=5)
    for _ in range(10):
        optimizer.step(lambda: model(torch.ones(2)).sum())  # a closure, as L-BFGS needs
        sched.step()
    assert all(g["lr"] >= 0 for g in optimizer.param_groups)
