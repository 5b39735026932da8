import math

import pytest
import torch

from kernelnn.data import make_burgers, make_navier_stokes, solve_burgers, solve_navier_stokes
from kernelnn.data.grf import periodic_grf
from kernelnn.data.navier_stokes import fno_forcing


def observed_order(solutions) -> float:
    """log2 of the ratio of successive differences for solutions at dt, dt/2, dt/4."""
    e1 = (solutions[0] - solutions[1]).abs().max()
    e2 = (solutions[1] - solutions[2]).abs().max()
    return math.log2((e1 / e2).item())


def test_burgers_converges_when_dt_is_halved():
    gen = torch.Generator().manual_seed(0)
    u0 = periodic_grf(3, 64, 1, 2.0, 5.0, 25.0, gen)
    # Mildly stiff (nu = 0.01): the integrating-factor RK4 scheme shows its full fourth order.
    sols = [solve_burgers(u0, 0.01, 0.2, dt) for dt in (4e-3, 2e-3, 1e-3)]
    assert 3.5 < observed_order(sols) < 4.5
    # Stiff (nu = 0.1, the data default): Lawson methods lose order at large steps, but still converge.
    sols = [solve_burgers(u0, 0.1, 0.2, dt) for dt in (4e-3, 2e-3, 1e-3)]
    assert observed_order(sols) > 2.0
    # Mean is conserved on the torus; viscosity dissipates energy.
    torch.testing.assert_close(sols[-1].mean(-1), u0.mean(-1), atol=1e-12, rtol=0)
    assert (sols[-1].pow(2).mean(-1) < u0.pow(2).mean(-1)).all()


def test_burgers_travelling_wave_is_exact():
    """Cole-Hopf: u = -2 nu phi_x / phi with phi = 1 + eps e^{-nu k^2 t} cos(kx) solves viscous Burgers exactly."""
    nu, t, n, eps = 0.1, 0.3, 128, 0.5
    k = 2 * math.pi
    x = torch.arange(n, dtype=torch.float64) / n

    def exact(time):
        decay = math.exp(-nu * k**2 * time)
        phi = 1 + eps * decay * torch.cos(k * x)
        phi_x = -eps * decay * k * torch.sin(k * x)
        return -2 * nu * phi_x / phi

    numeric = solve_burgers(exact(0.0)[None], nu, t, dt=1e-3)[0]
    assert (numeric - exact(t)).abs().max() < 1e-8


def test_navier_stokes_converges_second_order():
    gen = torch.Generator().manual_seed(0)
    w0 = periodic_grf(2, 32, 2, 2.5, 7.0, 7.0**1.5, gen)
    sols = [solve_navier_stokes(w0, fno_forcing(32), 1e-3, 1.0, 1, dt)[:, -1] for dt in (0.02, 0.01, 0.005)]
    assert observed_order(sols) > 1.7
    # Forcing and initial vorticity have zero mean, so the mean vorticity stays zero.
    assert sols[-1].mean(dim=(-2, -1)).abs().max() < 1e-12


def test_navier_stokes_taylor_green_decay():
    """Without forcing, w = cos(2 pi x) + cos(2 pi y) is a steady shape decaying like exp(-8 pi^2 nu t)."""
    n, nu, t = 32, 1e-2, 0.5
    x = torch.arange(n, dtype=torch.float64) / n
    w0 = (torch.cos(2 * math.pi * x)[:, None] + torch.cos(2 * math.pi * x)[None, :])[None]
    w = solve_navier_stokes(w0, torch.zeros(n, n), nu, t, 1, 1e-3)[0, -1]
    torch.testing.assert_close(w, w0[0] * math.exp(-4 * math.pi**2 * nu * t), atol=1e-7, rtol=0)


def test_bundles(tmp_path):
    b = make_burgers(resolution=16, test_resolutions=[16, 32], n_train=3, n_val=1, n_test=2, t_final=0.05,
                cache_dir=str(tmp_path))
    assert b.train.tensors[0].shape == (3, 1, 16) and b.tests["test_32"].tensors[1].shape == (2, 1, 32)
    assert b.dim == 1 and b.periodic
    ns = make_navier_stokes(resolution=8, test_resolutions=[8, 16], n_train=3, n_val=1, n_test=2, t_final=0.2,
                       record_steps=4, input_steps=2, output_steps=3, dt=0.01, cache_dir=str(tmp_path))
    assert ns.train.tensors[0].shape == (3, 2, 8, 8) and ns.train.tensors[1].shape == (3, 3, 8, 8)
    assert ns.info["sequences"].shape == (6, 5, 16, 16)
    seq = ns.info["sequences"][0, :, ::2, ::2]
    torch.testing.assert_close(ns.train.tensors[1][0], seq[2:5])
    with pytest.raises(ValueError, match="data.input_steps=4 \\+ data.output_steps=3"):
        make_navier_stokes(record_steps=4, input_steps=4, output_steps=3, cache=False)


def test_shallow_water_is_deterministic_and_evolves():
    from kernelnn.data import make_shallow_water

    kw = dict(nlat=16, nlon=32, n_train=2, n_val=0, n_test=1, hours=0.5, cache=False)
    a, b = make_shallow_water(**kw), make_shallow_water(**kw)
    x, y = a.train.tensors
    assert x.shape == y.shape == (2, 3, 16, 32)
    assert torch.equal(y, b.train.tensors[1])  # same seed, same data
    assert all((y[:, c] - x[:, c]).abs().max() > 1e-4 * x[:, c].abs().max() for c in range(3))
    with pytest.raises(ValueError, match="data.nlon=30 must be 2 \\* data.nlat=16"):
        make_shallow_water(nlat=16, nlon=30, cache=False)
