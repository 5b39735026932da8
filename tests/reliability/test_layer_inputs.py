"""Property test of the layer API's edges (DESIGN section 3, "Validation"): every entry of every registry in
kernelnn.registry is built from its own example (:meth:`Registry.example`) and fed random variations of the
example input: other batch sizes (0 and 1 included), a wrong number of dims, other sizes along every non-batch dim
(a wrong channel / feature count among them), other dtypes, non-tensors, and NaN / inf values.

Each call either returns a tensor of the right shape or raises ``ValueError`` / ``TypeError`` whose message names
the module's class (``KernelConv2d: ...``, ``FNO: ...``). Anything else (a ``RuntimeError`` from torch's
internals, an ``IndexError``, an MKL error, an ``AttributeError`` on a list) or an error that does not name the
module fails.

Dtypes expected to work (the layer returns a floating tensor of the example's output shape):

- float32, always (the examples);
- float64 on a module converted with ``.to(torch.float64)`` (``assert_gradcheck`` runs layers this way);
- float16 / bfloat16 on a converted module: work, or a clear ``TypeError`` (e.g. ``RBFLayer``, whose Gaussian of
  a difference of large terms needs float32);
- another floating dtype than the parameters' (a float32 module): work, or a clear ``TypeError`` saying how to
  convert (under ``torch.autocast`` layers take the autocast dtype; that is tested in tests/test_registries.py);
- int64, bool, complex64 and non-tensors (a list, ``None``, a number, a NumPy array): a clear ``TypeError``.

"Right shape": the example's output shape with the batch size of the input; for element-wise modules (the
activations: ``module.elementwise``) the input's shape, whatever it is; for point-wise (features-last)
modules, whose example output keeps every dim but the last (which changes), ``input.shape[:-1] + (out_features,)``
for any number of leading dims. torch's own layers are registered with kernelnn's check in front
(kernelnn/layers/checked.py), so they are held to the same rule. A module with ``input_bounds = (low, high)`` (a
field's coordinate domain) gets its random inputs from that range. Nothing here lists entry names.
``gaunt_tensor_product``, a function in no registry, gets its own dtype / empty-batch / 0-d tests at the end.
The examples are derandomized, so CI runs the same cases every time; the file takes about 20-40 s on one thread.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kernelnn.layers  # noqa: F401  (registers the layer entries)
import kernelnn.models  # noqa: F401  (registers the models)
from kernelnn import registry
from kernelnn.layers.gaunt import METHODS, gaunt_tensor_product
from kernelnn.registry import Registry

REGISTRIES = {name: value for name, value in vars(registry).items() if isinstance(value, Registry)}
ENTRIES = [pytest.param(kind, name, id=f"{kind}-{name}") for kind, reg in REGISTRIES.items() for name in reg.names()]

SETTINGS = settings(max_examples=10, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])
SEEDS = st.integers(0, 2**16)
HALF = (torch.float16, torch.bfloat16)
NOT_FLOAT = (torch.int64, torch.bool, torch.complex64)


@functools.cache
def _example(kind: str, name: str):
    torch.manual_seed(0)
    module, inputs = REGISTRIES[kind].example(name)
    with torch.no_grad():
        reference = module(*inputs)
    return module, inputs, reference


def example(kind: str, name: str):
    """``(module, inputs, reference output)`` of a registry entry: a fresh copy of one cached example."""
    module, inputs, reference = _example(kind, name)
    return copy.deepcopy(module), inputs, reference


def point_wise(x: torch.Tensor, reference: torch.Tensor, module=None) -> bool:
    """Whether the module maps ``(..., in) -> (..., out)``: its example output keeps every dim but the last, which
    changes (fields ``(batch, C, *spatial)`` that keep their shape are not point-wise), or the module says so
    (``point_wise = True``: features last with as many out as in, e.g. an identity encoding)."""
    if getattr(module, "point_wise", False):
        return True
    return reference.dim() == x.dim() and reference.shape[:-1] == x.shape[:-1] and reference.shape[-1] != x.shape[-1]


def call(module, x, *rest):
    """``module(x, *rest)``, or the ``ValueError``/``TypeError`` it raised (which must name the module); any
    other exception propagates and fails the test."""
    name = type(module).__name__
    try:
        out = module(x, *rest)
    except (TypeError, ValueError) as error:
        assert name in str(error), f"{name}: the {type(error).__name__} does not name the module: {error}"
        return error
    assert isinstance(out, torch.Tensor), f"{name} returned a {type(out).__name__}"
    return out


def random_like(shape, dtype, seed: int, module=None) -> torch.Tensor:
    """Standard normal values, or uniform in the module's ``input_bounds`` (a field's coordinates have a domain;
    values outside it are refused, which is tested by the module's own tests)."""
    generator = torch.Generator().manual_seed(seed)
    bounds = getattr(module, "input_bounds", None)
    if bounds is None:
        return torch.randn(tuple(shape), generator=generator).to(dtype)
    low, high = bounds
    return (low + (high - low) * torch.rand(tuple(shape), generator=generator)).to(dtype)


@pytest.mark.parametrize(("kind", "name"), ENTRIES)
@SETTINGS
@given(batch=st.integers(0, 4), seed=SEEDS)
def test_any_batch_size_gives_that_many_outputs(kind, name, batch, seed):
    module, (x, *rest), reference = example(kind, name)
    x = random_like((batch, *x.shape[1:]), x.dtype, seed, module)
    rest = [r[:1].expand(batch, *r.shape[1:]) if r.dim() else r for r in rest]
    out = call(module, x, *rest)
    if isinstance(out, torch.Tensor):
        assert out.shape == (batch, *reference.shape[1:]), f"{type(module).__name__}: batch {batch} -> {out.shape}"
    else:  # an empty batch may be refused, clearly; any other batch size must work
        assert batch == 0 and isinstance(out, ValueError), f"{type(module).__name__}: batch {batch}: {out}"


@pytest.mark.parametrize(("kind", "name"), ENTRIES)
@SETTINGS
@given(change=st.sampled_from(["insert", "remove", "scalar"]), where=st.integers(0, 5), size=st.integers(1, 4),
       seed=SEEDS)
def test_a_wrong_number_of_dims_is_refused_or_point_wise(kind, name, change, where, size, seed):
    module, (x, *rest), reference = example(kind, name)
    if change == "insert":
        shape = list(x.shape)
        shape.insert(where % (x.dim() + 1), size)
    elif change == "remove":
        shape = [n for i, n in enumerate(x.shape) if i != where % x.dim()]
    else:
        shape = []
    bad = random_like(shape, x.dtype, seed, module)
    out = call(module, bad, *rest)
    if not isinstance(out, torch.Tensor):
        return
    label = f"{type(module).__name__}: input {tuple(bad.shape)} (example {tuple(x.shape)})"
    if getattr(module, "elementwise", False):
        assert out.shape == bad.shape, f"{label} -> {out.shape}"
    elif point_wise(x, reference, module):
        assert bad.dim() >= 1 and out.shape == (*bad.shape[:-1], reference.shape[-1]), f"{label} -> {out.shape}"
    else:  # channels-first layers may take one unbatched sample, as nn.ConvNd does
        assert bad.dim() == x.dim() - 1 and out.dim() == reference.dim() - 1, f"{label} -> {out.shape}"


@pytest.mark.parametrize(("kind", "name"), ENTRIES)
@SETTINGS
@given(dim=st.integers(1, 5), delta=st.sampled_from([-2, -1, 1, 2, 5]), seed=SEEDS)
def test_other_sizes_along_each_dim_work_or_are_refused(kind, name, dim, delta, seed):
    # Channel / feature counts, spatial sizes, point counts, time steps: which of them a module may take is its
    # own business, but it answers with an output or a clear error, never torch's shape error.
    module, (x, *rest), reference = example(kind, name)
    if x.dim() < 2:
        return
    d = 1 + (dim - 1) % (x.dim() - 1)
    shape = list(x.shape)
    shape[d] = max(1, shape[d] + delta)
    if shape[d] == x.shape[d]:
        return
    bad = random_like(shape, x.dtype, seed, module)
    out = call(module, bad, *rest)
    label = f"{type(module).__name__}: input {tuple(bad.shape)} (example {tuple(x.shape)})"
    if point_wise(x, reference, module) and d == x.dim() - 1:
        assert isinstance(out, ValueError), f"{label}: a wrong feature count must raise ValueError, got {out!r}"
    elif getattr(module, "elementwise", False):
        assert isinstance(out, torch.Tensor) and out.shape == bad.shape, f"{label} -> {out!r}"
    elif isinstance(out, torch.Tensor):
        assert out.dim() == reference.dim() and out.shape[0] == x.shape[0], f"{label} -> {tuple(out.shape)}"


@pytest.mark.parametrize(("kind", "name"), ENTRIES)
@SETTINGS
@given(seed=SEEDS)
def test_dtypes_work_or_raise_a_clear_type_error(kind, name, seed):
    module, (x, *rest), reference = example(kind, name)
    values = random_like(x.shape, torch.float64, seed, module)
    float64 = call(copy.deepcopy(module).to(torch.float64), values, *rest)  # gradcheck's setting: must work
    assert isinstance(float64, torch.Tensor), f"{type(module).__name__} in float64: {float64}"
    assert float64.dtype == torch.float64 and float64.shape == reference.shape
    for dtype in HALF:  # a half module: works or refuses clearly
        out = call(copy.deepcopy(module).to(dtype), values.to(dtype), *rest)
        assert isinstance(out, torch.Tensor | TypeError), f"{type(module).__name__} in {dtype}: {out!r}"
        if isinstance(out, torch.Tensor):
            assert out.is_floating_point() and out.shape == reference.shape
    for dtype in (torch.float64, *HALF):  # a float32 module and an input of another float dtype
        out = call(module, values.to(dtype), *rest)
        assert isinstance(out, torch.Tensor | TypeError), f"{type(module).__name__}, {dtype} input: {out!r}"
        if isinstance(out, torch.Tensor):
            assert out.is_floating_point() and out.shape == reference.shape
    for dtype in NOT_FLOAT:
        out = call(module, (values * 3).to(dtype), *rest)
        assert isinstance(out, TypeError), f"{type(module).__name__}: a {dtype} input must raise TypeError, got {out!r}"


@pytest.mark.parametrize(("kind", "name"), ENTRIES)
@SETTINGS
@given(what=st.sampled_from(["list", "none", "number", "numpy", "tuple"]))
def test_non_tensors_raise_a_clear_type_error(kind, name, what):
    module, (x, *rest), _ = example(kind, name)
    bad = {"list": x.tolist(), "none": None, "number": 1.0, "numpy": x.numpy(), "tuple": (x,)}[what]
    out = call(module, bad, *rest)
    assert isinstance(out, TypeError), f"{type(module).__name__}: a {what} input must raise TypeError, got {out!r}"


@pytest.mark.parametrize(("kind", "name"), ENTRIES)
@SETTINGS
@given(value=st.sampled_from([math.nan, math.inf, -math.inf]), count=st.integers(1, 3), seed=SEEDS)
def test_nan_and_inf_values_give_an_output_of_the_right_shape(kind, name, value, count, seed):
    module, (x, *rest), reference = example(kind, name)
    bad = x.clone()
    where = np.random.default_rng(seed).choice(bad.numel(), size=min(count, bad.numel()), replace=False)
    bad.view(-1)[torch.as_tensor(where)] = value
    out = call(module, bad, *rest)
    if isinstance(out, torch.Tensor):
        assert out.shape == reference.shape, f"{type(module).__name__}: {tuple(out.shape)}"
    else:  # refusing non-finite input is allowed, as a ValueError
        assert isinstance(out, ValueError), f"{type(module).__name__}: {out!r}"


# ------------------------------------------------------------------------------------------------ Gaunt product
# gaunt_tensor_product is a function, in no registry; its docstring promises any float dtype for every method.
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32], ids=["fp16", "bf16", "fp32"])
@settings(SETTINGS, max_examples=4)
@given(L1=st.integers(0, 2), L2=st.integers(0, 2), L_out=st.integers(0, 3), batch=st.integers(0, 3), seed=SEEDS)
def test_gaunt_tensor_product_takes_every_float_dtype_and_empty_batches(method, dtype, L1, L2, L_out, batch, seed):
    x = random_like((batch, (L1 + 1) ** 2), torch.float64, seed)
    y = random_like((batch, (L2 + 1) ** 2), torch.float64, seed + 1)
    out = gaunt_tensor_product(x.to(dtype), y.to(dtype), L_out, method=method)
    assert out.dtype == dtype and out.shape == (batch, (L_out + 1) ** 2)
    expected = gaunt_tensor_product(x, y, L_out, method=method)
    tolerance = 1e-4 if dtype == torch.float32 else 0.1
    torch.testing.assert_close(out.double(), expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", [torch.tensor(1.0), [1.0], None, torch.ones(2, 4, dtype=torch.int64),
                                 torch.ones(2, 4, dtype=torch.complex64)],
                         ids=["0-d", "list", "None", "int", "complex"])
def test_gaunt_tensor_product_refuses_non_float_and_0d_inputs_by_name(method, bad):
    """A wrong type or dtype is a TypeError, a wrong shape (0-d) a ValueError."""
    expected = ValueError if isinstance(bad, torch.Tensor) and bad.dim() == 0 else TypeError
    with pytest.raises(expected, match="gaunt_tensor_product: x"):
        gaunt_tensor_product(bad, torch.randn(2, 9), 2, method=method)
