"""HDF5 read sample by sample (data.lazy=true): the same splits and values as reading whole, streaming statistics
and checks, each process with its own handle, and only the samples asked for are read."""

import pickle

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from kernelnn.data import load_files
from kernelnn.data.checks import DataCheckError, check_bundle
from kernelnn.data.lazy_hdf5 import LazyHDF5Samples
from kernelnn.training.assemble import normalizing_wrapper
from tests.conftest import QUIET_TRAINER, compose_config


def pdebench_file(tmp_path, n=10, nan_at=None):
    tensor = np.random.default_rng(0).random((n, 5, 8, 8)).astype(np.float32)
    if nan_at is not None:
        tensor[nan_at, 4, 2, 2] = np.nan
    path = tmp_path / "2D_trajectories.hdf5"
    with h5py.File(path, "w") as f:
        f["tensor"] = tensor
    return path


def test_lazy_splits_hold_what_reading_whole_gives(tmp_path):
    path = pdebench_file(tmp_path)
    options = dict(format="pdebench", input_steps=2, output_steps=3, val_fraction=0.2, test_fraction=0.2)
    whole, lazy = load_files(str(path), **options), load_files(str(path), lazy=True, **options)
    assert isinstance(lazy.train, LazyHDF5Samples) and lazy.in_channels == 2 and lazy.out_channels == 3
    for split in ("train", "val"):
        x, y = getattr(whole, split).tensors
        lazy_x, lazy_y = getattr(lazy, split).inputs_and_targets()
        torch.testing.assert_close(lazy_x, x)
        torch.testing.assert_close(lazy_y, y)
    torch.testing.assert_close(lazy.tests["test"].inputs_and_targets()[1], whole.tests["test"].tensors[1])
    assert lazy.spatial_shapes() == whole.spatial_shapes()


def test_streamed_statistics_equal_the_whole_splits(tmp_path):
    bundle = load_files(str(pdebench_file(tmp_path)), format="pdebench", input_steps=2, lazy=True)
    streamed = normalizing_wrapper(torch.nn.Identity(), bundle, {"input": True, "output": True})
    x, y = bundle.train.inputs_and_targets()
    torch.testing.assert_close(streamed.in_mean, x.double().mean((0, 2, 3)).float())
    torch.testing.assert_close(streamed.out_std, y.double().std((0, 2, 3)).float())


def test_a_rank_reads_only_its_own_samples(tmp_path, monkeypatch):
    bundle = load_files(str(pdebench_file(tmp_path)), format="pdebench", input_steps=2, lazy=True,
                        val_fraction=0.0, test_fraction=0.2)
    train, read = bundle.train, []
    original = LazyHDF5Samples._sample

    def counting(self):
        sample = original(self)
        return lambda j: (read.append(j), sample(j))[1]

    monkeypatch.setattr(LazyHDF5Samples, "_sample", counting)
    sampler = DistributedSampler(train, num_replicas=2, rank=1, shuffle=True, seed=0)
    for _ in DataLoader(train, batch_size=2, sampler=sampler):
        pass
    assert sorted(read) == sorted(int(train.indices[i]) for i in sampler)
    assert len(read) == len(train) // 2


def test_the_dataset_pickles_without_its_file_handle(tmp_path):
    bundle = load_files(str(pdebench_file(tmp_path)), format="pdebench", input_steps=2, lazy=True)
    first = bundle.train[0]
    copy = pickle.loads(pickle.dumps(bundle.train))  # as DataLoader workers receive it
    assert copy._handle is None
    torch.testing.assert_close(copy[0][0], first[0])


def test_a_nan_is_found_in_the_sample_a_user_can_find(tmp_path):
    path = pdebench_file(tmp_path, n=10, nan_at=7)
    bundle = load_files(str(path), format="pdebench", input_steps=2, lazy=True)
    with pytest.raises(DataCheckError, match=r"hold 1 non-finite value\(s\) \(NaN or inf\) in 1 sample\(s\), the first "
                                             r"in sample 7 of"):
        check_bundle(bundle)


def test_only_hdf5_is_read_lazily(tmp_path):
    torch.save({"x": torch.rand(4, 8, 8), "y": torch.rand(4, 8, 8)}, tmp_path / "d.pt")
    with pytest.raises(ValueError, match=r"data.lazy=true reads HDF5 files sample by sample"):
        load_files(str(tmp_path / "d.pt"), format="auto", lazy=True)


def test_train_py_trains_on_a_lazily_read_file(tmp_path):
    from kernelnn.training import run

    path = pdebench_file(tmp_path, n=12)
    cfg = compose_config("data=files", f"data.path={path}", "data.format=auto", "data.lazy=true", "data.input_steps=2",
                         "data.output_steps=3", "data.periodic=true", "model.n_modes=3", "model.hidden_channels=4",
                         "model.n_layers=1", "model.projection_channels=8", "trainer.epochs=2", "trainer.batch_size=4",
                         *QUIET_TRAINER)
    summary = run(cfg, output_dir=tmp_path / "run")
    assert np.isfinite(summary["test"]["test/l2"])


def test_a_lazily_read_set_of_identical_targets_is_refused(tmp_path):
    with h5py.File(tmp_path / "same.hdf5", "w") as f:
        f["tensor"] = np.ones((150, 4, 8, 8), dtype=np.float32)  # more than one chunk of 64
    bundle = load_files(str(tmp_path / "same.hdf5"), format="pdebench", input_steps=2, lazy=True)
    with pytest.raises(DataCheckError, match="every training target is the same"):
        check_bundle(bundle)
