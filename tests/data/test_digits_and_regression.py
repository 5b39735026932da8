import pytest
import torch

from kernelnn.data import load_digits, load_mnist, make_active_subspace


def test_mnist_subset_split_is_fixed_and_stratified():
    bundle = load_mnist()
    x, y = bundle.train.tensors
    assert x.shape == (3500, 1, 28, 28) and bundle.val.tensors[0].shape[0] == 500
    assert bundle.tests["test"].tensors[0].shape[0] == 1000
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.9
    assert torch.equal(torch.bincount(y), torch.full((10,), 350))  # 500 per class in the subset, 70% to train
    again = load_mnist()
    assert torch.equal(again.tests["test"].tensors[1], bundle.tests["test"].tensors[1])
    train_rows = {tuple(r.tolist()) for r in x.flatten(1)[:200]}
    assert not any(tuple(r.tolist()) in train_rows for r in bundle.tests["test"].tensors[0].flatten(1))


def test_sklearn_digits():
    bundle = load_digits(val_fraction=0.0)
    x, y = bundle.train.tensors
    assert bundle.val is None and x.shape[1:] == (1, 8, 8) and bundle.out_channels == 10
    assert len(x) + len(bundle.tests["test"]) == 1797
    with pytest.raises(ValueError, match="must be fractions with room left for training"):
        load_digits(val_fraction=0.5, test_fraction=0.5)


def test_active_subspace_regression_has_the_planted_structure():
    bundle = make_active_subspace(dim=10, n_relevant=3, n_train=100, n_val=0, n_test=10, seed=1)
    a, b = bundle.info["a"], bundle.info["b"]
    torch.testing.assert_close(torch.stack([a, b]) @ torch.stack([a, b]).T, torch.eye(2))
    assert a[3:].abs().sum() == 0 and b[3:].abs().sum() == 0
    x, y = bundle.train.tensors
    torch.testing.assert_close(y[:, 0], torch.sin(x @ a) + (x @ b) ** 2, rtol=1e-5, atol=1e-5)
    moved = x.clone()
    moved[:, 3:] = torch.rand_like(moved[:, 3:])  # distractor inputs do not change f
    torch.testing.assert_close(torch.sin(moved @ a) + (moved @ b) ** 2, y[:, 0], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="n_relevant=1 must be between 2 and data.dim=10"):
        make_active_subspace(dim=10, n_relevant=1)
