import pytest
import torch
from torch import nn

from kernelnn.layers import KernelConv1d, KernelConv2d, RBFLayer, data_dependent_init


def test_templates_are_kmeans_centres_of_the_input_patches():
    # Inputs made of 3 distinct constant 3x3 patterns: the templates must land on exactly those patterns.
    torch.manual_seed(0)
    patterns = torch.tensor([-2.0, 0.5, 3.0])
    x = patterns[torch.randint(0, 3, (40,))].view(40, 1, 1, 1).expand(40, 1, 3, 3).contiguous()
    layer = KernelConv2d(1, 3, 3, kernel="l1")
    assert layer.init_from_data(x, seed=1)
    placed = layer.weight.detach().flatten(1)
    assert torch.allclose(placed.sort(dim=0).values, patterns[:, None].expand(3, 9), atol=1e-6)


def test_grouped_templates_come_from_their_own_group_and_seed_is_deterministic():
    x = torch.cat([torch.full((8, 2, 6), -5.0), torch.full((8, 2, 6), 5.0)], dim=1) + 0.01 * torch.randn(8, 4, 6)
    layer = KernelConv1d(4, 6, 3, groups=2, kernel="l2")
    layer.init_from_data(x, seed=3)
    assert (layer.weight[:3] < -4).all() and (layer.weight[3:] > 4).all()
    again = KernelConv1d(4, 6, 3, groups=2, kernel="l2")
    again.init_from_data(x, seed=3)
    assert torch.equal(layer.weight, again.weight)


def test_inner_product_kernels_keep_their_init():
    layer = KernelConv2d(2, 4, 3, kernel="polynomial")
    before = layer.weight.detach().clone()
    assert not layer.init_from_data(torch.randn(4, 2, 6, 6))
    assert torch.equal(layer.weight, before)
    with pytest.raises(ValueError, match="KernelConv2d.init_from_data: 4 patches cannot place 5 filters"):
        KernelConv2d(1, 5, 3, kernel="l2").init_from_data(torch.randn(1, 1, 4, 4))


def test_data_dependent_init_walks_the_model_and_restores_buffers():
    torch.manual_seed(0)
    first = KernelConv2d(1, 4, 3, kernel="l2", padding=1)
    second = KernelConv2d(4, 5, 3, kernel="gaussian", padding=1)
    rbf = RBFLayer(5, 6, out_features=2)
    model = nn.Sequential(first, nn.BatchNorm2d(4), nn.ReLU(), second, nn.AdaptiveAvgPool2d(1), nn.Flatten(), rbf)
    bn_state = {k: v.clone() for k, v in model[1].state_dict().items()}
    x = 3 + torch.randn(64, 1, 6, 6)
    assert data_dependent_init(model, x, seed=0) == 3
    for k, v in model[1].state_dict().items():
        assert torch.equal(v, bn_state[k])  # running statistics untouched
    # the second layer's templates were fitted to what the (already placed) first layer produces
    with torch.no_grad():
        features = model[2](model[1](first(x)))
    assert second.weight.mean().item() == pytest.approx(features.mean().item(), abs=0.2)
    assert (rbf.centers > 0).all()  # k-means of pooled Gaussian similarities (in (0, 1]), not the N(0, 1) init
