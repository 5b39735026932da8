"""Export a model for deployment: a ``torch.export`` program (``.pt2``) or an ONNX model (``.onnx``).

:func:`export` traces the model once with ``torch.export.export`` (non-strict), every input dimension marked
``torch.export.Dim.AUTO``: a dimension stays dynamic unless the model pins it. So the batch is always dynamic,
channels and feature widths are fixed by the weights, and spatial sizes stay dynamic wherever the model takes any
size, with the model's own limits recorded as guards that the exported program checks on every call:

* FNO, TFNO: batch and every spatial size. Eagerly ``N >= 2 m - 1`` (``n_modes = m``); the traced FFT slicing adds
  ``N >= 2 m + 1`` on leading dims and ``N >= 2 m`` on the last one.
* SpatioTemporalFNO: batch, X and Y (the time axis is ``out_steps``).
* MgNO: batch and spatial sizes divisible by ``2 ** (levels - 1)``.
* CNN, FrameCNN: batch (and time) and spatial sizes that survive the pooling.
* MLP, KAN: the leading dims.
* SphericalFNO: batch only (the spherical harmonic transform is built for the example's grid).
* EquivariantNet (invariant output): batch and number of points.

ONNX (``format="onnx"`` or a ``.onnx`` path; needs the ``onnx`` and ``onnxscript`` packages) is converted from the
same program by ``torch.onnx.export(..., dynamo=True)``. ONNX has no complex numbers, so no model with a spectral
convolution converts: FNO, TFNO, SpatioTemporalFNO and SphericalFNO (complex FFT coefficients contracted by a complex
einsum) are refused with an :class:`ExportError` before any tracing; export them to ``.pt2``. These convert, and
agree with onnxruntime (MLP and CNN in tests/test_export.py, the others checked by hand): MLP and KAN (any neuron
type), MgNO (dynamic batch and spatial sizes), CNN and FrameCNN (dynamic batch only: the converter turns adaptive
pooling into a pooling window fixed by the example's size, so :func:`export` fixes the other sizes of models with
adaptive pooling), EquivariantNet with ``output="invariant"`` (dynamic batch and number of points).

Not exportable at all: EquivariantNet with ``output="energy_forces"`` (its forces are an ``autograd.grad`` inside
``forward``, which ``torch.export`` cannot trace; refused with an :class:`ExportError`). CNN with
``conv="distance_l1"`` / ``"distance_lp"`` exports with its example's batch size fixed (the chunked distance computes
chunk sizes from the batch in Python); :func:`export` warns when a batch size gets fixed.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

FORMATS = {".pt2": "pt2", ".onnx": "onnx"}
_ADAPTIVE_POOLING = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
                     nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


class ExportError(RuntimeError):
    """A model that cannot be exported to the requested format, or whose exported program disagrees with it."""


def export(model: nn.Module, example_input: torch.Tensor | tuple[torch.Tensor, ...], path: str | Path, *,
           format: str | None = None, dynamic: bool = True, rtol: float = 1e-4,
           atol: float = 1e-5) -> torch.export.ExportedProgram:
    """Write ``model`` (in eval mode) to ``path`` as a ``torch.export`` program or an ONNX model.

    Parameters
    ----------
    model : nn.Module
        Any kernelnn model (or your own module); it is traced in eval mode and its mode is restored afterwards.
    example_input : Tensor or tuple of Tensor
        One input batch, e.g. ``(batch, channels, *spatial)`` for field models; the model is run on it eagerly
        first (so a wrong shape fails with the model's own message), then traced. A batch of 1 is traced as 2
        copies, or the batch would be fixed to 1.
    path : str or Path
        The file to write; its suffix (``.pt2`` or ``.onnx``) picks the format unless ``format`` is given.
    format : {"pt2", "onnx"}, optional
        ``"pt2"``: ``torch.export.save`` (load with ``torch.export.load(path).module()``); ``"onnx"``: an ONNX
        model (load with onnxruntime). See the module docstring for the models ONNX takes.
    dynamic : bool
        Mark every input dimension ``Dim.AUTO`` (dynamic unless the model pins it); False: only the example's
        shapes.
    rtol, atol : float
        Tolerances of the check that the exported program reproduces the eager model on the example.

    Returns
    -------
    torch.export.ExportedProgram
        The traced program (also for ONNX, which is converted from it); ``program.range_constraints`` lists the
        dynamic sizes' ranges.

    Raises
    ------
    ExportError
        The model cannot be traced or converted (for ONNX: any model with a spectral convolution), or the exported
        program disagrees with the eager model on the example.

    Example
    -------
    >>> model = FNO(1, 1, n_modes=(8, 8), hidden_channels=16)
    >>> program = kernelnn.export(model, torch.randn(4, 1, 32, 32), "fno.pt2")
    >>> torch.export.load("fno.pt2").module()(torch.randn(2, 1, 64, 48)).shape
    torch.Size([2, 1, 64, 48])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"export: model must be a torch.nn.Module, got {type(model).__name__}")
    args = (example_input,) if isinstance(example_input, torch.Tensor) else example_input
    if not isinstance(args, tuple | list) or not args or not all(isinstance(a, torch.Tensor) for a in args):
        raise TypeError(f"export: example_input must be a tensor or a tuple of tensors, got "
                        f"{type(example_input).__name__}")
    args = tuple(args)
    path = Path(path)
    fmt = _format(path, format)
    name = type(model).__name__
    _check_traceable(model)
    if fmt == "onnx":
        _check_onnx_support(model)
    was_training = model.training
    model.eval()
    try:
        # Eager first: clear errors for inputs the model refuses, and caches (Gaunt plans, SHT matrices) filled
        # with real tensors before tracing runs the same Python code on fake ones.
        with torch.no_grad():
            expected = model(*args)
        traced = tuple(torch.cat([a, a]) if dynamic and a.dim() > 0 and a.shape[0] == 1 else a for a in args)
        shapes = None
        if dynamic:
            # ONNX turns adaptive pooling into a pooling of fixed window (the example's): other sizes would come
            # out wrong, silently. Fix the non-batch sizes of such models.
            fixed = fmt == "onnx" and any(isinstance(m, _ADAPTIVE_POOLING) for m in model.modules())
            shapes = tuple({i: torch.export.Dim.AUTO for i in range(1 if fixed else a.dim())} for a in traced)
        try:
            # Traced without autograd: a deployed model does not train, and layers that switch grad off inside
            # (delta layers) would leave set_grad_enabled nodes that torch.export.load rejects.
            with torch.no_grad():
                program = torch.export.export(model, traced, dynamic_shapes=shapes)
        except Exception as err:  # the tracer raises many types; one message names the model and the cause
            raise ExportError(f"export: torch.export could not trace {name}: {_first_line(err)}") from err
        if dynamic:
            _warn_static_batch(program, name)
        _check_program(program, args, expected, name, rtol, atol)
    finally:
        model.train(was_training)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "pt2":
        torch.export.save(program, path)
        try:  # what was written must load: some graphs trace but do not deserialize
            _check_program(torch.export.load(path), args, expected, name, rtol, atol)
        except Exception as err:
            path.unlink(missing_ok=True)
            if isinstance(err, ExportError):
                raise
            raise ExportError(f"export: the program written for {name} to {str(path)!r} does not load back: "
                              f"{_first_line(err)}") from err
    else:
        try:
            onnx_program = torch.onnx.export(program, traced, dynamo=True, verbose=False)
        except Exception as err:
            raise ExportError(f"export: {name} does not convert to ONNX: {_onnx_cause(err)}; export it to .pt2 "
                              "instead") from err
        onnx_program.save(str(path))
    return program


def _check_program(program: torch.export.ExportedProgram, args: tuple, expected, name: str, rtol: float,
                   atol: float) -> None:
    with torch.no_grad():
        got = program.module()(*args)
    try:
        torch.testing.assert_close(got, expected, rtol=rtol, atol=atol)
    except AssertionError as err:
        raise ExportError(f"export: the exported {name} disagrees with the eager model on the example input: "
                          f"{_first_line(err)}") from None


def _warn_static_batch(program: torch.export.ExportedProgram, name: str) -> None:
    """Warn when tracing fixed a batch size: the model computes something from it in Python."""
    user_inputs = set(program.graph_signature.user_inputs)
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            shape = node.meta["val"].shape
            if len(shape) and isinstance(shape[0], int):
                warnings.warn(f"export: {name} fixes the batch size of its input {node.name!r} to {shape[0]} in the "
                              "exported program (the model computes with it in Python); only that batch size will "
                              "run", stacklevel=3)


def _format(path: Path, format: str | None) -> str:
    if format is None:
        if path.suffix not in FORMATS:
            raise ValueError(f"export: cannot tell the format from path {str(path)!r}: use a suffix in "
                             f"{sorted(FORMATS)} or pass format='pt2' / 'onnx'")
        return FORMATS[path.suffix]
    if format not in FORMATS.values():
        raise ValueError(f"export: format={format!r} is not one of {sorted(FORMATS.values())}")
    return format


def _check_traceable(model: nn.Module) -> None:
    from kernelnn.models.equivariant import EquivariantNet

    for m in model.modules():
        if isinstance(m, EquivariantNet) and m.output == "energy_forces":
            raise ExportError(f"export: {type(model).__name__} cannot be exported: EquivariantNet(output="
                              "'energy_forces') computes forces by torch.autograd.grad inside forward, which "
                              "torch.export cannot trace; export a net with output='invariant', or use the model "
                              "from Python (kernelnn.training.load_model)")


def _check_onnx_support(model: nn.Module) -> None:
    """Refuse models ONNX cannot express before tracing them, and a missing exporter before any work."""
    from kernelnn.layers.spectral import SpectralConv
    from kernelnn.layers.spherical import SphericalConv

    spectral = sorted({type(m).__name__ for m in model.modules() if isinstance(m, SpectralConv | SphericalConv)})
    if spectral:
        raise ExportError(f"export: {type(model).__name__} cannot be exported to ONNX: its {', '.join(spectral)} "
                          "layers multiply complex Fourier / spherical-harmonic coefficients (a complex einsum), and "
                          "ONNX has no complex numbers; export it to .pt2 (torch.export) instead")
    for package in ("onnx", "onnxscript"):
        try:
            __import__(package)
        except ImportError as err:
            raise ImportError(f"export: ONNX export needs the {package!r} package: pip install onnx onnxscript") \
                from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _onnx_cause(err: BaseException) -> str:
    """The root cause in the ONNX exporter's long report, e.g. 'No ONNX function found for aten.einsum ...'."""
    while err.__cause__ is not None:
        err = err.__cause__
    return f"{type(err).__name__}: {_first_line(err)}"
