"""Run a trained checkpoint on a file of inputs: ``python -m kernelnn.predict checkpoint=PATH input=FILE output=FILE``.

Options are Hydra-style ``key=value`` overrides (parsed by OmegaConf, see :class:`PredictOptions`)::

    python -m kernelnn.predict checkpoint=outputs/darcy-fno/<run>/checkpoints/best.pt \\
        input=coefficients.npz output=solutions.h5 batch_size=64

The input file is read like ``data=files`` reads its data (``.pt`` dict of tensors, ``.npz``, ``.h5`` / ``.hdf5``,
:func:`kernelnn.data.files.read_arrays`): the array ``input_key`` (default: ``x`` if the file has it, else its first
array), samples along the first axis, in the shape the model takes (``(n, channels, *spatial)`` for fields; ``(n,
*spatial)`` is read as one channel, as ``data=files`` does), at any resolution the model allows. The model comes back
with its data normalisation from :func:`kernelnn.training.load_model`, so inputs are raw data. Predictions are the
model's outputs (logits for classifiers), written under the key ``prediction`` in the format of the output suffix
(``.npz``, ``.pt`` or ``.h5`` / ``.hdf5``).

Errors in what was asked (a missing file, an unknown key or option, an input the model does not take, an unknown
suffix) print one line and exit with status 2.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

OUTPUT_SUFFIXES = (".npz", ".pt", ".h5", ".hdf5")
USAGE = "usage: python -m kernelnn.predict checkpoint=PATH input=FILE output=FILE [key=value ...]"


@dataclass
class PredictOptions:
    """Options of ``python -m kernelnn.predict``.

    Attributes
    ----------
    checkpoint : str
        A kernelnn checkpoint (``best.pt`` / ``last.pt`` of a training run).
    input : str
        ``.pt`` / ``.npz`` / ``.h5`` file holding the inputs.
    output : str
        Where to write the predictions; the suffix picks the format (``.npz``, ``.pt``, ``.h5``).
    input_key : str, optional
        The array to read; default ``x`` if the file has it, else its first array.
    batch_size : int
        Samples per forward pass.
    device : str
        ``auto`` (the GPU when there is one, else the CPU), ``cpu``, ``cuda``, ``cuda:1``, ...
    progress_bar : bool
        A tqdm bar over the batches (on stderr).
    """

    checkpoint: str = "???"
    input: str = "???"
    output: str = "???"
    input_key: str | None = None
    batch_size: int = 32
    device: str = "auto"
    progress_bar: bool = True


class PredictError(ValueError):
    """Something the user asked for cannot be done; the message is one line."""


def parse_options(argv: Sequence[str]) -> PredictOptions:
    """``key=value`` overrides -> :class:`PredictOptions`, with one-line errors for anything wrong."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    valid = [f.name for f in fields(PredictOptions)]
    for arg in argv:
        if "=" not in arg or arg.startswith("="):
            raise PredictError(f"argument {arg!r} is not key=value; options: {', '.join(valid)}")
        key = arg.split("=", 1)[0].lstrip("+")
        if key not in valid:
            raise PredictError(f"unknown option {key!r}; options: {', '.join(valid)}")
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(PredictOptions),
                              OmegaConf.from_dotlist([a.lstrip("+") for a in argv]))
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            raise PredictError(f"missing {', '.join(f'{k}=...' for k in missing)}; {USAGE}")
        opts = PredictOptions(**OmegaConf.to_container(cfg))
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        raise PredictError(f"{key + ': ' if key else ''}{str(err).splitlines()[0]}") from err
    if opts.batch_size < 1:
        raise PredictError(f"batch_size={opts.batch_size} must be a positive int")
    if Path(opts.output).suffix.lower() not in OUTPUT_SUFFIXES:
        raise PredictError(f"output={opts.output!r}: unknown suffix {Path(opts.output).suffix!r}; supported: "
                           f"{', '.join(OUTPUT_SUFFIXES)}")
    return opts


def select_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as err:
        raise PredictError(f"device={device!r} is not a device: {err}") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise PredictError(f"device={device!r}, but CUDA is not available here")
    return chosen


def read_input(path: str, key: str | None) -> torch.Tensor:
    """The input array of ``path`` (``key``, else ``x``, else the file's first array)."""
    from kernelnn.data.files import array_keys, read_arrays

    if key is None:
        keys = array_keys(path)
        if not keys:
            raise PredictError(f"input file {path!r} holds no arrays")
        key = "x" if "x" in keys else keys[0]
    return read_arrays(path, [key])[key]


def fit_to_model(model: nn.Module, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``x`` as the model takes it: in the model's float dtype, and ``(n, *spatial)`` as one channel when the model
    refuses it as is. The model's own error message when neither fits."""
    if x.dim() == 0 or len(x) == 0:
        raise PredictError(f"the input holds no samples (shape {tuple(x.shape)})")
    parameter = next(iter(model.parameters()), None)
    dtype = parameter.dtype if parameter is not None else torch.get_default_dtype()
    x = x.to(dtype)
    first_error = None
    for candidate in (x, x.unsqueeze(1)):
        try:
            with torch.no_grad():
                model(candidate[:1].to(device))  # one sample: the model's own shape checks, before the long run
        except (ValueError, TypeError, RuntimeError) as err:
            first_error = first_error or err
            continue
        return candidate
    message = str(first_error).strip().splitlines()[0] if str(first_error).strip() else type(first_error).__name__
    raise PredictError(f"the model does not take the input of shape {tuple(x.shape)}: {message}")


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 32, device: str | torch.device = "cpu",
            progress_bar: bool = False) -> torch.Tensor:
    """``model`` applied to ``x`` in batches of ``batch_size`` along the first axis, on ``device``.

    Returns the outputs concatenated on the CPU, ``(n, *output_shape)``.
    """
    from tqdm import tqdm

    device = torch.device(device)
    outputs = []
    starts = range(0, len(x), batch_size)
    for start in tqdm(starts, desc="predict", unit="batch", disable=not progress_bar, file=sys.stderr):
        with torch.no_grad():
            outputs.append(model(x[start: start + batch_size].to(device)).cpu())
    return torch.cat(outputs)


def write_predictions(path: str, prediction: torch.Tensor) -> None:
    """Write ``prediction`` under the key ``prediction`` by the suffix of ``path``; the file appears whole or not
    at all (temporary file, then ``os.replace``)."""
    target = Path(path).expanduser()
    suffix = target.suffix.lower()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    try:
        if suffix == ".pt":
            torch.save({"prediction": prediction}, tmp)
        elif suffix == ".npz":
            np.savez(tmp, prediction=prediction.numpy())
        else:
            import h5py

            with h5py.File(tmp, "w") as f:
                f.create_dataset("prediction", data=prediction.numpy())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def run(opts: PredictOptions) -> Path:
    """Load the checkpoint, predict every sample of the input file, write the output file; returns its path."""
    from kernelnn.data.files import DataFileError
    from kernelnn.training import load_model

    device = select_device(opts.device)
    if not Path(opts.checkpoint).expanduser().is_file():
        raise PredictError(f"checkpoint={opts.checkpoint!r} does not exist")
    try:
        x = read_input(opts.input, opts.input_key)
    except DataFileError as err:
        raise PredictError(f"input: {err}") from err
    try:
        model = load_model(opts.checkpoint, map_location=device)
    except (ValueError, KeyError, RuntimeError) as err:
        raise PredictError(f"checkpoint={opts.checkpoint!r} could not be loaded: {err}") from err
    x = fit_to_model(model, x, device)
    prediction = predict(model, x, opts.batch_size, device, opts.progress_bar)
    write_predictions(opts.output, prediction)
    return Path(opts.output)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help", "help") for a in argv):
        print(USAGE)
        print(__doc__.split("Options are")[0].strip())
        print("Options (defaults): " + ", ".join(f"{f.name}={f.default}" for f in fields(PredictOptions)))
        return 0
    try:
        opts = parse_options(argv)
        path = run(opts)
    except PredictError as err:
        print(f"kernelnn.predict: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    print(f"Wrote predictions to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
