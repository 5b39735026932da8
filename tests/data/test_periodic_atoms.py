"""Periodic atoms from our own Langevin dynamics: labels are derivatives of the energy (finite differences),
pair sums equal a brute-force image sum, the bundle's layout, and the model's stacked call on it."""

import itertools

import pytest
import torch

from kernelnn.data.periodic_atoms import (
    energy_forces_stress,
    langevin_frames,
    make_periodic_atoms,
    potential_energy,
)
from kernelnn.models import InteratomicPotential


def brute_force_energy(kind, x, species, side, cutoff):
    from kernelnn.data.periodic_atoms import _pair

    total = torch.zeros((), dtype=torch.float64)
    for i, j in itertools.product(range(len(x)), repeat=2):
        for s in itertools.product((-1, 0, 1), repeat=3):
            if i == j and s == (0, 0, 0):
                continue
            r = (x[j] - x[i] + side * torch.tensor(s, dtype=torch.float64)).norm()
            if r < cutoff:
                a, b = species[i:i + 1], species[j:j + 1]
                total = total + (_pair(kind, r[None], a, b) - _pair(kind, torch.tensor([cutoff], dtype=torch.float64),
                                                                   a, b))[0] / 2
    return total


@pytest.mark.parametrize("kind", ["lennard_jones", "morse_binary"])
def test_energy_is_the_pair_sum_and_labels_are_its_derivatives(kind):
    g = torch.Generator().manual_seed(0)
    run = langevin_frames(kind, 27, 1, 1.0, 1.5, g, equilibrate=50, stride=10)
    x, species, cell = run["positions"][0], run["species"], run["cell"]
    side = float(cell[0, 0])
    energy = potential_energy(kind, x, species, cell, 1.5)[0]
    torch.testing.assert_close(energy, brute_force_energy(kind, x, species, side, 1.5))
    e, f, s = energy_forces_stress(kind, x, species, cell, 1.5)
    eps = 1e-6
    d = torch.zeros_like(x)
    d[3, 1] = eps
    fd = (potential_energy(kind, x + d, species, cell, 1.5) - potential_energy(kind, x - d, species, cell, 1.5))
    torch.testing.assert_close(-fd[0] / (2 * eps), f[3, 1], rtol=1e-5, atol=1e-7)
    strain = torch.zeros(3, 3, dtype=torch.float64)
    strain[0, 0] = eps
    e_plus = potential_energy(kind, x + x @ strain, species, cell + cell @ strain, 1.5)[0]
    e_minus = potential_energy(kind, x - x @ strain, species, cell - cell @ strain, 1.5)[0]
    torch.testing.assert_close((e_plus - e_minus) / (2 * eps) / side ** 3, s[0, 0], rtol=1e-5, atol=1e-7)
    assert bool((x >= 0).all() and (x < side).all())


def test_bundle_layout_sizes_and_model_fill(tmp_path):
    bundle = make_periodic_atoms("morse_binary", n_atoms=27, n_train=4, n_val=2, n_test=2, test_atoms=[64],
                                 n_test_large=1, trajectories=2, cutoff=1.5, equilibrate=20, stride=5,
                                 cache_dir=str(tmp_path))
    (positions, species, cell), target = bundle.train[0]
    assert positions.shape == (27, 3) and species.shape == (27,) and cell.shape == (3, 3)
    assert target["energy"].shape == () and target["forces"].shape == (27, 3)
    assert set(bundle.tests) == {"test", "test_64"} and bundle.tests["test_64"][0][1]["forces"].shape == (64, 3)
    assert bundle.model_fill["species"] == 2 and len(bundle.model_fill["energy_shift"]) == 2
    model = InteratomicPotential(**{k: bundle.model_fill[k] for k in ("species", "energy_shift", "energy_scale",
                                                                      "cutoff")}, L=1, channels=4, layers=1)
    # 27- and 64-atom systems in one padding-free batch, as the training loop's loader joins them
    x, y = bundle.train.collate([bundle.train[0], bundle.tests["test_64"][0], bundle.train[1]])
    assert x[2].tolist() == [0] * 27 + [1] * 64 + [2] * 27 and y["atoms"].tolist() == [27, 64, 27]
    out = model(*x)
    assert out["energy"].shape == (3,) and out["forces"].shape == (118, 3) and torch.isfinite(out["forces"]).all()
    alone = model(*bundle.train.collate([bundle.tests["test_64"][0]])[0])
    torch.testing.assert_close(out["energy"][1:2], alone["energy"])
    again = make_periodic_atoms("morse_binary", n_atoms=27, n_train=4, n_val=2, n_test=2, test_atoms=[64],
                                n_test_large=1, trajectories=2, cutoff=1.5, equilibrate=20, stride=5,
                                cache_dir=str(tmp_path))
    torch.testing.assert_close(again.train[1][1], bundle.train[1][1])  # deterministic, from the cache


@pytest.mark.parametrize("kwargs, message", [({"kind": "argon"}, "data.kind='argon'"),
                                             ({"n_atoms": 0}, "data.n_atoms=0"),
                                             ({"t_min": 2.0, "t_max": 1.0}, "temperatures must satisfy"),
                                             ({"n_atoms": 8, "cutoff": 2.0}, "must be at most half of it")])
def test_bad_options(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        make_periodic_atoms(**{"n_train": 1, "n_val": 0, "n_test": 0, "trajectories": 1, "equilibrate": 1,
                               "stride": 1, "cache_dir": str(tmp_path), **kwargs})
