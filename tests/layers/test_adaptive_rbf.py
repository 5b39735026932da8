"""NeuRBF (AdaptiveRBF): the sinusoidal composition of normalised radial bases equals a dense reference, the k-d
tree and the GPU path find the same neighbours, weighted k-means places kernels where the signal varies (in 2-D
and 3-D), and the sinusoids survive autocast."""

import math

import pytest
import torch

from kernelnn.layers import AdaptiveRBF
from kernelnn.layers.adaptive_rbf import nearest_kernels
from kernelnn.testing import assert_gradcheck


def dense_features(model, x):
    """f_j(x) = sum_i w_ij sin(omega_j phi~_i(x)) over ALL kernels, phi~ normalised over all of them."""
    diff = x[:, None, :] - model.centers[None]
    q = torch.einsum("nmd,mde,nme->nm", diff, model.inverse_shapes(), diff)
    phi = 1 / (1 + q) if model.basis == "inverse_quadric" else torch.exp(-q / 2)
    phi = phi / (phi.sum(-1, keepdim=True) + 1e-8)  # the layer's epsilon: omega up to 2^12 amplifies it
    return torch.einsum("mc,nmc->nc", model.features, torch.sin(phi[..., None] * model.omega))


@pytest.mark.parametrize("basis", ["inverse_quadric", "gaussian"])
def test_with_every_kernel_as_a_neighbour_the_features_are_the_formula(basis):
    torch.manual_seed(0)
    model = AdaptiveRBF(2, 1, n_kernels=6, n_neighbours=6, basis=basis, feature_channels=5, grid_resolutions=(),
                        trainable_kernels=True).double()
    with torch.no_grad():
        model.features.normal_()
        model.shape_factor.mul_(torch.rand(6, 1, 1, dtype=torch.float64) + 0.5).add_(
            0.3 * torch.randn(6, 2, 2, dtype=torch.float64))
    x = torch.rand(30, 2, dtype=torch.float64) * 2 - 1
    index = model.neighbours(x)
    torch.testing.assert_close(model.radial_features(x, index), dense_features(model, x))


def test_the_k_nearest_kernels_are_the_ones_that_matter():
    """With k < M, the truncated sum is the dense one over those k kernels only: far kernels are dropped."""
    torch.manual_seed(0)
    model = AdaptiveRBF(2, 1, n_kernels=50, n_neighbours=4, grid_resolutions=()).double()
    x = torch.rand(40, 2, dtype=torch.float64) * 2 - 1
    index = model.neighbours(x)
    distances = torch.cdist(x, model.centers)
    assert torch.equal(distances.gather(1, index), distances.sort(1).values[:, :4])


def test_kd_tree_and_direct_paths_agree_in_float32():
    """The GPU path (direct differences, no |x|^2 + |c|^2 - 2 x.c shortcut) run on CPU tensors in float32 finds the
    k-d tree's neighbours, order included, at a size where the shortcut reorders near ties."""
    from kernelnn.layers.adaptive_rbf import nearest_kernels_direct

    torch.manual_seed(0)
    centers, points = torch.rand(4096, 2) * 2 - 1, torch.rand(50_000, 2) * 2 - 1
    tree = nearest_kernels(points, centers, 4)
    assert torch.equal(nearest_kernels_direct(points, centers, 4), tree)
    reference = torch.cdist(points[:2000].double(), centers.double()).topk(4, dim=1, largest=False).indices
    assert torch.equal(tree[:2000], reference)
    assert nearest_kernels(points[:0], centers, 8).shape == (0, 8)


def test_weighted_kmeans_finds_weighted_means_and_covariances():
    """Two separated blobs, one kernel each: the centre is the blob's weighted mean and K = alpha Sigma^-1 with
    Sigma its weighted covariance."""
    torch.manual_seed(0)
    a = torch.randn(400, 2, dtype=torch.float64) * torch.tensor([0.05, 0.02], dtype=torch.float64) + 0.5
    b = torch.randn(400, 2, dtype=torch.float64) * 0.03 - 0.5
    points, weights = torch.cat([a, b]), torch.rand(800, dtype=torch.float64) + 0.1
    model = AdaptiveRBF(2, 1, n_kernels=2, n_neighbours=1, grid_resolutions=()).double()
    model.init_kernels(points, weights, alpha=0.5)
    order = model.centers[:, 0].argsort(descending=True)
    for blob, w, i in ((a, weights[:400], order[0]), (b, weights[400:], order[1])):
        mean = (w[:, None] * blob).sum(0) / w.sum()
        centred = blob - mean
        cov = (w[:, None, None] * centred[:, :, None] * centred[:, None, :]).sum(0) / w.sum()
        torch.testing.assert_close(model.centers[i], mean)
        torch.testing.assert_close(model.inverse_shapes()[i], 0.5 * torch.linalg.inv(cov))


def test_3d_shapes_are_positive_definite_and_clipped():
    """In 3-D the clipped covariance must stay positive definite (clipping correlations pairwise would not): the
    eigenvalues of Sigma / alpha are clipped to [(h / 200)^2, (1 / 5)^2], h the points' spacing, so those of the
    inverse shape K lie in [25, (200 / h)^2]; a flat cluster's thickness hits the floor, a wide one the ceiling."""
    torch.manual_seed(0)
    flat = torch.rand(1500, 3, dtype=torch.float64) * 0.3 + torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64)
    flat[:, 2] = 0.0  # a planar blob: zero variance across the plane
    wide = torch.rand(1500, 3, dtype=torch.float64) * 2 - 1
    wide[:, 0] = wide[:, 0] * 0.4 - 0.6  # a wide blob, its own cluster
    model = AdaptiveRBF(3, 1, n_kernels=2, n_neighbours=1, grid_resolutions=()).double()
    model.init_kernels(torch.cat([flat, wide]))
    eigenvalues = torch.linalg.eigvalsh(model.inverse_shapes())
    h = 2 / 3000 ** (1 / 3)
    assert (eigenvalues >= 25 * (1 - 1e-9)).all() and (eigenvalues <= (200 / h) ** 2 * (1 + 1e-9)).all()
    assert eigenvalues.max() == pytest.approx((200 / h) ** 2)  # the plane's thickness: the floor
    assert eigenvalues.min() == pytest.approx(25)  # the wide blob's 2 x 0.4 x 2 extent: the ceiling


def test_image_init_puts_kernels_on_the_edges():
    """A step image: gradient magnitude is zero away from the step, so every kernel lands within a pixel or two of
    it (the points of zero weight are dropped)."""
    image = torch.zeros(3, 40, 40)
    image[:, :, 20:] = 1.0
    model = AdaptiveRBF(2, 3, n_kernels=30)
    model.init_from_image(image)
    step = -1 + 2 * 19.5 / 39  # between columns 19 and 20
    assert (model.centers[:, 1] - step).abs().max() < 2 * 2 / 39


def test_autocast_keeps_the_sinusoids_in_float32():
    """omega reaches 2^12 in the composition and omega' h about 10^3 rad in the decoder: in bfloat16 their phases
    would be noise. Under autocast the output stays within bfloat16 rounding of the float32 one."""
    torch.manual_seed(0)
    model = AdaptiveRBF(2, 3, n_kernels=64, decoder_frequencies=(30.0, 300.0))
    with torch.no_grad():
        model.features.normal_()
    x = torch.rand(500, 2) * 2 - 1
    reference = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(x)
    assert ((low.float() - reference).norm() / reference.norm()).item() < 0.02


def test_chunks_and_gradcheck():
    """gradcheck without the normalisation; with it, the gradient is the formula's with the (detached)
    denominator held at its value, which finite differences cannot see, so that is checked against autograd of
    the reference with the denominator passed as a constant."""
    torch.manual_seed(0)
    model = AdaptiveRBF(2, 2, n_kernels=8, feature_channels=3, frequencies=(1.0, 4.0), grid_resolutions=(3,),
                        hidden_features=6, trainable_kernels=True, normalize=False).double()
    x = torch.rand(12, 2, dtype=torch.float64) * 1.8 - 0.9
    assert_gradcheck(model, x)
    whole = model(x)
    model.chunk_size = 5
    torch.testing.assert_close(model(x), whole)

    model.normalize, model.n_neighbours = True, 8
    x.requires_grad_()
    grads = torch.autograd.grad(model.radial_features(x, model.neighbours(x)).sum(), (x, model.centers))
    diff = x[:, None, :] - model.centers[None]
    q = torch.einsum("nmd,mde,nme->nm", diff, model.inverse_shapes(), diff)
    phi = 1 / (1 + q)
    phi = phi / (phi.sum(-1, keepdim=True).detach() + 1e-8)
    reference = torch.einsum("mc,nmc->nc", model.features, torch.sin(phi[..., None] * model.omega)).sum()
    for a, b in zip(grads, torch.autograd.grad(reference, (x, model.centers)), strict=True):
        torch.testing.assert_close(a, b)


def test_a_small_image_is_fitted_quickly():
    """A smooth 24 x 24 image with a sharp disk: 150 full-batch Adam steps reach 30 dB."""
    torch.manual_seed(0)
    r = torch.linspace(-1, 1, 24)
    rows, cols = torch.meshgrid(r, r, indexing="ij")
    image = torch.stack([0.5 + 0.3 * torch.sin(3 * rows), ((rows**2 + cols**2) < 0.4).float(),
                         0.5 + 0.2 * torch.cos(2 * cols)])
    x, y = torch.stack([rows, cols], -1).reshape(-1, 2), image.reshape(3, -1).T
    model = AdaptiveRBF(2, 3, n_kernels=96, grid_resolutions=(8,))
    model.init_from_image(image)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(150):
        loss = (model(x) - y).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    mse = (model(x).detach() - y).square().mean().item()
    assert 10 * math.log10(1 / mse) > 30


@pytest.mark.parametrize(("build", "x", "message"), [
    (lambda: AdaptiveRBF(2, 1, n_kernels=3, n_neighbours=4), None,
     r"AdaptiveRBF: n_neighbours=4 is more than n_kernels=3"),
    (lambda: AdaptiveRBF(2, 1, basis="cauchy"), None, r"AdaptiveRBF: basis='cauchy' is not one of"),
    (lambda: AdaptiveRBF(2, 1, frequencies=(4.0, 1.0)), None, r"frequencies=\(4.0, 1.0\) must be \(low, high\)"),
    (lambda: AdaptiveRBF(2, 1, grid_resolutions=(1,)), None, r"AdaptiveRBF: grid_resolutions=\[1\]; every level"),
    (lambda: AdaptiveRBF(2, 1), torch.tensor([[2.0, 0.0]]), r"AdaptiveRBF: input coordinate 2 is outside"),
])
def test_bad_arguments_and_input_are_named(build, x, message):
    with pytest.raises(ValueError, match=message):
        build()(x)


def test_bad_initialisation_data_is_named():
    model = AdaptiveRBF(2, 1, n_kernels=10)
    with pytest.raises(ValueError, match=r"init_kernels: points must have shape \(N, 2\)"):
        model.init_kernels(torch.zeros(20, 3))
    with pytest.raises(ValueError, match=r"init_kernels: weights must be \(20,\) finite and >= 0"):
        model.init_kernels(torch.zeros(20, 2), -torch.ones(20))
    with pytest.raises(ValueError, match=r"init_kernels: 5 points of positive weight cannot place 10 kernels"):
        model.init_kernels(torch.rand(20, 2), torch.cat([torch.ones(5), torch.zeros(15)]))
    with pytest.raises(ValueError, match=r"init_kernels: points coordinate 3 is outside"):
        model.init_kernels(torch.full((20, 2), 3.0))
