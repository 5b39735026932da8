"""Input checks shared by the layers' and models' ``check_input``: clear ``TypeError``\\ s naming the owner.

A layer computes in the dtype of its parameters. Outside ``torch.autocast`` an input of another floating dtype is
refused with a ``TypeError`` that says how to convert, instead of torch's bare "mat1 and mat2 must have the same
dtype" from deep inside the layer; under autocast the layer's own autocast handling decides.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def check_float_tensor(x: object, owner: str, argument: str = "input") -> None:
    """Raise ``TypeError`` naming ``owner`` unless ``x`` is a floating-point tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{owner}: {argument} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{owner}: {argument} dtype must be floating point (float32, float64, float16, bfloat16), "
                        f"got {x.dtype}")


def parameter_dtype(module: nn.Module) -> torch.dtype | None:
    """The dtype of ``module``'s first floating parameter or buffer, ``None`` if it has none."""
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            return t.dtype
    return None


def check_dtype_matches(x: torch.Tensor, module: nn.Module, owner: str, argument: str = "input") -> None:
    """Raise ``TypeError`` naming ``owner`` if ``x`` is not in the dtype of ``module``'s parameters (autocast off)."""
    if torch.is_autocast_enabled(x.device.type):
        return
    dtype = parameter_dtype(module)
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{owner}: {argument} dtype {x.dtype} does not match the parameters' dtype {dtype}; convert "
                        f"the input (x.to({dtype})) or the module (module.to({x.dtype})), or run under torch.autocast")


def check_float_input(x: object, module: nn.Module, owner: str, argument: str = "input") -> None:
    """:func:`check_float_tensor` then :func:`check_dtype_matches`."""
    check_float_tensor(x, owner, argument)
    check_dtype_matches(x, module, owner, argument)  # type: ignore[arg-type]


def check_positive_ints(owner: str, **values: object) -> None:
    """Raise ``ValueError`` naming ``owner`` and the argument unless every value is an int >= 1 (not a bool)."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}: {name}={value!r} must be a positive int")


def check_interval(owner: str, name: str, value: object) -> tuple[float, float]:
    """``value`` as a finite ``(low, high)`` with ``low < high``, or a ``ValueError`` naming ``owner`` and ``name``."""
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        shown = tuple(value) if isinstance(value, (list, tuple)) else value
        raise ValueError(f"{owner}: {name}={shown!r} must be (low, high) with finite low < high")
    return low, high
