"""Data is checked once, when it is loaded: what would make training fail late, or report a wrong number."""

from __future__ import annotations

import torch

from kernelnn.data.bundle import DataBundle, inputs_and_targets


class DataCheckError(ValueError):
    """The data cannot be trained on as it is; the message names the data, the split, the sample and the count."""


def _bad_samples(mask: torch.Tensor) -> torch.Tensor:
    """Indices of the samples (first dim) where ``mask`` holds anything."""
    return (mask.flatten(1).any(1) if mask.dim() > 1 else mask).nonzero()[:, 0]


def _sample(bundle: DataBundle, split: str, index: int) -> str:
    """``sample i`` of a split, and where a user finds it in their file."""
    if split not in bundle.sources:
        return f"sample {index}"
    path, origin = bundle.sources[split]
    return f"sample {int(origin[index])} of {path!r} ({split} sample {index})"


def check_bundle(bundle: DataBundle, relative_loss: bool = False) -> None:
    """Raise :class:`DataCheckError` for empty splits, complex or non-finite values, constant training targets,
    all-zero targets under a relative loss (``relative_loss``), and class labels that are not ``0..C-1``. A split
    read sample by sample (``chunks()``) is checked a chunk at a time, never held whole."""
    name = bundle.name
    splits = {"train": bundle.train, **bundle.eval_sets()}
    first, all_alike = None, True  # a split read in chunks: is every training target the first? (in the one pass)
    for split, ds in splits.items():
        if len(ds) == 0:
            raise DataCheckError(f"data {name}: the {split} split is empty (check the sample counts / fractions)")
        parts = ds.chunks() if hasattr(ds, "chunks") else [(0, *inputs_and_targets(ds))]
        for offset, x, y in parts:
            _check_values(bundle, split, ds, x, y, offset, relative_loss)
            if split == "train" and hasattr(ds, "chunks"):
                first = y[:1] if first is None else first
                all_alike = all_alike and bool((y == first).all())
    if hasattr(bundle.train, "chunks"):
        if len(bundle.train) > 1 and all_alike:
            raise DataCheckError(f"data {name}: every training target is the same; there is nothing to learn")
        return
    y = inputs_and_targets(bundle.train)[1]
    if bundle.task == "classification":
        seen = torch.unique(y).numel()
        if bundle.out_channels > max(2 * seen, seen + 10):
            top = _sample(bundle, "train", int(y.argmax()))
            raise DataCheckError(f"data {name}: labels go up to {bundle.out_channels - 1}, in {top}, but only "
                                 f"{seen} distinct classes occur in the training set; relabel them 0..C-1")
    elif isinstance(y, torch.Tensor) and len(y) > 1 and y.is_floating_point() and (y == y[:1]).all():
        raise DataCheckError(f"data {name}: every training target is the same; there is nothing to learn")


def _check_values(bundle: DataBundle, split: str, ds, x, y, offset: int, relative_loss: bool) -> None:
    """The value checks of :func:`check_bundle` on samples ``offset, offset + 1, ...`` of one split."""
    name = bundle.name
    inputs = x if isinstance(x, tuple) else (x,)
    targets = [(f"targets[{k!r}]", t) for k, t in y.items()] if isinstance(y, dict) else [("targets", y)]
    # a dataset that joins its own samples (atoms concatenated) has rows that are not samples
    rows_are_samples = not hasattr(ds, "collate")
    for what, t in [*(("inputs", t) for t in inputs), *targets]:
        if t.is_complex():
            raise DataCheckError(f"data {name}: {split} {what} are complex; give real and imaginary parts as two "
                                 "channels")
        if t.is_floating_point():
            bad = ~torch.isfinite(t)
            if bad.any():
                samples = _bad_samples(bad)
                where = (f" in {len(samples)} sample(s), the first in "
                         f"{_sample(bundle, split, offset + int(samples[0]))}" if rows_are_samples else "")
                raise DataCheckError(f"data {name}: {split} {what} hold {int(bad.sum())} non-finite value(s) (NaN "
                                     f"or inf){where}")
    if bundle.task == "classification":
        labels = y
        outside = (labels < 0) | (labels >= bundle.out_channels)
        if labels.is_floating_point() or outside.any():
            first = (f", the first outside in {_sample(bundle, split, offset + int(outside.nonzero()[0, 0]))}"
                     if outside.any() else "")
            raise DataCheckError(f"data {name}: {split} labels must be integers in [0, {bundle.out_channels}), "
                                 f"got values in [{labels.min().item()}, {labels.max().item()}]{first}")
    elif relative_loss and isinstance(y, torch.Tensor) and y.is_floating_point():
        zero = y.flatten(1).abs().amax(1) == 0
        if zero.any():
            raise DataCheckError(f"data {name}: {int(zero.sum())} {split} target(s) are all zero, the first is "
                                 f"{_sample(bundle, split, offset + int(zero.nonzero()[0, 0]))}; a relative loss "
                                 "divides by their norm")
