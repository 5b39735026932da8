"""Whole-field metrics: SSIM equals scikit-image's, surfaces found on grid edges lie on the zero set, Chamfer and
IoU behave as their definitions say."""

import math

import pytest
import torch

from kernelnn import field_metrics


def test_ssim_equals_scikit_image():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    torch.manual_seed(0)
    truth = torch.rand(3, 40, 50, dtype=torch.float64)
    noisy = (truth + 0.1 * torch.randn_like(truth)).clamp(0, 1)
    ours = field_metrics.ssim(noisy, truth)
    theirs = skimage_metrics.structural_similarity(noisy.numpy(), truth.numpy(), channel_axis=0, data_range=1.0,
                                                   gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert ours == pytest.approx(theirs, rel=1e-9)
    assert field_metrics.ssim(truth, truth) == pytest.approx(1.0)


def test_psnr():
    a = torch.zeros(10)
    assert field_metrics.psnr(a + 0.1, a) == pytest.approx(20.0)
    assert field_metrics.psnr(a, a) == math.inf


def test_zero_crossings_of_a_sphere_lie_on_it_and_chamfer_measures_an_offset():
    r = 48
    points = field_metrics.grid_points(r).double()
    sphere = (points.norm(dim=1) - 0.5).reshape(r, r, r)
    surface = field_metrics.zero_crossings(sphere)
    assert len(surface) > 1000
    assert (surface.norm(dim=1) - 0.5).abs().max() < (2 / (r - 1)) ** 2  # linear interpolation of a smooth zero
    bigger = field_metrics.zero_crossings((points.norm(dim=1) - 0.55).reshape(r, r, r))
    assert field_metrics.chamfer_distance(surface, bigger) == pytest.approx(0.05, rel=0.05)
    assert field_metrics.chamfer_distance(surface, surface) == 0.0
    assert field_metrics.chamfer_distance(surface, surface[:0]) == math.inf


def test_iou_and_accuracy_by_latitude():
    truth = torch.tensor([-1.0, -1.0, 1.0, 1.0])
    assert field_metrics.sdf_iou(torch.tensor([-1.0, 1.0, -1.0, 1.0]), truth) == pytest.approx(1 / 3)
    assert field_metrics.sdf_iou(truth, truth) == 1.0
    lonlat = torch.tensor([[0.0, -85.0], [0.0, -80.0], [10.0, 0.0], [0.0, 90.0]])
    bands = field_metrics.accuracy_by_latitude(lonlat, torch.tensor([True, False, True, True]))
    assert bands == {"[-90, -70)": 0.5, "[-10, 10)": 1.0, "[70, 90]": 1.0}
    # a band that does not divide 180: the last one is shorter and still reaches the pole
    assert field_metrics.accuracy_by_latitude(lonlat, torch.ones(4, dtype=torch.bool), band=25)["[85, 90]"] == 1.0
