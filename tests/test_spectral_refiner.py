"""Spectral-Refiner's test-time refinement: the unlocked layer starts as the trained one, the estimator falls, the
model is untouched, and trajectories are refined independently."""

import pytest
import torch

from kernelnn.data.grf import periodic_grf
from kernelnn.data.navier_stokes import fno_forcing, solve_navier_stokes
from kernelnn.models import FNO, BochnerFNO
from kernelnn.navier_stokes_residual import NavierStokesResidual
from kernelnn.spectral_refiner import refine_trajectories

N, STEPS = 16, 4


def setting():
    torch.manual_seed(0)
    model = BochnerFNO(2, STEPS, n_modes=(3, 3, 2), hidden_channels=4, n_layers=2)
    w0 = periodic_grf(3, N, 2, alpha=2.5, tau=7.0, sigma=7.0**1.5, generator=torch.Generator().manual_seed(1))
    frames = solve_navier_stokes(w0, fno_forcing(N), 1e-3, 0.2, 2, 0.01)[:, 1:].float()  # two frames 0.1 apart
    return model, frames, NavierStokesResidual(1e-3, 0.1)


def test_without_iterations_the_unlocked_layer_reproduces_the_model():
    model, x, estimator = setting()
    result = refine_trajectories(model, x, estimator, iterations=0)
    with torch.no_grad():
        expected = model(x).double()
    torch.testing.assert_close(result.initial, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(result.predictions, result.initial)
    torch.testing.assert_close(result.residual_after, result.residual_before)


def test_refinement_lowers_the_estimator_and_leaves_the_model_alone():
    model, x, estimator = setting()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = refine_trajectories(model, x, estimator, iterations=20)
    assert (result.residual_after < 0.5 * result.residual_before).all(), (result.residual_before, result.residual_after)
    assert result.predictions.shape == (3, STEPS, N, N) and result.seconds > 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert model.output.n_modes == (3, 3, 2)


def test_each_trajectory_is_refined_on_its_own():
    model, x, estimator = setting()
    model, x = model.double(), x.double()  # float32 features differ with the batch size in their last bits
    together = refine_trajectories(model, x, estimator, iterations=5, optimizer="adam", lr=1e-2, batch_size=3)
    alone = refine_trajectories(model, x[1:2], estimator, iterations=5, optimizer="adam", lr=1e-2, batch_size=1)
    torch.testing.assert_close(together.predictions[1:2], alone.predictions)


def test_bad_calls_are_refused():
    model, x, estimator = setting()
    with pytest.raises(TypeError, match="refine_trajectories: model must be a BochnerFNO"):
        refine_trajectories(FNO(2, 2, n_modes=(3, 3)), x, estimator)
    with pytest.raises(ValueError, match="refine_trajectories: optimizer='sgd' is not one of"):
        refine_trajectories(model, x, estimator, optimizer="sgd")
    with pytest.raises(ValueError, match="BochnerFNO: input must have shape"):
        refine_trajectories(model, x[:, :1], estimator)


def test_inputs_are_cast_to_the_models_dtype_and_autocast_does_not_reach_the_features():
    model, x, estimator = setting()
    model = model.double()
    plain = refine_trajectories(model, x, estimator, iterations=0)  # float32 inputs, float64 model
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = refine_trajectories(model, x, estimator, iterations=0)
    torch.testing.assert_close(under_autocast.initial, plain.initial)


def test_the_estimator_of_a_bundle_follows_the_requested_frames():
    from kernelnn.data.navier_stokes import make_navier_stokes

    bundle = make_navier_stokes(resolution=16, test_resolutions=[16], n_train=2, n_val=1, n_test=1, t_final=0.4,
                                record_steps=4, input_steps=2, output_steps=2, dt=0.05, cache=False)
    assert NavierStokesResidual.for_bundle(bundle).time_step == pytest.approx(0.1)
    assert NavierStokesResidual.for_bundle(bundle, out_steps=4).time_step == pytest.approx(0.05)  # same horizon
