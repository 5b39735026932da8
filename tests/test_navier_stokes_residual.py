"""The Spectral-Refiner's a posteriori estimator: exact on closed-form solutions, at the solver's time-step error
on the solver's own trajectories, converging at the scheme's second order."""

import math

import pytest
import torch

from kernelnn.data.grf import periodic_grf
from kernelnn.data.navier_stokes import fno_forcing, make_navier_stokes, solve_navier_stokes
from kernelnn.navier_stokes_residual import NavierStokesResidual
from kernelnn.testing import assert_gradcheck

N = 16


def diagonal_mode(n: int = N) -> torch.Tensor:
    x = torch.arange(n, dtype=torch.float64) / n
    return torch.sin(2 * math.pi * (x[:, None] + x[None, :]))


def test_a_zero_field_leaves_the_forcing_as_residual():
    # f = 0.1 (sin + cos) of the wave vector (1, 1): ||f||_L2^2 = 0.01; H^-1 divides by 1 + 4 pi^2 |k|^2 = 1 + 8 pi^2
    value = NavierStokesResidual(1e-3, 0.1)(torch.zeros(2, 3, N, N, dtype=torch.float64))
    torch.testing.assert_close(value, torch.tensor(math.sqrt(0.01 / (1 + 8 * math.pi**2)), dtype=torch.float64))


def test_the_steady_solution_of_the_forcing_has_no_residual():
    # w = f / (8 pi^2 nu) is parallel to its stream function (advection vanishes) and nu lap w = -f.
    nu = 1e-3
    w = fno_forcing(N) / (8 * math.pi**2 * nu)
    trajectory = w.expand(1, 4, N, N)
    estimator = NavierStokesResidual(nu, 0.25)
    assert estimator.residual(trajectory).abs().max() < 1e-12
    assert estimator(torch.zeros_like(trajectory)) > 1e-3


def test_a_decaying_mode_has_the_trapezoidal_rules_truncation_error():
    # Unforced, w = exp(-lam t) sin(2 pi (x + y)) with lam = 8 pi^2 nu solves the equation exactly (no advection);
    # the trapezoidal residual per interval is -(e^{-lam h} - 1) / h - lam (1 + e^{-lam h}) / 2 times w_n's mode.
    nu, h = 0.02, 0.3
    lam = 8 * math.pi**2 * nu
    times = torch.arange(4, dtype=torch.float64) * h
    trajectory = torch.exp(-lam * times)[None, :, None, None] * diagonal_mode()
    estimator = NavierStokesResidual(nu, h, forcing=torch.zeros(N, N, dtype=torch.float64), reduction="none")
    decay = math.exp(-lam * h)
    per_mode = -(decay - 1) / h - lam * (1 + decay) / 2
    expected = per_mode * torch.exp(-lam * times[:-1])[:, None, None] * diagonal_mode()
    torch.testing.assert_close(estimator.residual(trajectory)[0], expected, rtol=1e-9, atol=1e-12)
    assert abs(per_mode) < lam**3 * h**2 / 12 * 1.01  # the O(h^2) truncation error of the scheme


def test_solver_trajectories_give_a_residual_that_converges_at_second_order():
    n = 32
    w0 = periodic_grf(2, n, 2, alpha=2.5, tau=7.0, sigma=7.0**1.5, generator=torch.Generator().manual_seed(0))
    warm = solve_navier_stokes(w0, fno_forcing(n), 1e-3, 2.0, 1, 5e-3)[:, -1]  # past the initial transient
    values = []
    for frames in (10, 20, 40):
        w = solve_navier_stokes(warm, fno_forcing(n), 1e-3, 1.0, frames, 1e-3)
        values.append(NavierStokesResidual(1e-3, 1.0 / frames)(w).item())
    ratios = [a / b for a, b in zip(values, values[1:], strict=False)]
    assert all(3.5 < r < 4.5 for r in ratios), (values, ratios)
    # and small against a perturbed trajectory's
    w = solve_navier_stokes(warm, fno_forcing(n), 1e-3, 1.0, 20, 1e-3)
    perturbed = w + 0.01 * w.std() * torch.sin(torch.arange(21, dtype=w.dtype) / 3)[None, :, None, None]
    assert NavierStokesResidual(1e-3, 0.05)(perturbed).item() > 20 * values[1]


def test_gradcheck_in_float64():
    torch.manual_seed(0)
    estimator = NavierStokesResidual(1e-2, 0.1)
    assert_gradcheck(estimator, torch.randn(2, 3, 8, 8, dtype=torch.float64))


def test_half_precision_input_is_computed_in_float32():
    trajectory = torch.randn(1, 3, 8, 8)
    estimator = NavierStokesResidual(1e-3, 0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = estimator(trajectory.bfloat16())
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, estimator(trajectory.bfloat16().float()))


@pytest.mark.parametrize(("trajectory", "message"), [
    (torch.zeros(1, 3, 8, 16), "square periodic grid"),
    (torch.zeros(1, 1, 8, 8), r"\(batch, T >= 2, N, N\)"),
    (torch.zeros(3, 8, 8), r"\(batch, T >= 2, N, N\)"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.int64), "floating point"),
])
def test_bad_trajectories_are_refused(trajectory, message):
    with pytest.raises((ValueError, TypeError), match=f"NavierStokesResidual: .*{message}"):
        NavierStokesResidual(1e-3, 0.1)(trajectory)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="NavierStokesResidual: viscosity=0"):
        NavierStokesResidual(0, 0.1)
    with pytest.raises(ValueError, match="NavierStokesResidual: time_step=-1"):
        NavierStokesResidual(1e-3, -1)
    with pytest.raises(ValueError, match=r"forcing is given on a \(8, 8\) grid"):
        NavierStokesResidual(1e-3, 0.1, forcing=torch.zeros(8, 8))(torch.zeros(1, 2, 16, 16))


def test_the_estimator_of_a_bundle_reads_its_viscosity_and_frame_spacing(tmp_path):
    bundle = make_navier_stokes(resolution=16, test_resolutions=[16], n_train=2, n_val=1, n_test=1, t_final=0.4,
                                record_steps=4, input_steps=2, output_steps=2, dt=0.05, cache=False)
    estimator = NavierStokesResidual.for_bundle(bundle)
    assert (estimator.viscosity, estimator.time_step) == (1e-3, pytest.approx(0.1))
    bundle.periodic = False
    with pytest.raises(ValueError, match="needs periodic 2-D vorticity data"):
        NavierStokesResidual.for_bundle(bundle)
