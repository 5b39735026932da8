"""The published data sets' layouts, each read from a small file written here in exactly that layout."""

import h5py
import numpy as np
import pytest
import torch
from scipy.io import savemat

from kernelnn.data import load_files
from kernelnn.data.files import DataFileError
from kernelnn.data.published_layouts import detect_layout, read_layout

RNG = np.random.default_rng(0)


def write_mat73(path, arrays):
    """A MATLAB v7.3 file: HDF5 behind a 512-byte user block, every array stored with its axes reversed."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, value in arrays.items():
            f[key] = np.transpose(value)


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_fno_darcy_mat(tmp_path, version):
    coeff, sol = RNG.random((4, 5, 6)), RNG.random((4, 5, 6))
    path = tmp_path / "piececonst.mat"
    (savemat if version == "v5" else write_mat73)(path, {"coeff": coeff, "sol": sol, "Kcoeff": coeff})
    x, y = read_layout(path, "auto")
    assert x.shape == y.shape == (4, 1, 5, 6)
    torch.testing.assert_close(x[:, 0], torch.as_tensor(coeff).float())
    torch.testing.assert_close(y[:, 0], torch.as_tensor(sol).float())


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_fno_navier_stokes_mat_is_cut_into_frames(tmp_path, version):
    u = RNG.random((3, 8, 8, 7))  # (n, X, Y, T): time last, as the FNO paper's ns_V1e-3 files
    path = tmp_path / "ns.mat"
    (savemat if version == "v5" else write_mat73)(path, {"a": u[..., 0], "u": u, "t": np.arange(7.0)[None]})
    x, y = read_layout(path, "fno_mat", input_steps=3, output_steps=2)
    assert x.shape == (3, 3, 8, 8) and y.shape == (3, 2, 8, 8)
    torch.testing.assert_close(x[1, 2], torch.as_tensor(u[1, :, :, 2]).float())
    torch.testing.assert_close(y[2, 1], torch.as_tensor(u[2, :, :, 4]).float())


def test_fno_burgers_mat(tmp_path):
    a, u = RNG.random((5, 16)), RNG.random((5, 16))
    savemat(tmp_path / "burgers.mat", {"a": a, "u": u})
    x, y = read_layout(tmp_path / "burgers.mat", "fno_mat")
    assert x.shape == y.shape == (5, 1, 16)
    torch.testing.assert_close(y[:, 0], torch.as_tensor(u).float())


def test_pdebench_single_file_trajectories(tmp_path):
    tensor = RNG.random((4, 6, 16))  # 1-D advection: (n, T, X)
    with h5py.File(tmp_path / "1D_Advection.hdf5", "w") as f:
        f["tensor"], f["x-coordinate"], f["t-coordinate"] = tensor, np.arange(16.0), np.arange(7.0)
    x, y = read_layout(tmp_path / "1D_Advection.hdf5", "auto", input_steps=2, output_steps=3)
    assert x.shape == (4, 2, 16) and y.shape == (4, 3, 16)
    torch.testing.assert_close(y[:, 0], torch.as_tensor(tensor[:, 2]).float())


def test_pdebench_darcy_and_compressible_flow(tmp_path):
    nu, tensor = RNG.random((3, 8, 8)), RNG.random((3, 1, 8, 8))
    with h5py.File(tmp_path / "2D_DarcyFlow.hdf5", "w") as f:
        f["nu"], f["tensor"] = nu, tensor
    x, y = read_layout(tmp_path / "2D_DarcyFlow.hdf5", "pdebench")
    assert x.shape == y.shape == (3, 1, 8, 8)
    torch.testing.assert_close(x[:, 0], torch.as_tensor(nu).float())
    fields = {k: RNG.random((2, 5, 8, 8)) for k in ("density", "pressure", "Vx", "Vy")}
    with h5py.File(tmp_path / "2D_CFD.hdf5", "w") as f:
        for k, v in fields.items():
            f[k] = v
    x, y = read_layout(tmp_path / "2D_CFD.hdf5", "pdebench", input_steps=2, output_steps=1)
    assert x.shape == (2, 8, 8, 8) and y.shape == (2, 4, 8, 8)  # frames x fields, frame-major
    torch.testing.assert_close(x[:, 5], torch.as_tensor(fields["pressure"][:, 1]).float())
    torch.testing.assert_close(y[:, 3], torch.as_tensor(fields["Vy"][:, 2]).float())


def test_pdebench_groups_per_sample(tmp_path):
    data = RNG.random((3, 4, 8, 8, 2))  # per sample: (T, X, Y, C)
    with h5py.File(tmp_path / "2D_diff-react.h5", "w") as f:
        for i in range(3):
            f[f"{i:04d}/data"] = data[i]
            f[f"{i:04d}/grid/x"] = np.arange(8.0)
    x, y = read_layout(tmp_path / "2D_diff-react.h5", "auto", input_steps=1)
    assert x.shape == (3, 2, 8, 8) and y.shape == (3, 6, 8, 8)
    torch.testing.assert_close(y[:, 3], torch.as_tensor(data[:, 2, :, :, 1]).float())


def test_neuralop_pt_dictionary(tmp_path):
    torch.save({"x": torch.rand(5, 16, 16), "y": torch.rand(5, 16, 16)}, tmp_path / "darcy_train_16.pt")
    assert detect_layout(tmp_path / "darcy_train_16.pt") == "neuralop"
    bundle = load_files(str(tmp_path / "darcy_train_16.pt"), format="auto", val_fraction=0.2, test_fraction=0.2)
    assert bundle.train.tensors[0].shape == (3, 1, 16, 16) and bundle.in_channels == 1


def test_the_well_fields_become_channels(tmp_path):
    pressure, velocity = RNG.random((2, 5, 8, 8)), RNG.random((2, 5, 8, 8, 2))
    with h5py.File(tmp_path / "shear_flow.hdf5", "w") as f:
        f.attrs["n_spatial_dims"], f.attrs["n_trajectories"] = 2, 2
        f["dimensions/time"] = np.arange(5.0)
        f["t0_fields/pressure"] = pressure
        f["t0_fields/pressure"].attrs.update(time_varying=True, sample_varying=True)
        f["t0_fields/mask"] = np.ones((8, 8))
        f["t0_fields/mask"].attrs.update(time_varying=False, sample_varying=False)
        f["t1_fields/velocity"] = velocity
        f["t1_fields/velocity"].attrs.update(time_varying=True, sample_varying=True)
        f.create_group("t2_fields")
    x, y = read_layout(tmp_path / "shear_flow.hdf5", "auto", input_steps=2, output_steps=2)
    assert x.shape == (2, 6, 8, 8) and y.shape == (2, 6, 8, 8)  # 2 frames x (pressure, u_x, u_y)
    torch.testing.assert_close(x[:, 4], torch.as_tensor(velocity[:, 1, :, :, 0]).float())
    torch.testing.assert_close(y[:, 2], torch.as_tensor(velocity[:, 2, :, :, 1]).float())


def test_a_file_of_another_layout_names_the_keys_found_and_expected(tmp_path):
    savemat(tmp_path / "other.mat", {"x": RNG.random((2, 4)), "y": RNG.random((2, 4))})
    with pytest.raises(DataFileError, match=r"not in the fno_mat layout: it holds \['x', 'y'\]; expected coeff"):
        read_layout(tmp_path / "other.mat", "fno_mat")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["inputs"] = RNG.random((2, 4))
    with pytest.raises(DataFileError, match=r"cannot tell its layout from its keys \['inputs'\]"):
        detect_layout(tmp_path / "other.h5")
    with pytest.raises(DataFileError, match=r"not in the pdebench layout: it holds \['inputs'\]; expected a 'tensor'"):
        read_layout(tmp_path / "other.h5", "pdebench")
    with pytest.raises(DataFileError, match=r"not in the the_well layout: it holds \['inputs'\]"):
        read_layout(tmp_path / "other.h5", "the_well")


def test_trajectories_too_short_for_the_requested_frames_are_refused(tmp_path):
    with h5py.File(tmp_path / "short.hdf5", "w") as f:
        f["tensor"] = RNG.random((2, 4, 8))
    with pytest.raises(DataFileError, match=r"holds 4 frames per trajectory: data.input_steps=3 and "
                                            r"data.output_steps=2 must be positive and fit"):
        read_layout(tmp_path / "short.hdf5", "pdebench", input_steps=3, output_steps=2)


def test_load_files_refuses_a_layout_for_other_tasks(tmp_path):
    with pytest.raises(ValueError, match="data.format='pdebench' reads operator data"):
        load_files(str(tmp_path / "x.h5"), task="regression", format="pdebench")
    with pytest.raises(ValueError, match="data.format='matlab' is not one of"):
        load_files(str(tmp_path / "x.h5"), format="matlab")


def test_malformed_files_fail_naming_the_file(tmp_path):
    with h5py.File(tmp_path / "group.hdf5", "w") as f:
        f.create_group("tensor")
    with h5py.File(tmp_path / "flat.hdf5", "w") as f:
        f["0000/data"] = np.zeros(5)
    (tmp_path / "empty.mat").write_bytes(b"")
    torch.save({"x": torch.randn(2, 4, 4, dtype=torch.complex64), "y": torch.randn(2, 4, 4)}, tmp_path / "c.pt")
    cases = [("group.hdf5", "pdebench", r"\['tensor'\] are HDF5 groups"),
             ("flat.hdf5", "pdebench", "could not be read as pdebench: IndexError"),
             ("empty.mat", "fno_mat", "could not be read as fno_mat"),
             ("c.pt", "neuralop", "the inputs are complex; give real and imaginary parts as two channels")]
    for name, layout, message in cases:
        with pytest.raises(DataFileError, match=f"data file '.*{name}'.*{message}"):
            read_layout(tmp_path / name, layout)


def test_the_well_fields_must_agree_on_trajectories(tmp_path):
    with h5py.File(tmp_path / "w.hdf5", "w") as f:
        f["t0_fields/a"], f["t0_fields/b"] = RNG.random((2, 4, 8, 8)), RNG.random((3, 4, 8, 8))
    with pytest.raises(DataFileError, match=r"the fields disagree on \(trajectories, time steps\)"):
        read_layout(tmp_path / "w.hdf5", "the_well")
