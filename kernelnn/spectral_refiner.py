"""Spectral-Refiner's test-time refinement (Cao et al., ICLR 2025): a trained :class:`~kernelnn.models.BochnerFNO`'s
last, linear spectral convolution is rebuilt with every mode up to the grid's Nyquist (the trained weights in the
low modes, zeros elsewhere) and fitted, everything else frozen, to minimise the a posteriori error estimator
(:class:`~kernelnn.navier_stokes_residual.NavierStokesResidual`) of the predicted trajectories. No target is read,
so this refines predictions for inputs no solver has seen.

Each trajectory gets its own copy of the layer (``refine_trajectories``), as the paper refines each test sample:
the frozen features are computed once, and the objective, the squared estimator, is a smooth function of the
layer's weights alone, minimised by L-BFGS (or Adam).

The layer's output coefficient at a mode ``k`` is ``c(k) = sum_i W_i(k) v_i(k)`` (``v`` the frozen features), so
every change ``delta(k)`` of the output is reached by the smallest weight change
``dW_i(k) = conj(v_i(k)) delta(k) / |v(k)|^2``. ``parameterization="output"`` (the default) optimises ``delta``,
scaled by the square root of the ``H^-s`` weight's inverse so that every spatial mode starts equally weighted:
the same problem over the same layer, in coordinates where L-BFGS converges in hundreds of iterations rather
than the many thousands the raw weights need (``parameterization="weights"``, as the authors' code does).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch

from kernelnn.models.bochner_fno import BochnerFNO
from kernelnn.navier_stokes_residual import NavierStokesResidual

OPTIMIZERS = ("lbfgs", "adam")
PARAMETERIZATIONS = ("output", "weights")


@dataclass
class Refinement:
    """What :func:`refine_trajectories` returns. Tensors are on the CPU, in the refinement's ``dtype``."""

    predictions: torch.Tensor  # (n, out_steps, X, Y), refined
    initial: torch.Tensor  # (n, out_steps, X, Y), the trained model's
    residual_before: torch.Tensor  # (n,) estimator of the initial predictions
    residual_after: torch.Tensor  # (n,) estimator of the refined ones
    seconds: float  # wall time of the refinement, features and predictions included
    iterations: int  # optimizer iterations per batch


def unlocked_output(model: BochnerFNO, spatial: tuple[int, int], out_steps: int | None = None):
    """A copy of ``model.output`` keeping every mode of the grid ``spatial`` with ``out_steps`` frames: the trained
    weights in the low modes, zeros in the new ones (so it computes the trained function until refined)."""
    conv = copy.deepcopy(model.output)
    conv.n_modes = model.full_output_modes(spatial, out_steps)
    return conv


def refine_trajectories(
    model: BochnerFNO,
    inputs: torch.Tensor,
    estimator: NavierStokesResidual,
    *,
    out_steps: int | None = None,
    iterations: int = 50,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    batch_size: int = 4,
    parameterization: str = "output",
    dtype: torch.dtype = torch.float64,
) -> Refinement:
    """Refine the predictions of ``model`` for ``inputs`` ``(n, in_steps, X, Y)``, each trajectory with its own layer.

    ``estimator`` must describe the frames the model outputs: its ``time_step`` is the time between output frames
    at ``out_steps`` (default ``model.out_steps``; ``NavierStokesResidual.for_bundle(data, out_steps)`` gives it).
    ``iterations`` of ``optimizer`` (``"lbfgs"``: strong-Wolfe line search, ``lr`` default 1; ``"adam"``: ``lr``
    default 1e-3) run on each batch of ``batch_size`` trajectories, whose objectives add: with Adam each
    trajectory's weights move exactly as if alone, while L-BFGS shares one line search and curvature history across
    the batch (``batch_size=1`` refines each trajectory alone). ``dtype`` (default float64, as in the paper) is the
    precision of the refinement, features included (autocast is off); inputs are cast to the model's dtype.
    ``parameterization`` is ``"output"`` (preconditioned, the default) or ``"weights"`` (see the module docstring).
    The model itself is not changed.
    """
    name = "refine_trajectories"
    if not isinstance(model, BochnerFNO):
        raise TypeError(f"{name}: model must be a BochnerFNO (it refines the linear output layer of a trajectory "
                        f"model), got {type(model).__name__}")
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"{name}: parameterization={parameterization!r} is not one of {PARAMETERIZATIONS}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"{name}: optimizer={optimizer!r} is not one of {OPTIMIZERS}")
    if not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"{name}: iterations={iterations!r} must be an int >= 0")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"{name}: batch_size={batch_size!r} must be a positive int")
    if lr is not None and not lr > 0:
        raise ValueError(f"{name}: lr={lr!r} must be positive")
    inputs = inputs.to(next(model.parameters()).dtype) if inputs.is_floating_point() else inputs
    model.check_input(inputs, out_steps)
    steps = model.out_steps if out_steps is None else out_steps
    start = time.perf_counter()
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    conv = unlocked_output(model, tuple(inputs.shape[2:]), steps).to(device=device, dtype=dtype)
    weight0 = conv.weight.reconstruct(dtype).detach()  # (hidden, 1, *modes), complex
    results: dict[str, list[torch.Tensor]] = {"initial": [], "refined": [], "before": [], "after": []}
    try:
        for x in inputs.split(batch_size):
            x = x.to(device)
            with torch.no_grad(), torch.autocast(device.type, enabled=False):
                latent = model.latent(x, steps).to(dtype)
                spatial = tuple(latent.shape[2:])
                features = conv._gather_low_modes(torch.fft.rfftn(latent, dim=(-3, -2, -1), norm="forward"))
            x = x.to(dtype)
            weight, coefficients = _output_coefficients(parameterization, features, weight0, conv,
                                                        estimator.sobolev_s)

            def predict(w: torch.Tensor) -> torch.Tensor:
                field = torch.fft.irfftn(conv._scatter_low_modes(coefficients(w), spatial), s=spatial,  # noqa: B023
                                         dim=(-3, -2, -1), norm="forward")
                return model.decode(field, x, steps)  # noqa: B023

            def objective(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                prediction = predict(w)
                values = estimator.per_trajectory(torch.cat([x[:, -1:], prediction], dim=1))  # noqa: B023
                return values.pow(2).sum(), values

            with torch.no_grad():
                initial = predict(weight)
                results["initial"].append(initial.cpu())
                results["before"].append(objective(weight)[1].cpu())
            _minimise(objective, weight, iterations, optimizer, lr)
            with torch.no_grad():
                results["refined"].append(predict(weight).cpu())
                results["after"].append(objective(weight)[1].cpu())
    finally:
        model.train(was_training)
    return Refinement(predictions=torch.cat(results["refined"]), initial=torch.cat(results["initial"]),
                      residual_before=torch.cat(results["before"]), residual_after=torch.cat(results["after"]),
                      seconds=time.perf_counter() - start, iterations=iterations)


def _output_coefficients(parameterization: str, features: torch.Tensor, weight0: torch.Tensor, conv,
                         sobolev_s: float):
    """The trainable tensor of one batch and the map from it to the output layer's kept coefficients
    ``(batch, 1, *modes)``, for the frozen ``features`` ``(batch, hidden, *modes)`` and trained weights ``weight0``."""
    if parameterization == "weights":
        weight = torch.view_as_real(weight0.expand(len(features), *weight0.shape).clone()).requires_grad_(True)
        return weight, lambda w: torch.einsum("bi...,bio...->bo...", features, torch.view_as_complex(w))
    with torch.no_grad():
        start = torch.einsum("bi...,io...->bo...", features, weight0)
        power = features.abs().pow(2).sum(1, keepdim=True)
        floor = 1e-12 * power.flatten(1).amax(1).view(-1, *[1] * (power.dim() - 1))
        reach = power / (power + floor)  # the fraction of delta a minimal weight change reaches (0: no features)
        step = reach * sobolev_scale(conv, sobolev_s, features.real.dtype)
    delta = torch.zeros(torch.view_as_real(start).shape, dtype=features.real.dtype, device=features.device,
                        requires_grad=True)
    return delta, lambda d: start + step * torch.view_as_complex(d)


def sobolev_scale(conv, sobolev_s: float, dtype: torch.dtype) -> torch.Tensor:
    """``(1 + 4 pi^2 |k|^2)^(s/2)`` over the spatial modes of the output layer's kept block (time untouched)."""
    mx, my, _ = conv.n_modes
    device = conv.weight.reconstruct(dtype).device
    kx, ky = (torch.cat([torch.arange(m), torch.arange(1 - m, 0)]).to(device=device, dtype=dtype) for m in (mx, my))
    return (1 + 4 * math.pi**2 * (kx[:, None, None] ** 2 + ky[None, :, None] ** 2)) ** (sobolev_s / 2)


def _minimise(objective, weight: torch.Tensor, iterations: int, optimizer: str, lr: float | None) -> None:
    if iterations == 0:
        return
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([weight], lr=1.0 if lr is None else lr, max_iter=iterations, history_size=20,
                                line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0)

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = objective(weight)[0]
            loss.backward()
            return loss

        opt.step(closure)
        return
    opt = torch.optim.Adam([weight], lr=1e-3 if lr is None else lr)
    for _ in range(iterations):
        opt.zero_grad()
        objective(weight)[0].backward()
        opt.step()
