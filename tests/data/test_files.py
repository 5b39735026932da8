import h5py
import numpy as np
import pytest
import torch

from kernelnn.data import DataFileError, load_files


def write(path, x, y):
    if path.suffix == ".pt":
        torch.save({"a": torch.as_tensor(x), "u": torch.as_tensor(y)}, path)
    elif path.suffix == ".npz":
        np.savez(path, a=x, u=y)
    else:
        with h5py.File(path, "w") as f:
            f["a"], f["u"] = x, y


@pytest.mark.parametrize("suffix", [".pt", ".npz", ".h5"])
def test_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 8, 8)).astype(np.float32), rng.standard_normal((20, 2, 8, 8)).astype(np.float32)
    path = tmp_path / f"data{suffix}"
    write(path, x, y)
    bundle = load_files(str(path), input_key="a", output_key="u", dim=2, val_fraction=0.1, test_fraction=0.2)
    assert bundle.in_channels == 1 and bundle.out_channels == 2
    assert len(bundle.train) == 14 and len(bundle.val) == 2 and len(bundle.tests["test"]) == 4
    all_x = torch.cat([bundle.train.tensors[0], bundle.val.tensors[0], bundle.tests["test"].tensors[0]])
    torch.testing.assert_close(all_x.sum(0), torch.from_numpy(x).unsqueeze(1).sum(0))  # a permutation of the samples


def test_separate_test_files_and_classification(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", x=rng.standard_normal((30, 4)), y=rng.integers(0, 3, 30))
    np.savez(tmp_path / "other.npz", x=rng.standard_normal((6, 4)), y=rng.integers(0, 3, 6))
    bundle = load_files(str(tmp_path / "train.npz"), task="classification", dim=0, val_fraction=0.0,
                   test_paths={"shifted": str(tmp_path / "other.npz")})
    assert bundle.in_channels == 4 and bundle.out_channels == 3 and bundle.val is None
    assert len(bundle.train) == 30 and len(bundle.tests["shifted"]) == 6
    assert bundle.train.tensors[1].dtype == torch.int64


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DataFileError, match=r"data file '.*nope\.npz' does not exist"):
        load_files(str(tmp_path / "nope.npz"))


def test_corrupt_file_names_it_and_why(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(DataFileError, match=r"data file '.*broken\.npz' could not be read as \.npz: "):
        load_files(str(path))


def test_missing_key_lists_available(tmp_path):
    np.savez(tmp_path / "d.npz", inputs=np.zeros((4, 8)), outputs=np.zeros((4, 8)))
    with pytest.raises(DataFileError, match=r"has no key\(s\) \['x', 'y'\]; available keys: \['inputs', 'outputs'\]"):
        load_files(str(tmp_path / "d.npz"), dim=1)


def test_wrong_shape_and_suffix(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 8)), y=np.zeros((4, 8)))
    with pytest.raises(DataFileError, match=r"'x' has shape \(4, 8\), expected .* with 2 spatial dims"):
        load_files(str(tmp_path / "d.npz"), dim=2)
    (tmp_path / "d.csv").write_text("1,2")
    with pytest.raises(DataFileError, match="unsupported suffix '.csv'"):
        load_files(str(tmp_path / "d.csv"))
