"""Query-point training (plugins.query_points): outputs at random grid points, fresh per sample and epoch;
evaluation on whole grids at any resolution."""

import pytest
import torch
from torch.utils.data import TensorDataset

from kernelnn.data.query_points import QueryPoints
from kernelnn.models import DeepONet, Normalized
from kernelnn.models.fno import grid_coordinates
from kernelnn.training import ConfigError, run
from kernelnn.training.checkpoint import load_checkpoint
from tests.conftest import QUIET_TRAINER, TINY_DATA, compose_config


def test_query_points_are_grid_points_with_their_exact_values():
    u, y = torch.randn(5, 1, 6, 8), torch.randn(5, 2, 6, 8)
    points = QueryPoints(TensorDataset(u, y), n_queries=7, seed=3)
    (u0, coords), values = points[2]
    assert torch.equal(u0, u[2]) and coords.shape == (7, 2) and values.shape == (7, 2)
    index = (coords * torch.tensor([6, 8])).round().long()
    assert torch.equal(values, y[2][:, index[:, 0], index[:, 1]].T)
    assert len({tuple(map(float, c)) for c in coords}) == 7  # without replacement
    assert torch.equal(points[2][0][1], coords)  # reproducible ...
    assert not torch.equal(points[3][0][1], coords)  # ... but another per sample
    points.epoch = 1
    assert not torch.equal(points[2][0][1], coords)  # ... and per epoch
    with pytest.raises(ValueError, match=r"n_queries=49 must be in \[1, 48\]"):
        QueryPoints(TensorDataset(u, y), n_queries=49)


def test_normalized_passes_queries_and_scales_channels_last():
    model = DeepONet(16, 1, out_channels=2, width=4)
    wrapped = Normalized(model, in_mean=torch.tensor([0.5]), in_std=torch.tensor([2.0]),
                         out_mean=torch.tensor([1.0, -1.0]), out_std=torch.tensor([3.0, 0.5]))
    u, coords = torch.randn(3, 1, 16), torch.rand(3, 5, 1)
    expected = model((u - 0.5) / 2.0, coords) * torch.tensor([3.0, 0.5]) + torch.tensor([1.0, -1.0])
    torch.testing.assert_close(wrapped(u, coords), expected)
    grid = grid_coordinates((16,), u).flatten(1).T[None]
    torch.testing.assert_close(wrapped(u, grid).transpose(1, 2), wrapped(u))  # the same operator on the grid


def antiderivative(*extra, model=("model=deeponet", "model.width=16")):
    return compose_config("data=antiderivative", *TINY_DATA["antiderivative"], *QUIET_TRAINER, *model,
                          "trainer.batch_size=4", "trainer.loss=l2", *extra)


def test_deeponet_trains_on_query_points_and_is_tested_on_whole_grids(tmp_path):
    summary = run(antiderivative("plugins.query_points.n_queries=10", "trainer.epochs=40", "optim.lr=3e-3",
                                 "data.n_train=64", "trainer.batch_size=16"), output_dir=tmp_path)
    history = load_checkpoint(summary["last_checkpoint"])["history"]
    assert history[-1]["train/loss"] < 0.5 * history[0]["train/loss"]  # it learns from 10 points per function
    assert set(summary["test"]) == {"test_100/l2", "test_100/h1", "test_200/l2", "test_200/h1"}
    assert summary["test"]["test_100/l2"] < 0.5  # the operator, on the whole grid and at twice the resolution
    assert abs(summary["test"]["test_200/l2"] - summary["test"]["test_100/l2"]) < 0.05


@pytest.mark.parametrize(("overrides", "message"), [
    (("FNO",),
     r"plugins.query_points.n_queries=10: the model cannot answer query points, model\(u, coords\) failed"),
    (("trainer.loss=h1",), r"query points need operator data and trainer.loss=l2"),
    (("plugins.query_points.n_queries=1000",), r"n_queries=1000 must be in \[1, 100\]"),
])
def test_query_points_refuse_what_cannot_use_them(tmp_path, overrides, message):
    if overrides == ("FNO",):
        cfg = antiderivative("plugins.query_points.n_queries=10", "trainer.epochs=1",
                             model=("model=fno", "model.n_modes=4", "model.hidden_channels=4"))
    else:
        cfg = antiderivative("plugins.query_points.n_queries=10", "trainer.epochs=1", *overrides)
    with pytest.raises(ConfigError, match=message):
        run(cfg, output_dir=tmp_path)


def test_kan_grid_updates_see_what_each_layer_sees_at_query_points(tmp_path):
    """A KAN trunk's grid follows the query coordinates it is called on (the model's input is two tensors)."""
    summary = run(antiderivative("plugins.query_points.n_queries=10", "trainer.epochs=2",
                                 "plugins.kan_grids.update_every=1",
                                 model=("model=deeponet", "model.width=8", "model.trunk_neuron=kan")),
                  output_dir=tmp_path)
    knots = load_checkpoint(summary["last_checkpoint"])["model"]["model.trunk.net.0.grid"][:, 3:-3]  # order 3
    assert knots.min() >= -0.01 and knots.max() <= 1.0  # moved from [-1, 1] onto the coordinates in [0, 1)
