"""BochnerFNO: call-time output length, the residual connection from the last input frame, and its refusals
(registration in kernelnn.models runs the registry matrix: gradients, gradcheck, autocast, compile, round trip)."""

import pytest
import torch

from kernelnn.models import BochnerFNO


def small(**kwargs):
    torch.manual_seed(0)
    return BochnerFNO(3, 4, **{"n_modes": (3, 3, 2), "hidden_channels": 4, "n_layers": 2, **kwargs})


def test_the_number_of_output_frames_is_chosen_at_call_time():
    model, x = small(), torch.randn(2, 3, 8, 8)
    assert model(x).shape == (2, 4, 8, 8)
    assert model(x, out_steps=10).shape == (2, 10, 8, 8)
    assert model(x, out_steps=2).shape == (2, 2, 8, 8)


def test_without_its_output_weights_the_model_repeats_the_last_input_frame():
    model, x = small(), torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        model.output.weight.weight.zero_()
    torch.testing.assert_close(model(x), x[:, -1:].expand(-1, 4, -1, -1))


def test_the_output_layer_is_linear_and_anchored_at_the_last_input_frame():
    model, x = small(), torch.randn(2, 3, 8, 8)
    latent = model.latent(x)
    field = model.output(latent)
    # decode(a F1 + b F2) - x_last = a (decode(F1) - x_last) + b (decode(F2) - x_last): no activation after it
    other = torch.randn_like(field)
    combined = model.decode(2 * field + 3 * other, x) - x[:, -1:]
    separate = 2 * (model.decode(field, x) - x[:, -1:]) + 3 * (model.decode(other, x) - x[:, -1:])
    torch.testing.assert_close(combined, separate)
    # the field's value at s = 0 (the last input frame's time) is subtracted, so a constant-in-time field adds nothing
    constant = field[..., :1].expand_as(field)
    torch.testing.assert_close(model.decode(constant, x), x[:, -1:].expand(-1, 4, -1, -1))


def test_full_output_modes_reach_the_grids_nyquist():
    model = small()
    assert model.full_output_modes((32, 32)) == (16, 16, 4)  # time grid 4 + 4 padding frames -> 8 -> 4 modes
    assert model.full_output_modes((32, 32), out_steps=10) == (16, 16, 10)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match=r"BochnerFNO: n_modes=\[3, 3\] needs 3 positive ints"):
        BochnerFNO(3, 4, n_modes=(3, 3))
    with pytest.raises(ValueError, match=r"BochnerFNO: time_padding=0 must be a fraction"):
        BochnerFNO(3, 4, time_padding=0)
    model = small(time_padding=0.5)
    with pytest.raises(ValueError, match="BochnerFNO: out_steps=3 with time_padding=0.5 pads 1.5 frames"):
        model(torch.randn(1, 3, 8, 8), out_steps=3)
    with pytest.raises(ValueError, match="BochnerFNO: out_steps=0 must be a positive int"):
        small()(torch.randn(1, 3, 8, 8), out_steps=0)
    with pytest.raises(ValueError, match=r"BochnerFNO: input must have shape \(batch, 3, X, Y\)"):
        small()(torch.randn(1, 4, 8, 8))


def test_the_default_out_steps_must_fit_the_time_padding():
    with pytest.raises(ValueError, match="BochnerFNO: out_steps=3 with time_padding=0.5 pads 1.5 frames"):
        BochnerFNO(3, 3, n_modes=(3, 3, 2), time_padding=0.5)
    with pytest.raises(ValueError, match="BochnerFNO: in_channels=True must be a positive int"):
        BochnerFNO(True, 4)
