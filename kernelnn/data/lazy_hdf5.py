"""Samples of an HDF5 file read one at a time, on demand: a data set larger than memory trains, and under torchrun
each rank reads only the samples its sampler gives it (the file is opened once per process, lazily, so the
dataset also crosses into DataLoader worker processes)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from kernelnn.data.files import DataFileError


class LazyHDF5Samples(Dataset):
    """Samples ``indices`` of the HDF5 file ``path`` in ``layout`` (``pdebench``, ``the_well``, or ``arrays`` with
    ``keys``), read by :func:`~kernelnn.data.published_layouts.hdf5_sampler` when indexed.

    ``dataset[i]`` is ``(x, y)``, float32 fields ``(channels, *spatial)`` (``dim`` spatial dims: a field without a
    channel axis gains one). Nothing but the path and the indices is kept between calls, so pickling (DataLoader
    workers, spawn) is cheap and each process opens its own handle.
    """

    def __init__(self, path: str | Path, layout: str, indices: torch.Tensor, dim: int, input_steps: int = 10,
                 output_steps: int | None = None, keys: tuple[str, str] = ("x", "y")) -> None:
        self.path, self.layout, self.dim = Path(path), layout, dim
        self.indices = torch.as_tensor(indices, dtype=torch.int64)
        self.options = (input_steps, output_steps, tuple(keys))
        self._handle = None  # (pid, h5py.File, sampler)

    def __len__(self) -> int:
        return len(self.indices)

    def _sample(self):
        if self._handle is None or self._handle[0] != os.getpid():
            import h5py

            from kernelnn.data.published_layouts import hdf5_sampler

            f = h5py.File(self.path, "r")
            input_steps, output_steps, keys = self.options
            self._handle = (os.getpid(), f, hdf5_sampler(f, self.layout, self.path, input_steps, output_steps, keys)[1])
        return self._handle[2]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = int(self.indices[i])
        x, y = self._sample()(j)
        return self._field(x, "input", j), self._field(y, "output", j)

    def _field(self, t: torch.Tensor, what: str, j: int) -> torch.Tensor:
        if t.dim() == self.dim:
            t = t[None]
        if t.dim() != self.dim + 1:
            raise DataFileError(f"data file {str(self.path)!r}: sample {j}'s {what} has shape {tuple(t.shape)}, "
                                f"expected ([channels,] *spatial) with {self.dim} spatial dims (data.dim={self.dim})")
        return t.float()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handle": None}  # an open h5py file does not pickle; each process opens its own

    def chunks(self, size: int = 64):
        """``(start, x, y)`` for consecutive runs of ``size`` samples: passes over the split without holding it."""
        for start in range(0, len(self), size):
            pairs = [self[i] for i in range(start, min(start + size, len(self)))]
            yield start, torch.stack([x for x, _ in pairs]), torch.stack([y for _, y in pairs])

    def inputs_and_targets(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every sample at once, for code that needs the whole split."""
        parts = [(x, y) for _, x, y in self.chunks()]
        return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])

    def channel_statistics(self, chunk: int = 64) -> dict[str, torch.Tensor]:
        """Per-channel mean and standard deviation of inputs and targets over every sample, in one streaming pass
        (float64 sums, ``chunk`` samples at a time), as :func:`~kernelnn.training.assemble.normalizing_wrapper`
        needs them without the split in memory."""
        sums: dict[str, list] = {}
        for _, x, y in self.chunks(chunk):
            for name, t in (("in", x), ("out", y)):
                t = t.double().transpose(0, 1).flatten(1)  # (channels, values)
                acc = sums.setdefault(name, [0, 0.0, 0.0])
                acc[0] += t.shape[1]
                acc[1] = acc[1] + t.sum(1)
                acc[2] = acc[2] + t.pow(2).sum(1)
        stats = {}
        for name, (count, total, squares) in sums.items():
            mean = total / count
            var = (squares - count * mean**2) / max(count - 1, 1)  # unbiased, as torch.std
            stats[f"{name}_mean"], stats[f"{name}_std"] = mean.float(), var.clamp_min(0).sqrt().float()
        return stats
