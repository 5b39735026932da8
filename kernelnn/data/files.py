"""Train on your own arrays: ``.pt`` (a dict of tensors), ``.npz`` and ``.h5`` / ``.hdf5`` files."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from kernelnn.data.bundle import TASKS, DataBundle

# Tasks a data file can hold (fields come from their own generators: images, signed distances, the sphere).
FILE_TASKS = tuple(t for t in TASKS if t != "field")

SUFFIXES = (".pt", ".pth", ".npz", ".h5", ".hdf5")


class DataFileError(ValueError):
    """A data file is missing, unreadable, or does not hold what the config says."""


def _check_file(path: str | Path) -> tuple[Path, str]:
    path = Path(path).expanduser()
    if not path.exists():
        raise DataFileError(f"data file {str(path)!r} does not exist")
    if not path.is_file():
        raise DataFileError(f"data file {str(path)!r} is not a file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataFileError(f"data file {str(path)!r}: unsupported suffix {suffix!r}; supported: {SUFFIXES}")
    return path, suffix


def _read(path: str | Path, keys: list[str] | None) -> tuple[list[str], dict[str, torch.Tensor]]:
    """The file's keys in file order, and the arrays ``keys`` (none for ``None``)."""
    path, suffix = _check_file(path)
    try:
        if suffix in (".pt", ".pth"):
            store = contextlib.nullcontext(torch.load(path, map_location="cpu", weights_only=True))
        elif suffix == ".npz":
            store = np.load(path, allow_pickle=False)  # an NpzFile holds the file open until closed
        else:
            import h5py

            store = h5py.File(path, "r")
        with store as content:
            if not hasattr(content, "keys"):
                raise DataFileError(f"data file {str(path)!r} holds a {type(content).__name__}, expected a dict "
                                    "of tensors")
            available = list(content.keys())
            missing = [k for k in keys or [] if k not in available]
            if missing:
                raise DataFileError(f"data file {str(path)!r} has no key(s) {missing}; available keys: {available}")
            arrays = {k: _array(content[k], path, k) for k in keys or []}
    except DataFileError:
        raise
    except Exception as err:  # noqa: BLE001 - report any reader failure with the file's name
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        reason = (f"it holds a {unsafe.group(1)} object; data files are read with torch.load(weights_only=True), "
                  "which loads tensors, numbers, strings, lists and dicts only" if unsafe else str(err))
        raise DataFileError(f"data file {str(path)!r} could not be read as {suffix}: {reason}") from err
    return available, arrays


def _array(entry, path: Path, key: str) -> torch.Tensor:
    """One entry as a tensor: h5py datasets are read with ``[()]``; .pt and .npz entries are arrays already."""
    if hasattr(entry, "visit"):  # an HDF5 group
        raise DataFileError(f"data file {str(path)!r}: {key!r} is an HDF5 group, not an array")
    value = np.asarray(entry[()] if hasattr(entry, "dtype") and hasattr(entry, "id") else entry)
    if value.dtype.kind not in "biufc":
        raise DataFileError(f"data file {str(path)!r}: {key!r} holds {value.dtype} values; numbers are needed")
    return torch.as_tensor(value)


def read_arrays(path: str | Path, keys: list[str]) -> dict[str, torch.Tensor]:
    """Read the arrays ``keys`` from a ``.pt``, ``.npz`` or ``.h5`` file, with errors that name the file."""
    return _read(path, keys)[1]


def array_keys(path: str | Path) -> list[str]:
    """The names of the arrays in a ``.pt``, ``.npz`` or ``.h5`` file, in file order (h5: alphabetical)."""
    return _read(path, None)[0]


def _as_fields(x: torch.Tensor, dim: int, path: str, key: str) -> torch.Tensor:
    """``(n, *spatial)`` -> ``(n, 1, *spatial)``; ``(n, c, *spatial)`` stays; anything else is an error."""
    if x.dim() == dim + 1:
        x = x.unsqueeze(1)
    if x.dim() != dim + 2:
        raise DataFileError(
            f"data file {path!r}: {key!r} has shape {tuple(x.shape)}, expected (n, *spatial) or "
            f"(n, channels, *spatial) with {dim} spatial dims (data.dim={dim})"
        )
    return x.float()


def load_files(
    path: str,
    input_key: str = "x",
    output_key: str = "y",
    task: str = "operator",
    dim: int = 2,
    test_paths: dict[str, str] | None = None,
    n_train: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    periodic: bool = False,
    seed: int = 0,
    name: str = "files",
    format: str = "arrays",
    input_steps: int = 10,
    output_steps: int | None = None,
    lazy: bool = False,
) -> DataBundle:
    """Build a :class:`DataBundle` from user files.

    ``path`` holds the training data (split into train / val / test by the fractions, shuffled with
    ``seed``, unless ``test_paths`` is given: then each ``name: file`` there is a test set, e.g. other
    resolutions). For ``task="operator"`` arrays are fields ``(n, [channels,] *spatial)`` with ``dim`` spatial
    dims; for ``"classification"`` inputs are ``(n, features)`` (``dim=0``) or fields, outputs integer labels; for
    ``"regression"`` ``(n, features)`` in and ``(n, outputs)`` (or ``(n,)``) out; for ``"energy_forces"`` positions
    ``(n, atoms, 3)`` in and ``[energy, forces.flatten()]`` ``(n, 1 + 3 atoms)`` out.

    ``format="arrays"`` reads the arrays ``input_key`` and ``output_key``; ``"auto"`` or a name from
    :data:`kernelnn.data.published_layouts.LAYOUTS` reads a published data set's own layout (the FNO papers' ``.mat``
    files, PDEBench and The Well HDF5, neuraloperator's ``.pt``), cutting trajectories into ``input_steps`` frames
    in and ``output_steps`` out (operator task only). ``lazy=True`` reads HDF5 files (``arrays``, ``pdebench``,
    ``the_well``) one sample at a time when the loop asks for it (:class:`~kernelnn.data.lazy_hdf5.LazyHDF5Samples`)
    instead of whole: a data set larger than memory trains, and each rank reads only its own samples.
    """
    if task not in FILE_TASKS:
        raise ValueError(f"files: data.task={task!r} is not one of {FILE_TASKS}")
    from kernelnn.data.published_layouts import LAYOUTS

    if format not in ("arrays", "auto", *LAYOUTS):
        raise ValueError(f"files: data.format={format!r} is not one of {('arrays', 'auto', *LAYOUTS)}")
    if format != "arrays" and task != "operator":
        raise ValueError(f"files: data.format={format!r} reads operator data (fields in, fields out); "
                         f"data.task={task!r} needs data.format=arrays")
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"files: data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must be "
                         "in [0, 1) and sum to less than 1")

    def load(p: str) -> tuple[torch.Tensor, torch.Tensor]:
        if format == "arrays":
            arrays = read_arrays(p, [input_key, output_key])
            x, y = arrays[input_key], arrays[output_key]
        else:
            from kernelnn.data.published_layouts import read_layout

            x, y = read_layout(p, format, input_steps, output_steps)
        for key, t in ((input_key, x), (output_key, y)):
            if t.is_complex():  # a cast to float would drop the imaginary part
                raise DataFileError(f"data file {p!r}: {key!r} holds complex values; give real and imaginary parts "
                                    "as two channels")
        if len(x) != len(y):
            raise DataFileError(f"data file {p!r}: {input_key!r} has {len(x)} samples but {output_key!r} has {len(y)}")
        if task == "operator":
            return _as_fields(x, dim, p, input_key), _as_fields(y, dim, p, output_key)
        if task == "regression":  # vectors in, vectors out
            if x.dim() != 2 or y.dim() not in (1, 2) or not y.is_floating_point():
                raise DataFileError(f"data file {p!r}: regression needs {input_key!r} (n, features) and float "
                                    f"{output_key!r} (n, outputs) or (n,), got {tuple(x.shape)} and {y.dtype} "
                                    f"{tuple(y.shape)}")
            return x.float(), (y if y.dim() == 2 else y[:, None]).float()
        if task == "energy_forces":  # positions (n, atoms, 3) -> [energy, forces.flatten()] (n, 1 + 3 atoms)
            if x.dim() != 3 or x.shape[2] != 3 or y.shape != (len(x), 1 + 3 * x.shape[1]):
                raise DataFileError(f"data file {p!r}: energy_forces needs {input_key!r} positions (n, atoms, 3) and "
                                    f"{output_key!r} = [energy, forces.flatten()] (n, 1 + 3 atoms), got "
                                    f"{tuple(x.shape)} and {tuple(y.shape)}")
            return x.float(), y.float()
        x = x.float() if dim == 0 else _as_fields(x, dim, p, input_key)
        if y.dim() != 1 or y.is_floating_point():
            raise DataFileError(f"data file {p!r}: labels {output_key!r} must be integers of shape (n,), got "
                                f"{y.dtype} {tuple(y.shape)}")
        return x, y.long()

    if lazy:
        return _lazy_bundle(path, format, task, dim, test_paths, n_train, val_fraction, test_fraction, periodic, seed,
                            name, input_steps, output_steps, (input_key, output_key))
    x, y = load(path)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    n_tr, n_val, n_test = _split_sizes(path, len(x), n_train, val_fraction, test_fraction, bool(test_paths))
    tests = {k: TensorDataset(*load(p)) for k, p in (test_paths or {}).items()}
    if not tests:
        tests = {"test": TensorDataset(x[n_tr + n_val: n_tr + n_val + n_test], y[n_tr + n_val: n_tr + n_val + n_test])}
    vectors = task in ("regression", "energy_forces") or (task == "classification" and dim == 0)
    if task == "classification":
        out_channels = int(y.max()) + 1 if len(y) else 0
    else:
        out_channels = 1 if task == "energy_forces" else y.shape[1]
    sources = {"train": (str(path), order[:n_tr]), "val": (str(path), order[n_tr: n_tr + n_val]),
               **({k: (str(p), torch.arange(len(tests[k]))) for k, p in test_paths.items()} if test_paths else
                  {"test": (str(path), order[n_tr + n_val: n_tr + n_val + n_test])})}
    return DataBundle(
        name=name, task=task, train=TensorDataset(x[:n_tr], y[:n_tr]),
        val=TensorDataset(x[n_tr: n_tr + n_val], y[n_tr: n_tr + n_val]) if n_val else None,
        tests=tests, in_channels=x.shape[-1] if vectors else x.shape[1], out_channels=out_channels,
        dim=0 if task in ("regression", "energy_forces") else dim, periodic=periodic, info={"path": str(path)},
        geometric=task == "energy_forces", sources=sources,
    )


def _split_sizes(path, n: int, n_train: int | None, val_fraction: float, test_fraction: float,
                 separate_tests: bool) -> tuple[int, int, int]:
    """Training, validation and test counts of ``n`` shuffled samples (no test split when tests come from other
    files)."""
    n_test = 0 if separate_tests else round(test_fraction * n)
    n_val = round(val_fraction * n)
    n_tr = n - n_val - n_test if n_train is None else int(n_train)
    if n_tr < 1 or n_tr + n_val + n_test > n:
        raise ValueError(f"files: {str(path)!r} has {n} samples, too few for data.n_train={n_train}, "
                         f"{n_val} validation and {n_test} test samples")
    return n_tr, n_val, n_test


def _lazy_bundle(path, format, task, dim, test_paths, n_train, val_fraction, test_fraction, periodic, seed, name,
                 input_steps, output_steps, keys) -> DataBundle:
    """:func:`load_files` with every split a :class:`~kernelnn.data.lazy_hdf5.LazyHDF5Samples` (same split rule)."""
    import h5py

    from kernelnn.data.lazy_hdf5 import LazyHDF5Samples
    from kernelnn.data.published_layouts import detect_layout, existing_file, hdf5_sampler

    def whole_file(p: str) -> LazyHDF5Samples:
        """Every sample of ``p``; its ``indices`` are then narrowed to a split."""
        file = existing_file(p)
        layout = detect_layout(file) if format == "auto" else format
        if layout not in ("arrays", "pdebench", "the_well") or not h5py.is_hdf5(file):
            raise DataFileError(f"data file {str(p)!r}: data.lazy=true reads HDF5 files sample by sample (data.format "
                                f"arrays, pdebench or the_well); this one is read as {layout!r}")
        with h5py.File(file, "r") as f:
            n = hdf5_sampler(f, layout, file, input_steps, output_steps, keys)[0]
        return LazyHDF5Samples(file, layout, torch.arange(n), dim, input_steps, output_steps, keys)

    def subset(samples: LazyHDF5Samples, indices: torch.Tensor) -> LazyHDF5Samples:
        return LazyHDF5Samples(samples.path, samples.layout, indices, dim, input_steps, output_steps, keys)

    if task != "operator":
        raise ValueError(f"files: data.lazy=true reads operator data (fields); data.task={task!r} needs lazy=false")
    everything = whole_file(path)
    n = len(everything)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_tr, n_val, n_test = _split_sizes(path, n, n_train, val_fraction, test_fraction, bool(test_paths))
    parts = {"train": order[:n_tr], "val": order[n_tr: n_tr + n_val],
             "test": order[n_tr + n_val: n_tr + n_val + n_test]}
    train = subset(everything, parts["train"])
    val = subset(everything, parts["val"]) if n_val else None
    tests = {k: whole_file(p) for k, p in (test_paths or {}).items()} or {"test": subset(everything, parts["test"])}
    x, y = train[0]
    sources = {"train": (str(path), parts["train"]), "val": (str(path), parts["val"]),
               **({k: (str(p), tests[k].indices) for k, p in test_paths.items()} if test_paths else
                  {"test": (str(path), parts["test"])})}
    return DataBundle(name=name, task=task, train=train, val=val, tests=tests, in_channels=x.shape[0],
                      out_channels=y.shape[0], dim=dim, periodic=periodic, info={"path": str(path), "lazy": True},
                      sources=sources)
