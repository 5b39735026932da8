"""Readers for the file layouts of published operator-learning data sets, as ``(inputs, targets)`` fields.

Each reader returns ``x`` ``(n, c_in, *spatial)`` and ``y`` ``(n, c_out, *spatial)`` in float32, in C order (the
first spatial axis is the file's first). Layouts (``data=files data.format=...``):

``fno_mat``
    The FNO papers' MATLAB files, v5 (read by scipy) or v7.3 (HDF5, read by h5py, whose axes come reversed: MATLAB
    is column-major). Darcy: ``coeff`` -> ``sol``; Burgers: ``a`` -> ``u``; Navier-Stokes: ``u`` ``(n, X, Y, T)``
    is a trajectory, its first ``input_steps`` frames -> the next ``output_steps``.
``pdebench``
    PDEBench HDF5: one file with ``tensor`` ``(n, T, *spatial)`` (a trajectory; with ``nu``, Darcy: ``nu`` ->
    ``tensor[:, 0]``) or with one dataset per field (``density``, ``pressure``, ``Vx``, ... each
    ``(n, T, *spatial)``); or one group per sample (``"0000"``, ...) holding ``data`` ``(T, *spatial, C)``.
``neuralop``
    neuraloperator's ``.pt`` dictionaries: ``x`` and ``y`` ``(n, [c,] *spatial)`` (read with
    ``weights_only=True``).
``the_well``
    The Well's HDF5: fields in the groups ``t0_fields`` (scalars), ``t1_fields`` (vectors) and ``t2_fields``
    (tensors), each ``(n_trajectories, T, *spatial, *components)``; components become channels, and the first
    ``input_steps`` frames of each trajectory -> the next ``output_steps``.

For trajectories, channels are ``frames x fields`` (frame-major). ``detect_layout`` picks a layout where the file's
keys leave no doubt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kernelnn.data.files import DataFileError, read_arrays

LAYOUTS = ("fno_mat", "pdebench", "neuralop", "the_well")
PDEBENCH_FIELDS = ("density", "pressure", "Vx", "Vy", "Vz")
WELL_GROUPS = ("t0_fields", "t1_fields", "t2_fields")


def _is_hdf5(path: Path) -> bool:
    import h5py

    return h5py.is_hdf5(path)


def _keys(path: Path) -> list[str]:
    """Top-level names of an HDF5 or MATLAB v5 file (for detection and error messages)."""
    if _is_hdf5(path):
        import h5py

        with h5py.File(path, "r") as f:
            return list(f.keys())
    if path.suffix.lower() == ".mat":
        from scipy.io import whosmat

        return [name for name, _, _ in whosmat(path)]
    return list(torch.load(path, map_location="cpu", weights_only=True).keys())


def _wrong_layout(path: Path, layout: str, found: list[str], expected: str) -> DataFileError:
    return DataFileError(f"data file {str(path)!r} is not in the {layout} layout: it holds {found}; expected "
                         f"{expected}")


def detect_layout(path: str | Path) -> str:
    """The layout of ``path`` when its suffix and keys leave no doubt; raises :class:`DataFileError` otherwise."""
    path = existing_file(path)
    suffix = path.suffix.lower()
    if suffix == ".mat":
        return "fno_mat"
    if suffix in (".pt", ".pth"):
        return "neuralop"
    if suffix in (".h5", ".hdf5", ".hdf") and _is_hdf5(path):
        keys = _keys(path)
        if any(k in keys for k in WELL_GROUPS):
            return "the_well"
        if "tensor" in keys or any(k in keys for k in PDEBENCH_FIELDS) or (keys and all(k.isdigit() for k in keys)):
            return "pdebench"
        raise DataFileError(f"data file {str(path)!r}: cannot tell its layout from its keys {keys}; set data.format "
                            f"to one of {LAYOUTS} (or arrays with data.input_key / data.output_key)")
    raise DataFileError(f"data file {str(path)!r}: cannot tell its layout from the suffix {suffix!r}; set data.format "
                        f"to one of {LAYOUTS}")


def existing_file(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataFileError(f"data file {str(path)!r} does not exist or is not a file")
    return path


def read_layout(path: str | Path, layout: str, input_steps: int = 10,
                output_steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` from ``path`` in ``layout`` (one of :data:`LAYOUTS`, or ``"auto"``); ``input_steps`` and
    ``output_steps`` (default: every remaining frame) cut trajectories into inputs and targets."""
    path = existing_file(path)
    if layout == "auto":
        layout = detect_layout(path)
    readers = {"fno_mat": _fno_mat, "pdebench": _pdebench, "neuralop": _neuralop, "the_well": _the_well}
    if layout not in readers:
        raise ValueError(f"files: data.format={layout!r} is not one of {('auto', *LAYOUTS)} (or arrays)")
    try:
        x, y = readers[layout](path, input_steps, output_steps)
    except DataFileError:
        raise
    except Exception as err:  # noqa: BLE001 - a malformed file fails naming itself, whatever the reader raised
        raise DataFileError(f"data file {str(path)!r} could not be read as {layout}: {type(err).__name__}: "
                            f"{err}") from err
    for what, t in (("inputs", x), ("targets", y)):
        if t.is_complex():  # a cast to float would drop the imaginary part
            raise DataFileError(f"data file {str(path)!r}: the {what} are complex; give real and imaginary parts "
                                "as two channels")
    return x.float(), y.float()


def split_frames(frames: torch.Tensor, input_steps: int, output_steps: int | None, path: Path):
    """``frames`` ``(T, C, *spatial)`` of one trajectory -> its input ``(input_steps * C, *spatial)`` and target (the
    next ``output_steps`` frames, default all that follow); raises if the trajectory is too short."""
    n_frames = frames.shape[0]
    out = n_frames - input_steps if output_steps is None else output_steps
    if input_steps < 1 or out < 1 or input_steps + out > n_frames:
        raise DataFileError(f"data file {str(path)!r} holds {n_frames} frames per trajectory: data.input_steps="
                            f"{input_steps} and data.output_steps={output_steps} must be positive and fit in them")
    return frames[:input_steps].flatten(0, 1), frames[input_steps: input_steps + out].flatten(0, 1)


def split_trajectory(frames: torch.Tensor, input_steps: int, output_steps: int | None, path: Path):
    """``frames`` ``(n, T, C, *spatial)`` -> inputs ``(n, input_steps * C, ...)`` and the next ``output_steps``."""
    split_frames(frames[0], input_steps, output_steps, path)  # the check, with its message
    out = frames.shape[1] - input_steps if output_steps is None else output_steps
    return frames[:, :input_steps].flatten(1, 2), frames[:, input_steps: input_steps + out].flatten(1, 2)


def _fno_mat(path: Path, input_steps: int, output_steps: int | None):
    found = sorted(_keys(path))
    if {"coeff", "sol"} <= set(found):  # Darcy: (n, X, Y)
        arrays = _read_mat(path, ["coeff", "sol"])
        return arrays["coeff"][:, None], arrays["sol"][:, None]
    if {"a", "u"} <= set(found):
        arrays = _read_mat(path, ["a", "u"])
        a, u = arrays["a"], arrays["u"]
        if u.dim() == a.dim() + 1:  # Navier-Stokes: a = w0 (n, X, Y), u = frames (n, X, Y, T), time last
            frames = torch.movedim(u, -1, 1)[:, :, None]
            return split_trajectory(frames, input_steps, output_steps, path)
        return a[:, None], u[:, None]  # Burgers: (n, X) -> (n, X)
    raise _wrong_layout(path, "fno_mat", found, "coeff and sol (Darcy) or a and u (Burgers, Navier-Stokes)")


def _read_mat(path: Path, names: list[str]) -> dict[str, torch.Tensor]:
    """The numeric arrays ``names`` of a MATLAB file (only those: the FNO files hold several more of full size), in
    C order: v7.3 through h5py (axes reversed back: MATLAB is column-major), v5 through scipy."""
    if _is_hdf5(path):
        import h5py

        with h5py.File(path, "r") as f:
            arrays = {k: f[k] for k in names}
            bad = [k for k, v in arrays.items() if not isinstance(v, h5py.Dataset) or v.dtype.kind not in "biuf"]
            values = {k: np.ascontiguousarray(np.transpose(v[()])) for k, v in arrays.items() if k not in bad}
    else:
        from scipy.io import loadmat

        content = loadmat(path, variable_names=names)
        bad = [k for k in names if not isinstance(content.get(k), np.ndarray) or content[k].dtype.kind not in "biuf"]
        values = {k: content[k] for k in names if k not in bad}
    if bad:
        raise DataFileError(f"data file {str(path)!r}: {bad} are not numeric arrays")
    return {k: torch.as_tensor(v) for k, v in values.items()}


def hdf5_sampler(f, layout: str, path: Path, input_steps: int, output_steps: int | None,
                 keys: tuple[str, str] = ("x", "y")):
    """For the open HDF5 file ``f`` in ``layout`` (``pdebench``, ``the_well``, or ``arrays`` with ``keys``): the
    number of samples and a function reading sample ``j`` alone as ``(x_j, y_j)`` (h5py reads just that slice), so
    the whole file and :class:`~kernelnn.data.lazy_hdf5.LazyHDF5Samples` share one reader."""
    found = list(f.keys())
    groups = [k for k in ("tensor", "nu", *PDEBENCH_FIELDS) if k in found and not hasattr(f[k], "dtype")]
    if layout == "pdebench" and groups:
        raise DataFileError(f"data file {str(path)!r}: {groups} are HDF5 groups; the pdebench layout holds them as "
                            "arrays (n, T, *spatial)")
    if layout == "arrays":
        missing = [k for k in keys if k not in found]
        if missing:
            raise DataFileError(f"data file {str(path)!r} has no key(s) {missing}; available keys: {found}")
        return len(f[keys[0]]), lambda j: (torch.as_tensor(f[keys[0]][j]), torch.as_tensor(f[keys[1]][j]))
    if layout == "pdebench":
        if "tensor" in found and "nu" in found:  # 2-D Darcy: nu (n, X, Y), tensor (n, 1, X, Y)
            return len(f["nu"]), lambda j: (torch.as_tensor(f["nu"][j])[None], torch.as_tensor(f["tensor"][j])[:1])
        if "tensor" in found:  # one field: (n, T, *spatial)
            frames = lambda j: torch.as_tensor(f["tensor"][j])[:, None]  # noqa: E731
            n = len(f["tensor"])
        elif any(k in found for k in PDEBENCH_FIELDS):  # compressible flow: one (n, T, *spatial) per field
            fields = [k for k in PDEBENCH_FIELDS if k in found]
            frames = lambda j: torch.stack([torch.as_tensor(f[k][j]) for k in fields], dim=1)  # noqa: E731
            n = len(f[fields[0]])
        elif found and all(k.isdigit() and hasattr(f[k], "keys") and "data" in f[k] for k in found):
            # one group per sample, holding data (T, *spatial, C)
            groups = sorted(found)
            frames = lambda j: torch.movedim(torch.as_tensor(f[groups[j]]["data"][()]), -1, 1)  # noqa: E731
            n = len(groups)
        else:
            raise _wrong_layout(path, "pdebench", found, "a 'tensor' dataset (with 'nu' for Darcy), the fields "
                                f"{list(PDEBENCH_FIELDS)}, or one group per sample ('0000', ...) holding 'data'")
        return n, lambda j: split_frames(frames(j), input_steps, output_steps, path)
    if layout == "the_well":
        fields = _well_fields(f, path)
        n = len(fields[0][0])

        def well_frames(j: int) -> torch.Tensor:
            channels = []
            for data, order in fields:
                values = torch.as_tensor(data[j])  # (T, *spatial, *components)
                values = values.flatten(values.dim() - order) if order else values[..., None]
                channels.append(torch.movedim(values, -1, 1))  # (T, components, *spatial)
            return torch.cat(channels, dim=1)

        return n, lambda j: split_frames(well_frames(j), input_steps, output_steps, path)
    raise ValueError(f"hdf5_sampler: layout={layout!r} is not read sample by sample (pdebench, the_well, arrays)")


def _read_hdf5(path: Path, layout: str, input_steps: int, output_steps: int | None):
    import h5py

    with h5py.File(path, "r") as f:
        n, sample = hdf5_sampler(f, layout, path, input_steps, output_steps)
        pairs = [sample(j) for j in range(n)]
    if not pairs:
        raise DataFileError(f"data file {str(path)!r} holds no samples")
    return torch.stack([x for x, _ in pairs]), torch.stack([y for _, y in pairs])


def _pdebench(path: Path, input_steps: int, output_steps: int | None):
    return _read_hdf5(path, "pdebench", input_steps, output_steps)


def _neuralop(path: Path, input_steps: int, output_steps: int | None):
    if path.suffix.lower() not in (".pt", ".pth"):
        raise DataFileError(f"data file {str(path)!r}: the neuralop layout is a .pt dictionary")
    arrays = read_arrays(path, ["x", "y"])
    x, y = arrays["x"], arrays["y"]
    if len(x) != len(y):
        raise DataFileError(f"data file {str(path)!r}: 'x' has {len(x)} samples but 'y' has {len(y)}")
    return x, y  # (n, *spatial) or (n, c, *spatial): load_files reads them with data.dim


def _the_well(path: Path, input_steps: int, output_steps: int | None):
    return _read_hdf5(path, "the_well", input_steps, output_steps)


def _well_fields(f, path: Path) -> list[tuple]:
    """The Well's trajectory fields: ``(dataset, number of component axes)`` for each field that varies in time and
    across trajectories, scalars first, in file order."""
    found = list(f.keys())
    if not any(g in found for g in WELL_GROUPS):
        raise _wrong_layout(path, "the_well", found, f"the groups {list(WELL_GROUPS)}")
    n_dims = int(f.attrs.get("n_spatial_dims", 0))
    fields = []
    for order, group in enumerate(WELL_GROUPS):
        for name in f[group] if group in f else ():
            data = f[group][name]
            if not (data.attrs.get("time_varying", True) and data.attrs.get("sample_varying", True)):
                continue  # constant in time or across trajectories: not a field of the trajectory
            if n_dims and data.ndim != 2 + n_dims + order:
                raise DataFileError(f"data file {str(path)!r}: {group}/{name} has shape {data.shape}; expected "
                                    f"(trajectories, T, {n_dims} spatial dims, {order} component axes)")
            if not hasattr(data, "dtype") or data.ndim < 2 + order:
                raise DataFileError(f"data file {str(path)!r}: {group}/{name} is not a field array (trajectories, T, "
                                    f"*spatial{', *components' if order else ''})")
            fields.append((data, order))
    if not fields:
        raise _wrong_layout(path, "the_well", found, "time-varying fields in t0_fields / t1_fields / t2_fields")
    shapes = {(len(d), d.shape[1]) for d, _ in fields}
    if len(shapes) > 1:
        raise DataFileError(f"data file {str(path)!r}: the fields disagree on (trajectories, time steps): "
                            f"{sorted(shapes)}")
    return fields
