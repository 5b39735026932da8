import pytest
import torch

from kernelnn.data import make_moving_digits
from kernelnn.data.moving_digits import _trajectories, frame_change_fraction


def test_videos_show_one_moving_digit_inside_the_canvas():
    bundle = make_moving_digits(n_train=64, n_val=8, n_test=16, frames=12, canvas=32, digit_size=16)
    x, y = bundle.train.tensors
    assert x.shape == (64, 12, 1, 32, 32) and y.shape == (64,) and bundle.out_channels == 10
    assert 0 <= x.min() and x.max() <= 1
    # The digit's pixels are the same in every frame, only shifted: every frame carries the same ink.
    ink = x.sum((2, 3, 4))
    torch.testing.assert_close(ink, ink[:, :1].expand_as(ink))
    assert 0 < frame_change_fraction(x) < 0.5  # moving, and mostly background
    again = make_moving_digits(n_train=64, n_val=8, n_test=16, frames=12, canvas=32, digit_size=16)
    assert torch.equal(again.train.tensors[0], x)  # seeded


def test_trajectories_bounce_and_keep_their_speed():
    gen = torch.Generator().manual_seed(0)
    corners = _trajectories(200, 40, room=16, min_speed=1.0, max_speed=2.0, gen=gen)
    assert corners.min() >= 0 and corners.max() <= 16
    steps = (corners[:, 1:] - corners[:, :-1]).abs().max(-1).values
    assert steps.max() <= 3  # 2 px per frame, plus rounding
    # Long paths hit a wall and turn around: both directions appear along one coordinate.
    moves = torch.sign(corners[:, 1:, 0] - corners[:, :-1, 0])
    assert ((moves > 0).any(1) & (moves < 0).any(1)).float().mean() > 0.5


def test_bad_arguments():
    with pytest.raises(ValueError, match="data.source='cifar'"):
        make_moving_digits(source="cifar")
    with pytest.raises(ValueError, match="data.digit_size=40 must be <= data.canvas=32"):
        make_moving_digits(digit_size=40)
    with pytest.raises(ValueError, match="data.frames=0 must be a positive int"):
        make_moving_digits(frames=0)
