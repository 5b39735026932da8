"""A catalogue of bad configs and bad data files, each with the exact message a user gets: the key or file, what
was given, what is allowed. Every case fails before training (no checkpoint is written).

To add a case, add a row: the messages are compared whole, so a changed wording shows up here."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from kernelnn.training import ConfigError, run
from tests.conftest import QUIET_TRAINER, compose_config

CONFIGS = {  # overrides on the tiny Darcy / FNO run -> the message
    "trainer.epochs=0": "trainer.epochs=0 must be a positive integer",
    "trainer.batch_size=-4": "trainer.batch_size=-4 must be a positive integer",
    "trainer.grad_accum=0": "trainer.grad_accum=0 must be a positive integer",
    "trainer.test_every=0": "trainer.test_every=0 must be a positive integer",
    "trainer.eval_batch_size=0": "trainer.eval_batch_size=0 must be a positive integer",
    "trainer.log_every=0": "trainer.log_every=0 must be a positive integer",
    "trainer.early_stopping_patience=-1": "trainer.early_stopping_patience=-1 must be a positive integer",
    "trainer.num_workers=-1": "trainer.num_workers=-1 must be >= 0",
    "trainer.grad_clip=-1": "trainer.grad_clip=-1.0 must be a positive number or null",
    "trainer.grad_clip=nan": "trainer.grad_clip=nan must be a positive number or null",
    "+trainer.world=2": "unknown trainer key 'world'; valid: ['amp', 'batch_size', 'compile', 'deterministic', "
                        "'device', 'early_stopping_patience', 'epochs', 'eval_batch_size', 'grad_accum', 'grad_clip', "
                        "'log_every', 'loss', 'monitor', 'monitor_mode', 'num_workers', 'plot_samples', 'plots', "
                        "'precision', 'progress_bar', 'resume', 'tensorboard', 'test_every', 'time_limit']",
    "trainer.loss=l3": "trainer.loss='l3' is not valid for operator learning; valid: ('l2', 'h1', 'negative_sobolev')",
    "trainer.monitor=holdout/l2": "trainer.monitor='holdout/l2' names no evaluation set; sets: ['val', 'test_16', "
                                  "'test_32']",
    "trainer.monitor=val/accuracy": "trainer.monitor='val/accuracy': the val set has no metric 'accuracy'; metrics: "
                                    "['h1', 'l2'] (or monitor train/loss)",
    "trainer.monitor=test_16/l2": "trainer.monitor='test_16/l2' is a test set, evaluated every trainer.test_every=5 "
                                  "epochs; monitor val/l2, or set trainer.test_every=1",
    "trainer.device=meta": "trainer.device='meta': kernelnn trains on auto, cpu or cuda[:index]",
    "trainer.device=gpu7": "trainer.device='gpu7' is not a device name (auto, cpu, cuda, cuda:0, ...)",
    "trainer.resume=/no/such/ckpt.pt": "trainer.resume='/no/such/ckpt.pt': no checkpoint at '/no/such/ckpt.pt'",
    "seed=abc": "seed='abc' must be an integer",
    "imports=[no_such_module]": "imports: module 'no_such_module' could not be imported (No module named "
                                "'no_such_module'); is it on PYTHONPATH?",
    "normalize.input=maybe": "normalize.input='maybe' must be true or false",
    "+normalize.both=true": "normalize={'input': True, 'output': True, 'both': True} must be a mapping with keys "
                            "input and output (true or false)",
    # optimizer and schedule: checked, and built once, before any data is made
    "optim.lr=nan": "optim.lr=nan must be a finite number >= 0",
    "optim.lr=-0.1": "optim.lr=-0.1 must be a finite number >= 0",
    "optim.lr=abc": "optim.lr='abc' must be a finite number >= 0",
    "optim.weight_decay=-1": "optim.weight_decay=-1 must be a finite number >= 0",
    "+optim.foo=1": "optim: torch.optim.Adam refused the settings {'lr': 0.001, 'weight_decay': 0.0001, 'foo': 1}: "
                    "Adam.__init__() got an unexpected keyword argument 'foo'",
    "optim=sgd optim.momentum=-1": "optim: torch.optim.SGD refused the settings {'lr': 0.01, 'momentum': -1, "
                                   "'weight_decay': 0.0001, 'nesterov': True}: Invalid momentum value: -1",
    "optim=lbfgs optim.history_size=0": "optim: kernelnn.training.lbfgs.LBFGS refused the settings {'lr': 1.0, "
                                        "'max_iter': 20, 'history_size': 0, 'line_search_fn': 'strong_wolfe', "
                                        "'tolerance_grad': 1e-32, 'tolerance_change': 1e-32, 'objective_scale': "
                                        "100000000.0}: LBFGS: history_size=0 must be a positive integer",
    "optim._target_=builtins.list ~optim.lr ~optim.weight_decay": "optim: builtins.list built a list, not a "
                                                                  "torch.optim.Optimizer",
    "scheduler._target_=torch.optim.lr_scheduler.ReduceLROnPlateau ~scheduler.warmup_steps ~scheduler.min_lr_ratio":
        "scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau refused the settings {}: ReduceLROnPlateau.__init__() "
        "got an unexpected keyword argument 'total_steps'",
    "scheduler.warmup_steps=-1": "scheduler.warmup_steps=-1 must be an integer >= 0",
    "scheduler.warmup_steps=2.5": "scheduler.warmup_steps=2.5 must be an integer >= 0",
    "scheduler.min_lr_ratio=2": "scheduler.min_lr_ratio=2 must be a number in [0, 1]",
    "+scheduler.foo=1": "scheduler: kernelnn.training.schedulers.cosine refused the settings {'warmup_steps': 0, "
                        "'min_lr_ratio': 0.0, 'foo': 1}: cosine() got an unexpected keyword argument 'foo'",
    "scheduler=step scheduler.gamma=0": "scheduler.gamma=0 must be a finite number > 0",
    "scheduler=step scheduler.step_epochs=0": "scheduler.step_epochs=0 must be a positive integer",
    "scheduler=onecycle scheduler.pct_start=1.5": "scheduler.pct_start=1.5 must be a number in (0, 1)",
    "scheduler=onecycle scheduler.max_lr=-1": "scheduler.max_lr=-1 must be a finite number > 0, or null (optim.lr)",
    # plugins
    "plugins.relinear=5": "plugins.relinear=5 must be a mapping of the plugin's options (or null: off)",
    "plugins.kan_grids.refine_epochs=[1]": "plugins.kan_grids.refine_epochs=[1] and plugins.kan_grids.refine_sizes=[] "
                                           "must have the same length (one grid size per epoch)",
    # data
    "data.n_train=abc": "data.n_train='abc' must be an integer (kernelnn.data.make_darcy takes n_train)",
    "data.n_train=0": "data: darcy: data.n_train=0 must be positive",
    "data.n_val=-1": "data: darcy: data.n_val=-1 must be >= 0",
    "data.resolution=0": "data: darcy: data.resolution=0 must be at least 4 grid points",
    "data.test_resolutions=[16,24]": "data: darcy: every resolution must divide the solver resolution "
                                     "data.solve_resolution=24 (data is subsampled from it); [16] do not",
    # model, and model against data
    "model.hidden_channels=2.5": "model (kernelnn.models.FNO): FNO: hidden_channels=2.5 must be a positive int",
    "model.hidden_channels=0": "model (kernelnn.models.FNO): FNO: hidden_channels=0 must be a positive int",
    "model.n_layers=0": "model (kernelnn.models.FNO): FNO: n_layers=0 must be a positive int",
    "model.n_modes=[4,4,4]": "model (kernelnn.models.FNO): FNO: n_modes=[4, 4, 4] has 3 entries but dim=2",
    "model.activation=swish": "model (kernelnn.models.FNO): FNO: activation='swish' is not a known activation; "
                              "valid: gelu, identity, relu, sigmoid, silu, softplus, tanh",
    "model.n_modes=9": "model.n_modes=[9, 9] is above the Nyquist limit of the train data of darcy (16x16, set by "
                       "data.resolution / data.test_resolutions): at most [8, 8] (kernelnn keeps |k| < n_modes)",
    "model.modes_convention=neuralop model.n_modes=18": (
        "model.n_modes=[18, 18] is above the Nyquist limit of the train data of darcy (16x16, set by "
        "data.resolution / data.test_resolutions): at most [16, 17] (neuraloperator's convention: n_modes <= N, "
        "n_modes // 2 <= N // 2 on the last dim)"),
    "model.block=neuralop model.channel_mlp.skip=linear": (
        "model (kernelnn.models.FNO): FNO: channel_mlp.skip='linear' has no channel MLP to skip "
        "(channel_mlp.expansion=0)"),
    "model.in_channels=3": "model.in_channels=3 does not match data darcy, which has 1 input channels/features; leave "
                           "model.in_channels unset (null) to take it from the data",
    "model.out_channels=2": "model.out_channels=2 does not match data darcy, which has 1 output channels (classes); "
                            "leave model.out_channels unset (null) to take it from the data",
    "+patching.overlap=2": "unknown patching key(s) ['overlap']; valid: ['levels', 'padding']",
    "patching.levels=3": "the model cannot take the train data of darcy (input shape (2, 1, 16, 16)): MGPatching: H "
                         "and W (16, 16) must be divisible by 2^(2 * levels) = 64 (levels=3)",
}


@pytest.mark.parametrize("overrides", CONFIGS)
def test_bad_config(tiny_darcy, tmp_path, overrides):
    with pytest.raises(ConfigError) as err:
        run(tiny_darcy(*overrides.split(" ")), output_dir=tmp_path)
    assert str(err.value) == CONFIGS[overrides]
    assert not (tmp_path / "checkpoints").exists()


# ------------------------------------------------------------------------------------------------ data files
def fields(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8, 8)).astype(np.float32), rng.standard_normal((n, 8, 8)).astype(np.float32)


def points(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3)).astype(np.float32), rng.integers(0, 3, n)


def npz(**arrays):
    def write(folder: Path) -> Path:
        np.savez(folder / "data.npz", **arrays)
        return folder / "data.npz"
    return write


def raw(name: str, content: bytes):
    def write(folder: Path) -> Path:
        (folder / name).write_bytes(content)
        return folder / name
    return write


def with_defect(change, make=fields):
    x, y = make()
    change(x, y)
    return npz(x=x, y=y)


def pt_file(content):
    def write(folder: Path) -> Path:
        torch.save(content, folder / "data.pt")
        return folder / "data.pt"
    return write


def h5_with_group(folder: Path) -> Path:
    with h5py.File(folder / "data.h5", "w") as f:
        f.create_group("x")
        f.create_dataset("y", data=fields()[1])
    return folder / "data.h5"


def a_folder(folder: Path) -> Path:
    (folder / "data.npz").mkdir()
    return folder / "data.npz"


def setitem(key, index, value):
    def change(x, y):
        {"x": x, "y": y}[key][index] = value
    return change


CLASSIFY = ("data.task=classification", "data.dim=0", "model=mlp")
F = "data: data file '{file}'"
DATA = {  # name -> (writes the file into a folder, extra overrides, the message)
    "absent": (lambda folder: folder / "absent.npz", (), F + " does not exist"),
    "a folder": (a_folder, (), F + " is not a file"),
    "csv": (raw("data.csv", b"1,2\n"), (), F + ": unsupported suffix '.csv'; supported: ('.pt', '.pth', '.npz', "
                                               "'.h5', '.hdf5')"),
    "empty npz": (raw("data.npz", b""), (), F + " could not be read as .npz: No data left in file"),
    "corrupt npz": (raw("data.npz", b"PK\x03\x04garbage"), (),
                    F + " could not be read as .npz: File is not a zip file"),
    "corrupt h5": (raw("data.h5", b"\0" * 64), (), F + " could not be read as .h5: Unable to synchronously open file "
                                                     "(file signature not found)"),
    "pickled object in .npz": (npz(x=np.array([{"a": 1}] * 20, dtype=object), y=fields()[1]), (),
                               F + " could not be read as .npz: Object arrays cannot be loaded when "
                               "allow_pickle=False"),
    "pickled class in .pt": (pt_file({"x": torch.zeros(3), "y": Path("/")}), (),
                             F + " could not be read as .pt: it holds a pathlib.PosixPath object; data files are read "
                             "with torch.load(weights_only=True), which loads tensors, numbers, strings, lists and "
                             "dicts only"),
    "a list in .pt": (pt_file([torch.zeros(3)]), (), F + " holds a list, expected a dict of tensors"),
    "missing key": (npz(a=fields()[0], y=fields()[1]), (), F + " has no key(s) ['x']; available keys: ['a', 'y']"),
    "h5 group": (h5_with_group, (), F + ": 'x' is an HDF5 group, not an array"),
    "strings": (npz(x=np.array(["a"] * 20), y=fields()[1]), (), F + ": 'x' holds <U1 values; numbers are needed"),
    "sample counts": (npz(x=fields(20)[0], y=fields(19)[1]), (), F + ": 'x' has 20 samples but 'y' has 19"),
    "no spatial dims": (npz(x=np.ones(20, np.float32), y=np.ones(20, np.float32)), (),
                        F + ": 'x' has shape (20,), expected (n, *spatial) or (n, channels, *spatial) with 2 spatial "
                        "dims (data.dim=2)"),
    "complex": (npz(x=fields()[0] * 1j, y=fields()[1]), (),
                F + ": 'x' holds complex values; give real and imaginary parts as two channels"),
    "NaN input": (with_defect(setitem("x", (7, 3, 3), np.nan)), (),
                  "data files: train inputs hold 1 non-finite value(s) (NaN or inf) in 1 sample(s), the first in "
                  "sample 7 of '{file}' (train sample 4)"),
    "inf target": (with_defect(setitem("y", (5, 0, slice(0, 2)), np.inf)), (),
                   "data files: train targets hold 2 non-finite value(s) (NaN or inf) in 1 sample(s), the first in "
                   "sample 5 of '{file}' (train sample 1)"),
    "zero target": (with_defect(setitem("y", 11, 0.0)), (),
                    "data files: 1 train target(s) are all zero, the first is sample 11 of '{file}' (train sample 10); "
                    "a relative loss divides by their norm"),
    "constant targets": (with_defect(setitem("y", slice(None), 1.5)), (),
                         "data files: every training target is the same; there is nothing to learn"),
    "empty split": (npz(x=fields(3)[0], y=fields(3)[1]), ("data.val_fraction=0.1", "data.test_fraction=0.1"),
                    "data files: the test split is empty (check the sample counts / fractions)"),
    "bad task": (npz(x=fields()[0], y=fields()[1]), ("data.task=segmentation",),
                 "data: files: data.task='segmentation' is not one of ('operator', 'classification', 'regression', "
                 "'energy_forces')"),
    "bad fractions": (npz(x=fields()[0], y=fields()[1]), ("data.val_fraction=0.7", "data.test_fraction=0.5"),
                      "data: files: data.val_fraction=0.7 and data.test_fraction=0.5 must be in [0, 1) and sum to "
                      "less than 1"),
    "float labels": (npz(x=points()[0], y=points()[0][:, 0]), CLASSIFY,
                     F + ": labels 'y' must be integers of shape (n,), got torch.float32 (40,)"),
    "negative label": (with_defect(setitem("y", 0, -1), points), CLASSIFY,
                       "data files: train labels must be integers in [0, 3), got values in [-1, 2], the first outside "
                       "in sample 0 of '{file}' (train sample 21)"),
    "outlier label": (with_defect(setitem("y", 4, 1_000_000), points), CLASSIFY,
                      "data files: labels go up to 1000000, in sample 4 of '{file}' (train sample 0), but only 4 "
                      "distinct classes occur in the training set; relabel them 0..C-1"),
    "fields for regression": (npz(x=fields()[0], y=fields()[1]), ("data.task=regression", "model=mlp"),
                              F + ": regression needs 'x' (n, features) and float 'y' (n, outputs) or (n,), got "
                              "(20, 8, 8) and torch.float32 (20, 8, 8)"),
}


@pytest.mark.parametrize("case", DATA)
def test_bad_data_file(tmp_path, case):
    write, overrides, message = DATA[case]
    path = write(tmp_path)
    model = () if any(o.startswith("model=") for o in overrides) else ("model.n_modes=3", "model.hidden_channels=4")
    cfg = compose_config("data=files", f"data.path={path}", *overrides, *model, "trainer.epochs=1",
                         "trainer.batch_size=4", *QUIET_TRAINER)
    with pytest.raises(ConfigError) as err:
        run(cfg, output_dir=tmp_path / "run")
    assert str(err.value) == message.format(file=path)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_data_without_a_source_file_names_the_split_sample():
    """Generated data has no file to point into: the split's own sample index is named."""
    from torch.utils.data import TensorDataset

    from kernelnn.data.bundle import DataBundle
    from kernelnn.data.checks import DataCheckError, check_bundle

    x, y = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4)
    y[3, 0, 1, 1] = float("nan")
    bundle = DataBundle(name="made", task="operator", train=TensorDataset(x, y), tests={}, in_channels=1,
                        out_channels=1, dim=2)
    with pytest.raises(DataCheckError) as err:
        check_bundle(bundle)
    assert str(err.value) == ("data made: train targets hold 1 non-finite value(s) (NaN or inf) in 1 sample(s), the "
                              "first in sample 3")
