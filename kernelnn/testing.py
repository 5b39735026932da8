r"""Property checks for layers and models, usable from any test framework (no pytest needed).

Each ``assert_*`` function returns ``None`` when the property holds and raises ``AssertionError`` saying what
differed, where, and by how much when it does not; wrong usage (inputs that do not match the irreps, ...)
raises ``ValueError``. They are the checks kernelnn's own tests run on every layer (DESIGN.md section 3), so a
layer you write yourself can be held to the same standard::

    from kernelnn.testing import assert_autocast, assert_compiles, assert_gradcheck, assert_state_dict_round_trip

    layer, x = MyLayer(4, 8), torch.randn(2, 4)
    assert_gradcheck(layer, x)                          # float64 gradcheck, input and parameters
    assert_state_dict_round_trip(lambda: MyLayer(4, 8), x)
    assert_compiles(layer, x)                           # torch.compile == eager, forward and backward
    assert_autocast(layer, x)                           # bf16 autocast on CPU: finite, right dtype, close

Equivariance under O(3), rotations *and* rotoinversions, of features in e3nn's layout
(:func:`assert_equivariant`; irreps written as in e3nn, ``"4x0e + 2x1o"``)::

    assert_equivariant(lambda v: v.norm(dim=-1, keepdim=True), "1o", "0e")
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import pickle
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

__all__ = [
    "assert_autocast", "assert_compiles", "assert_equivariant", "assert_gradcheck", "assert_state_dict_round_trip",
    "default_dtype", "equivariance_error", "harmonic_irreps", "irreps_dim", "parse_irreps", "random_rotation",
    "representation",
]


# ------------------------------------------------------------------------------------------------ helpers
def _name(fn: Any) -> str:
    return type(fn).__name__ if isinstance(fn, nn.Module) else getattr(fn, "__qualname__", repr(fn))


def _is_float(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.is_floating_point()


def _outputs(out: Any) -> tuple[torch.Tensor, ...]:
    """A module's result as a tuple of tensors (a tensor, a tuple / list of them, or a dict of named ones, in its
    key order)."""
    if isinstance(out, torch.Tensor):
        return (out,)
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, tuple | list) and all(isinstance(o, torch.Tensor) for o in out):
        return tuple(out)
    raise ValueError(f"kernelnn.testing: expected a tensor, a tuple or a dict of tensors as output, got "
                     f"{type(out).__name__}")


def _leaves(inputs: Sequence[Any]) -> tuple[Any, ...]:
    """Detached copies of the inputs, floating ones requiring grad."""
    return tuple(t.detach().clone().requires_grad_() if _is_float(t) else t for t in inputs)


def _compare(what: str, actual: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> str | None:
    """A sentence describing how ``actual`` differs from ``expected``, or ``None`` if they are close."""
    if actual.shape != expected.shape:
        return f"{what}: shape {tuple(actual.shape)} instead of {tuple(expected.shape)}"
    if actual.dtype != expected.dtype:
        return f"{what}: dtype {actual.dtype} instead of {expected.dtype}"
    a, e = actual.detach(), expected.detach()
    # torch's own rule, |a - e| <= atol + rtol |e| elementwise (NaN only matches NaN).
    close = torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    if bool(close.all()):
        return None
    excess = torch.where(close, torch.zeros_like(a, dtype=torch.float64),
                         torch.nan_to_num((a.double() - e.double()).abs(), nan=math.inf))
    flat = int(excess.reshape(-1).argmax())
    index = [int(i) for i in torch.unravel_index(torch.tensor(flat), a.shape)] if a.dim() else []
    return (f"{what}: {int((~close).sum())} of {close.numel()} elements differ (rtol={rtol:g}, atol={atol:g}); the "
            f"largest difference is {float(excess.reshape(-1)[flat]):.3g} at [{', '.join(map(str, index))}]: "
            f"{float(a.reshape(-1)[flat]):.6g} instead of {float(e.reshape(-1)[flat]):.6g}")


# ------------------------------------------------------------------------------------------------ gradcheck
def assert_gradcheck(module: nn.Module | Callable, *inputs: Any, **gradcheck_kwargs: Any) -> None:
    """``torch.autograd.gradcheck`` of ``module(*inputs)`` in float64, in the inputs and every parameter at once.

    Parameters are passed to the module as variables through :func:`torch.func.functional_call`, so a wrong
    gradient of any parameter is found, not only of the inputs. A module that is not float64 is checked on a
    float64 copy (``module`` itself is left alone); floating inputs are cast to float64, other inputs (masks,
    indices) are passed unchanged. Frozen parameters (``requires_grad=False``) are not checked.

    Parameters
    ----------
    module : nn.Module or callable
        The layer (a plain function works too: then only the inputs are checked).
    *inputs
        Its positional inputs.
    **gradcheck_kwargs
        Passed to :func:`torch.autograd.gradcheck` (``eps``, ``atol``, ``rtol``, ``fast_mode``, ...).

    Raises
    ------
    AssertionError
        Naming the output and the input or parameter whose analytical and numerical Jacobians differ.

    Example
    -------
    >>> assert_gradcheck(nn.Linear(3, 2), torch.randn(4, 3))
    """
    from torch.autograd.gradcheck import GradcheckError
    from torch.func import functional_call

    if isinstance(module, nn.Module):
        tensors = [*module.parameters(), *module.buffers()]
        if any(t.is_floating_point() and t.dtype != torch.float64 for t in tensors):
            module = copy.deepcopy(module).to(torch.float64)
        params = {n: p.detach().clone().requires_grad_() for n, p in module.named_parameters() if p.requires_grad}
    else:
        params = {}
    inputs64 = tuple(t.detach().to(torch.float64).requires_grad_() if _is_float(t) else t for t in inputs)
    names, n_in = list(params), len(inputs64)
    if not params and not any(_is_float(t) for t in inputs64):
        raise ValueError(f"assert_gradcheck: {_name(module)} has no parameter and no floating input to check")

    def f(*args):
        if not names:
            return module(*args)
        return functional_call(module, dict(zip(names, args[n_in:], strict=True)), args[:n_in])

    # gradcheck numbers the tensors that require grad, in order: say which is which.
    labels = [f"input {i}" for i, t in enumerate(inputs64) if _is_float(t)] + [f"parameter {n!r}" for n in names]
    legend = "; ".join(f"gradcheck's input {i} = {label}" for i, label in enumerate(labels))
    kwargs = {"raise_exception": True, **gradcheck_kwargs}
    try:
        ok = torch.autograd.gradcheck(f, (*inputs64, *params.values()), **kwargs)
    except GradcheckError as error:
        raise AssertionError(f"assert_gradcheck: {_name(module)}: analytical and numerical gradients differ.\n"
                             f"{legend}\n{error}") from None
    if not ok:
        raise AssertionError(f"assert_gradcheck: {_name(module)}: gradcheck failed ({legend})")


# ------------------------------------------------------------------------------------------------ state_dict
def assert_state_dict_round_trip(make_module: Callable[[], nn.Module], *inputs: Any, rtol: float = 0.0,
                                 atol: float = 0.0) -> None:
    """A module loaded from another one's saved ``state_dict`` computes the same outputs.

    Two modules come from ``make_module()``; the first one's ``state_dict`` is saved with :func:`torch.save` and
    loaded with ``torch.load(weights_only=True)`` (only tensors and plain containers: what a checkpoint of
    untrusted origin may hold) into the second, strictly; both then run in eval mode on ``inputs``. State that
    is not in the ``state_dict`` (a random buffer registered ``persistent=False`` and not rebuilt, a tensor kept
    as a plain attribute) shows up as different outputs, as long as ``make_module`` draws it at random.

    Parameters
    ----------
    make_module : callable
        Builds a fresh module (with random initialisation: two calls must give different modules).
    *inputs
        Positional inputs of the module.
    rtol, atol : float
        Allowed difference (default: identical).

    Example
    -------
    >>> assert_state_dict_round_trip(lambda: nn.Linear(3, 2), torch.randn(4, 3))
    """
    source, target = make_module(), make_module()
    name = type(source).__name__
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    try:
        state = torch.load(buffer, weights_only=True)
    except pickle.UnpicklingError as error:
        raise AssertionError(f"assert_state_dict_round_trip: {name}'s state_dict does not load with "
                             f"torch.load(weights_only=True): it holds objects other than tensors.\n{error}") from None
    try:
        target.load_state_dict(state)
    except RuntimeError as error:
        raise AssertionError(f"assert_state_dict_round_trip: a new {name} cannot load the saved state_dict "
                             f"strictly:\n{error}") from None
    source.eval()
    target.eval()
    expected, actual = _outputs(source(*inputs)), _outputs(target(*inputs))
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        problem = _compare(f"output {i}", a, e, rtol, atol)
        if problem:
            raise AssertionError(f"assert_state_dict_round_trip: {name} loaded from the saved state_dict differs "
                                 f"from the original; some state is not in the state_dict (a buffer registered "
                                 f"persistent=False that is not rebuilt, or a plain tensor attribute).\n{problem}")


# ------------------------------------------------------------------------------------------------ compile
def _gradients(fn: Callable, inputs: tuple[Any, ...], params: dict[str, torch.Tensor], seed: int):
    """Outputs of ``fn(*inputs)`` and the gradients of a fixed random projection of them: ``(outputs, grads)``
    with ``grads`` a dict from 'input i' / 'parameter name' to the gradient (``None`` if unused)."""
    outputs = _outputs(fn(*inputs))
    targets = {f"input {i}": t for i, t in enumerate(inputs) if _is_float(t) and t.requires_grad}
    targets.update({f"parameter {n!r}": p for n, p in params.items()})
    differentiable = [o for o in outputs if o.requires_grad]
    if not targets or not differentiable:
        return outputs, {}
    g = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(o)).sum() for o in differentiable)
    grads = torch.autograd.grad(loss, list(targets.values()), allow_unused=True)
    return outputs, dict(zip(targets, grads, strict=True))


def assert_compiles(module: nn.Module | Callable, *inputs: Any, fullgraph: bool = False, rtol: float = 1e-4,
                    atol: float = 1e-5, backward: bool = True, backend: str = "inductor",
                    **compile_kwargs: Any) -> None:
    """``torch.compile(module)`` gives the eager outputs and, with ``backward``, the eager gradients.

    Gradients are those of a fixed random projection of the outputs, in the floating inputs and every
    parameter. The check fails if dynamo traced nothing; when that happens because its recompile limit was
    reached (many modules of one class checked in one process), its caches are reset and the check retried.
    Parts excluded with ``torch.compiler.disable`` run eagerly inside the compiled module, as they would in use.

    Parameters
    ----------
    module : nn.Module or callable
    *inputs
        Positional inputs.
    fullgraph : bool
        Require one graph without breaks (a graph break then fails the check).
    rtol, atol : float
        Allowed differences (inductor may reorder floating-point operations).
    backward : bool
        Also compare gradients.
    backend : str
        ``"inductor"`` (the default of torch.compile), ``"aot_eager"`` (faster to compile: checks tracing and
        autograd, not code generation), ...
    **compile_kwargs
        Passed to :func:`torch.compile` (``dynamic``, ``mode``, ...).

    Example
    -------
    >>> assert_compiles(nn.Linear(3, 2), torch.randn(4, 3), fullgraph=True)
    """
    from torch._dynamo.testing import CompileCounterWithBackend
    from torch._dynamo.utils import counters

    name = _name(module)
    params = ({n: p for n, p in module.named_parameters() if p.requires_grad}
              if backward and isinstance(module, nn.Module) else {})

    def run(fn: Callable):
        if backward:
            return _gradients(fn, _leaves(inputs), params, 0)
        return _outputs(fn(*inputs)), {}

    expected, expected_grads = run(module)
    for attempt in range(2):
        if attempt:
            # Nothing compiled: maybe the recompile limit was reached for this code. Reset dynamo's caches (all
            # of them, which is why this is not done first: other compiled functions then recompile) and retry.
            torch._dynamo.reset()
        counter = CompileCounterWithBackend(backend)
        traced = counters["frames"]["ok"]
        compiled = torch.compile(module, backend=counter, fullgraph=fullgraph, **compile_kwargs)
        try:
            actual, actual_grads = run(compiled)
        except Exception as error:  # a compile failure is the finding, whatever its type
            if attempt == 0 and "RecompileLimit" in type(error).__name__:  # fullgraph=True at the limit
                continue
            raise AssertionError(f"assert_compiles: torch.compile({name}, fullgraph={fullgraph}, "
                                 f"backend={backend!r}) failed: {type(error).__name__}: {error}") from error
        # Compiled, or traced and found free of tensor operations (nn.Identity); neither when the frames ran
        # eagerly or reused code compiled earlier for another backend.
        if counter.frame_count or counters["frames"]["ok"] > traced:
            break
    else:
        raise AssertionError(f"assert_compiles: torch.compile({name}) traced nothing, everything ran eagerly "
                             "(dynamo disabled, e.g. by TORCHDYNAMO_DISABLE=1?)")
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        problem = _compare(f"output {i}", a, e, rtol, atol)
        if problem:
            raise AssertionError(f"assert_compiles: torch.compile({name}) differs from eager.\n{problem}")
    for what, e in expected_grads.items():
        a = actual_grads[what]
        if (a is None) != (e is None):
            raise AssertionError(f"assert_compiles: the gradient of {what} is "
                                 f"{'missing' if a is None else 'present'} under torch.compile({name}) but "
                                 f"{'present' if a is None else 'missing'} in eager mode")
        problem = None if a is None else _compare(f"gradient of {what}", a, e, rtol, atol)
        if problem:
            raise AssertionError(f"assert_compiles: torch.compile({name}) computes other gradients than eager "
                                 f"mode.\n{problem}")


# ------------------------------------------------------------------------------------------------ autocast
def assert_autocast(module: nn.Module | Callable, *inputs: Any, dtype: torch.dtype = torch.bfloat16,
                    output_dtype: torch.dtype | Sequence[torch.dtype] | None = None, rtol: float | None = 5e-2,
                    backward: bool = True, device_type: str | None = None) -> None:
    """``module(*inputs)`` under ``torch.autocast`` runs, is finite, has the promised dtype and is close to the
    float32 result; with ``backward``, its gradients are finite.

    kernelnn's convention (DESIGN.md section 3) is that layers return the autocast dtype, fragile parts (FFTs,
    distances) running in float32 inside; a layer documented to return float32 passes ``output_dtype``.

    Parameters
    ----------
    module : nn.Module or callable
        Run in its current (float32) precision.
    *inputs
        Positional inputs, given as they would be without autocast (float32).
    dtype : torch.dtype
        The autocast dtype: ``torch.bfloat16`` (default) or ``torch.float16``.
    output_dtype : torch.dtype or sequence of them, optional
        The allowed output dtypes; default ``dtype``.
    rtol : float or None
        Allowed ``max |out - ref| / max |ref|`` against the same call without autocast; ``None`` skips it.
    backward : bool
        Also backpropagate a random projection of the outputs (under autocast, as a training step does) and
        check the gradients of the floating inputs and parameters are finite.
    device_type : str, optional
        ``"cpu"`` or ``"cuda"``; default: the device of the first tensor input (CPU if none).

    Example
    -------
    >>> assert_autocast(nn.Linear(3, 2), torch.randn(4, 3))
    """
    name = _name(module)
    if device_type is None:
        device_type = next((t.device.type for t in inputs if isinstance(t, torch.Tensor)), "cpu")
    allowed = (dtype,) if output_dtype is None else (
        (output_dtype,) if isinstance(output_dtype, torch.dtype) else tuple(output_dtype))
    reference = _outputs(module(*inputs))
    leaves = _leaves(inputs) if backward else inputs
    with torch.autocast(device_type, dtype=dtype):
        try:
            outputs = _outputs(module(*leaves))
        except Exception as error:
            raise AssertionError(f"assert_autocast: {name} fails under torch.autocast({device_type!r}, "
                                 f"dtype={dtype}): {type(error).__name__}: {error}") from error
        for i, (out, ref) in enumerate(zip(outputs, reference, strict=True)):
            if out.dtype not in allowed:
                raise AssertionError(f"assert_autocast: output {i} of {name} under autocast({dtype}) has dtype "
                                     f"{out.dtype}; expected {' or '.join(map(str, allowed))}")
            if out.is_floating_point() and not bool(torch.isfinite(out).all()):
                raise AssertionError(f"assert_autocast: output {i} of {name} under autocast({dtype}) has "
                                     f"{int((~torch.isfinite(out)).sum())} non-finite values of {out.numel()}")
            if rtol is not None and out.is_floating_point() and out.numel():
                diff = float((out.detach().double() - ref.detach().double()).abs().max())
                scale = float(ref.detach().double().abs().max())
                if diff > rtol * scale:
                    raise AssertionError(f"assert_autocast: output {i} of {name} under autocast({dtype}) differs "
                                         f"from float32 by {diff:.3g}, {diff / max(scale, 1e-300):.3g} of its "
                                         f"largest value {scale:.3g} (allowed {rtol:g})")
        if not backward:
            return
        params = {}
        if isinstance(module, nn.Module):
            params = {n: p for n, p in module.named_parameters() if p.requires_grad}
        _, grads = _gradients(lambda *args: outputs, leaves, params, 0)
    for what, grad in grads.items():
        if grad is not None and not bool(torch.isfinite(grad).all()):
            raise AssertionError(f"assert_autocast: the gradient of {what} of {name} under autocast({dtype}) has "
                                 f"{int((~torch.isfinite(grad)).sum())} non-finite values of {grad.numel()}")


# ------------------------------------------------------------------------------------------------ O(3)
def parse_irreps(irreps: str | Any) -> tuple[tuple[int, int, int], ...]:
    """``(multiplicity, l, parity)`` of each term of an irreps string in e3nn's notation
    (:class:`kernelnn.o3.Irreps` parses it).

    ``"2x0e + 1x1o + 2e"``: ``e`` is even parity (+1), ``o`` odd (-1), ``y`` the parity :math:`(-1)^l` of
    spherical harmonics; the multiplicity defaults to 1. An ``e3nn.o3.Irreps`` works too (through its string).

    Example
    -------
    >>> parse_irreps("2x0e + 1o")
    ((2, 0, 1), (1, 1, -1))
    """
    from kernelnn.o3 import Irreps

    return tuple((mul, ir.l, ir.p) for mul, ir in Irreps(irreps))


def irreps_dim(irreps: str | Any) -> int:
    """Number of components: ``sum mul * (2l + 1)``."""
    return sum(mul * (2 * l + 1) for mul, l, _ in parse_irreps(irreps))


def harmonic_irreps(L: int, classes: int = 1) -> str:
    """The irreps of kernelnn's spherical-harmonic features ``(..., classes, (L+1)^2)``, trailing dims flattened.

    Class 0 transforms like the harmonics (``0e + 1o + 2e + ...``), class 1 (``parities="all"``) carries the
    opposite parity (``0o + 1e + 2o + ...``).

    Example
    -------
    >>> harmonic_irreps(2, classes=2)
    '0e + 1o + 2e + 0o + 1e + 2o'
    """
    if classes not in (1, 2):
        raise ValueError(f"harmonic_irreps: classes={classes!r} must be 1 or 2")
    sphere = [f"{l}{'eo'[l % 2]}" for l in range(L + 1)]
    pseudo = [f"{l}{'oe'[l % 2]}" for l in range(L + 1)]
    return " + ".join(sphere + (pseudo if classes == 2 else []))


def random_rotation(generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A rotation matrix (determinant +1) drawn uniformly from SO(3): QR of a Gaussian matrix, signs fixed."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    return (q if torch.det(q) > 0 else -q).to(dtype)


def representation(irreps: str | Any, matrix: torch.Tensor) -> torch.Tensor:
    """The matrix ``D(M)`` by which features of ``irreps`` transform under an orthogonal ``matrix`` ``M``.

    For each irrep ``(l, p)``: ``p^k D_l(R)`` with ``M = (-1)^k R``, ``R`` a rotation: a rotoinversion
    (``det M = -1``) multiplies odd-parity irreps by -1. ``D_l`` is in e3nn's real basis (for ``l = 1`` the
    ``(x, y, z)`` components: ``D_1o(M) = M``), the same as ``e3nn.o3.Irreps(irreps).D_from_matrix(M)``.
    Block diagonal, float64, ``(dim, dim)``.

    Example
    -------
    >>> M = -random_rotation()
    >>> torch.allclose(representation("1o", M), M)
    True
    """
    from kernelnn.o3 import Irreps

    return Irreps(irreps).D_from_matrix(matrix)


def _spec_list(irreps: Any, what: str) -> list[Any]:
    """One irreps (or ``None``) per argument: a single spec becomes a list of one."""
    if irreps is None or isinstance(irreps, str) or hasattr(irreps, "D_from_matrix"):  # e3nn's Irreps is a tuple
        return [irreps]
    if isinstance(irreps, Sequence):
        return list(irreps)
    raise ValueError(f"assert_equivariant: {what} must be an irreps string, None, or a sequence of them, got "
                     f"{irreps!r}")


def _trailing(x: torch.Tensor, dim: int, what: str) -> int:
    """How many trailing dims of ``x`` hold the ``dim`` irreps components (the fewest whose sizes multiply
    to ``dim``)."""
    size = 1
    for k in range(1, x.dim() + 1):
        size *= x.shape[-k]
        if size == dim:
            return k
        if size > dim:
            break
    raise ValueError(f"assert_equivariant: {what} has shape {tuple(x.shape)}: no trailing dims hold the {dim} "
                     "components of its irreps")


def _act(x: torch.Tensor, d: torch.Tensor, what: str) -> torch.Tensor:
    k = _trailing(x, d.shape[0], what)
    flat = x.reshape(*x.shape[: x.dim() - k], d.shape[0])
    return (flat @ d.T.to(device=x.device, dtype=x.dtype)).reshape(x.shape)


_TOLERANCE = {torch.float64: (1e-9, 1e-12), torch.float32: (1e-4, 1e-6)}


def assert_equivariant(fn: Callable, irreps_in: Any, irreps_out: Any, inputs: Sequence[Any] | None = None, *,
                       n_rotations: int = 2, improper: bool = True, rtol: float | None = None,
                       atol: float | None = None, seed: int = 0) -> None:
    r"""``fn(D_in(M) x) == D_out(M) fn(x)`` for rotations *and* rotoinversions ``M`` of O(3).

    Features are in e3nn's layout: the components of ``irreps`` (``"2x0e + 1x1o"``: two scalars, then one
    vector) run along the trailing dims of each tensor, flattened (the fewest trailing dims whose sizes multiply
    to the irreps' dimension), and leading dims are batch. kernelnn's ``(..., classes, (L+1)^2)`` features are
    :func:`harmonic_irreps`; positions and forces are ``"1o"``; energies ``"0e"``.

    Checked with ``n_rotations`` random rotations ``R``, and, unless ``improper=False``, the rotoinversions
    ``-R`` and the inversion ``-I``: a layer with an odd-parity path (a cross product of two vectors sent to a
    vector) is SO(3)- but not O(3)-equivariant, and only a rotoinversion tells.

    Parameters
    ----------
    fn : callable
        A module or function of the inputs; returns a tensor or a tuple of tensors.
    irreps_in, irreps_out : str, e3nn Irreps, None, or a sequence of them
        One per input / output; ``None``: an input passed unchanged (a mask), an output not checked.
    inputs : sequence of tensors, optional
        Default: one ``(4, dim)`` float64 Gaussian tensor per input irreps.
    n_rotations : int
        Random rotations to try (each also as a rotoinversion).
    improper : bool
        Also check rotoinversions (O(3)). ``False`` only for layers documented SO(3)-equivariant.
    rtol, atol : float, optional
        Allowed ``max |fn(D x) - D fn(x)|`` is ``atol + rtol * max |fn(x)|``; defaults by output dtype
        (float64: 1e-9 and 1e-12, float32: 1e-4 and 1e-6, lower: 1e-2 and 1e-3).
    seed : int
        Seed of the random rotations.

    Raises
    ------
    AssertionError
        Saying which output fails under which kind of transformation, by how much, and how the other kinds fare.

    Example
    -------
    >>> assert_equivariant(torch.linalg.cross, ["1o", "1o"], "1e")  # a cross product is a pseudovector
    """
    name = _name(fn)
    specs_in, specs_out = _spec_list(irreps_in, "irreps_in"), _spec_list(irreps_out, "irreps_out")
    if inputs is None:
        if any(spec is None for spec in specs_in):
            raise ValueError("assert_equivariant: pass inputs= when an input's irreps is None")
        g = torch.Generator().manual_seed(seed + 1)
        inputs = [torch.randn(4, irreps_dim(spec), generator=g, dtype=torch.float64) for spec in specs_in]
    inputs = list(inputs)
    if len(inputs) != len(specs_in):
        raise ValueError(f"assert_equivariant: {len(inputs)} inputs but {len(specs_in)} irreps_in")
    outputs = _outputs(fn(*inputs))
    if len(outputs) != len(specs_out):
        raise ValueError(f"assert_equivariant: {name} returns {len(outputs)} outputs but irreps_out has "
                         f"{len(specs_out)}")
    checked = [i for i, spec in enumerate(specs_out) if spec is not None]
    scale = {i: float(outputs[i].detach().abs().max()) if outputs[i].numel() else 0.0 for i in checked}
    if checked and all(scale[i] == 0 for i in checked):
        raise AssertionError(f"assert_equivariant: every checked output of {name} is zero, so the check could not "
                             "fail; randomize the parameters or the inputs")

    g = torch.Generator().manual_seed(seed)
    elements: list[tuple[str, torch.Tensor]] = []
    for _ in range(n_rotations):
        rotation = random_rotation(g)
        elements.append(("rotation", rotation))
        if improper:
            elements.append(("rotoinversion", -rotation))
    if improper:
        elements.append(("inversion", -torch.eye(3, dtype=torch.float64)))

    worst: dict[tuple[int, str], float] = {}
    for kind, matrix in elements:
        moved = [x if spec is None else _act(x, representation(spec, matrix), f"input {j}")
                 for j, (x, spec) in enumerate(zip(inputs, specs_in, strict=True))]
        result = _outputs(fn(*moved))
        for i in checked:
            expected = _act(outputs[i], representation(specs_out[i], matrix), f"output {i}")
            error = float((result[i].detach().double() - expected.detach().double()).abs().max())
            worst[i, kind] = max(worst.get((i, kind), 0.0), error)

    for i in checked:
        default_rtol, default_atol = _TOLERANCE.get(outputs[i].dtype, (1e-2, 1e-3))
        allowed = (default_atol if atol is None else atol) + (default_rtol if rtol is None else rtol) * scale[i]
        failed = [kind for (j, kind), error in worst.items() if j == i and not error <= allowed]
        if failed:
            report = ", ".join(f"{kind}s {error:.3g}" for (j, kind), error in worst.items() if j == i)
            hint = ""
            if "rotation" not in failed:
                hint = (" It is equivariant under rotations only: an odd-parity path (e.g. a cross product of two "
                        "vectors sent to a vector), or wrong parities in irreps_in / irreps_out.")
            kinds = " and ".join(f"{kind}s" for kind in failed)
            raise AssertionError(f"assert_equivariant: output {i} of {name} is not equivariant under {kinds}: "
                                 f"max |f(D x) - D f(x)| is {report} (allowed {allowed:.3g}, max |f(x)| = "
                                 f"{scale[i]:.3g}).{hint}")


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """``torch.set_default_dtype(dtype)`` inside the block only: libraries that build their constant tables in the
    default dtype (e3nn's 3j symbols) are exact only when built under float64."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def equivariance_error(fn: Callable, irreps_in: Any, irreps_out: Any, inputs: Sequence[Any], *,
                       n_rotations: int = 20, improper: bool = True, seed: int = 0) -> float:
    r"""The relative equivariance error of an approximately equivariant ``fn`` (e.g. a CP tensor product):

    .. math::
        \varepsilon = \max_{M} \frac{\| f(D_{in}(M)\, x) - D_{out}(M)\, f(x) \|_F}{\| f(x) \|_F}

    over ``n_rotations`` random rotations (and, with ``improper``, the same as rotoinversions), for a single
    output; arguments as in :func:`assert_equivariant` (``inputs`` required). Computed in float64 by the caller's
    choice of inputs: pass float64 inputs to measure errors below 1e-6.

    Example
    -------
    >>> equivariance_error(torch.linalg.cross, ["1o", "1o"], "1e", [torch.randn(4, 3), torch.randn(4, 3)]) < 1e-6
    True
    """
    specs_in = _spec_list(irreps_in, "irreps_in")
    inputs = list(inputs)
    if len(inputs) != len(specs_in):
        raise ValueError(f"equivariance_error: {len(inputs)} inputs but {len(specs_in)} irreps_in")
    with torch.no_grad():
        reference = _outputs(fn(*inputs))[0]
        norm = float(reference.double().norm())
        if norm == 0:
            raise ValueError(f"equivariance_error: the output of {_name(fn)} is zero; the error is undefined")
        g = torch.Generator().manual_seed(seed)
        worst = 0.0
        for _ in range(n_rotations):
            rotation = random_rotation(g)
            for matrix in (rotation, -rotation) if improper else (rotation,):
                moved = [x if spec is None else _act(x, representation(spec, matrix), f"input {j}")
                         for j, (x, spec) in enumerate(zip(inputs, specs_in, strict=True))]
                expected = _act(reference, representation(irreps_out, matrix), "output")
                error = float((_outputs(fn(*moved))[0].double() - expected.double()).norm()) / norm
                worst = max(worst, error)
    return worst
