"""SIREN: the initialisation the paper prescribes, and the property it buys: activations keep their distribution
through depth (arcsine-distributed outputs, standard-normal-like pre-activations)."""

import math

import pytest
import torch

from kernelnn.layers import SineLayer, Siren
from kernelnn.models import CoordinateNetwork


def test_initialisation_bounds():
    torch.manual_seed(0)
    net = Siren(3, 2, hidden_features=200, n_layers=3)
    first, hidden = net.layers[0].linear.weight, net.layers[1].linear.weight
    assert first.abs().max() <= 1 / 3 and first.abs().max() > 0.9 / 3
    bound = math.sqrt(6 / 200) / 30
    assert hidden.abs().max() <= bound and hidden.abs().max() > 0.95 * bound
    assert net.output.weight.abs().max() <= bound


def test_activations_keep_their_distribution_through_depth():
    """The paper's Theorem 1 / Fig. 3: with inputs uniform in [-1, 1], every sine output is arcsine-distributed on
    [-1, 1] (standard deviation 1 / sqrt(2)) and every later pre-activation omega_0 (W x + b) has the same spread at
    any depth: variance 1 from W x (omega_0^2 n (6 / n / omega_0^2) / 3 * 1/2), plus omega_0^2 / (3 n) from the
    bias that keeps nn.Linear's U(+-1/sqrt(n)) as in the authors' code."""
    torch.manual_seed(0)
    n = 512
    net = Siren(2, 1, hidden_features=n, n_layers=8).double()
    h = net.layers[0](torch.rand(4096, 2, dtype=torch.float64) * 2 - 1)
    expected = math.sqrt(1 + 30**2 / (3 * n))
    for layer in net.layers[1:]:
        assert abs(h.std().item() - 1 / math.sqrt(2)) < 0.02
        pre = layer.omega_0 * layer.linear(h)
        assert abs(pre.std().item() / expected - 1) < 0.05
        h = torch.sin(pre)


def test_sine_layer_is_the_formula():
    torch.manual_seed(0)
    layer = SineLayer(4, 3, omega_0=7.0).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(layer(x), torch.sin(7.0 * (x @ layer.linear.weight.T + layer.linear.bias)))


def test_the_location_encoder_of_the_paper_has_its_parameter_count():
    """Rußwurm et al.'s land/ocean SH-SIREN (10 Legendre polynomials = degrees 0..9, 64 hidden, 2 sine layers,
    omega_0 30 then 1): 10,689 parameters in the authors' code."""
    model = CoordinateNetwork(2, 1, encoding="spherical_harmonics", encoding_options={"L": 9}, network="siren",
                              hidden_features=64, n_layers=2, hidden_omega_0=1.0)
    assert sum(p.numel() for p in model.parameters()) == 10_689


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Siren(2, 1, n_layers=0), r"Siren: n_layers=0 must be a positive int"),
    (lambda: Siren(2, 1, first_omega_0=-3), r"Siren: first_omega_0=-3 must be a positive number"),
    (lambda: SineLayer(2, 1, omega_0=float("inf")), r"SineLayer: omega_0=inf must be a positive number"),
    (lambda: CoordinateNetwork(2, 1, network="resnet"), r"CoordinateNetwork: network='resnet' is not one of"),
    (lambda: CoordinateNetwork(2, 1, encoding="sh"), r"CoordinateNetwork: encoding='sh' is not a known positional"),
    (lambda: CoordinateNetwork(3, 1, encoding="spherical_harmonics", encoding_options={"L": 2}),
     r"encoding='spherical_harmonics' reads 2 coordinates \(longitude, latitude\), but in_features=3"),
])
def test_bad_arguments_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"Siren: input must have shape \(\.\.\., 2\), got \(4, 3\)"):
        Siren(2, 1, hidden_features=4)(torch.zeros(4, 3))
    with pytest.raises(TypeError, match=r"Siren: input dtype torch.float64 does not match"):
        Siren(2, 1, hidden_features=4)(torch.zeros(4, 2, dtype=torch.float64))


def test_sine_layers_compute_in_float32_under_autocast():
    """omega_0 (W x + b) spans tens of radians: under bfloat16 autocast the sine layers still compute (and return)
    float32, equal to the eager result."""
    torch.manual_seed(0)
    layer = SineLayer(2, 16, omega_0=30.0, first=True)
    x = torch.rand(64, 2) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = layer(x)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, layer(x))
