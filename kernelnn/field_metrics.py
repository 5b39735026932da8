"""Metrics of whole fields, the numbers the neural-field papers report: PSNR and SSIM of images, IoU and Chamfer
distance of signed distance fields, accuracy by latitude band on the sphere."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def psnr(prediction: torch.Tensor, target: torch.Tensor, value_range: float = 1.0) -> float:
    """``10 log10(value_range^2 / mean((prediction - target)^2))`` in dB."""
    mse = (prediction.double() - target.double()).square().mean().item()
    return 10 * math.log10(value_range**2 / mse) if mse > 0 else math.inf


def ssim(prediction: torch.Tensor, target: torch.Tensor, value_range: float = 1.0, sigma: float = 1.5,
         window: int = 11) -> float:
    """Structural similarity of two images ``(channels, H, W)`` (Wang, Bovik, Sheikh & Simoncelli 2004): local
    means, variances and covariance under a Gaussian window (``sigma`` 1.5, ``window`` 11), constants
    ``(0.01 L)^2`` and ``(0.03 L)^2``, averaged over the pixels whose window lies inside the image and over
    channels; as ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=L)``."""
    if prediction.shape != target.shape or prediction.dim() != 3:
        raise ValueError(f"ssim: images must both be (channels, H, W), got {tuple(prediction.shape)} and "
                         f"{tuple(target.shape)}")
    if min(prediction.shape[1:]) < window:
        raise ValueError(f"ssim: images of {tuple(prediction.shape[1:])} pixels are smaller than the {window}-pixel "
                         "window")
    x, y = prediction.double()[:, None], target.double()[:, None]
    offsets = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-offsets.square() / (2 * sigma**2))
    g = (g / g.sum())
    kernel = (g[:, None] * g[None, :])[None, None]

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * value_range) ** 2, (0.03 * value_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean().item()


def grid_points(resolution: int, dim: int = 3) -> torch.Tensor:
    """``(resolution^dim, dim)`` points of a regular grid on ``[-1, 1]^dim`` (row-major, first axis slowest)."""
    axes = torch.meshgrid(*[torch.linspace(-1, 1, resolution)] * dim, indexing="ij")
    return torch.stack(axes, -1).reshape(-1, dim)


def sdf_iou(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Intersection over union of the insides (``< 0``) of two distance fields sampled at the same points."""
    inside_p, inside_t = prediction < 0, target < 0
    union = (inside_p | inside_t).sum().item()
    return (inside_p & inside_t).sum().item() / union if union else 1.0


def zero_crossings(values: torch.Tensor) -> torch.Tensor:
    """Points ``(n, 3)`` of the surface of a field sampled on a regular grid ``(R, R, R)`` over ``[-1, 1]^3``: on
    every grid edge whose end values change sign, the linearly interpolated zero (the vertices marching cubes
    would place)."""
    r = values.shape[0]
    h = 2 / (r - 1)
    coords = torch.linspace(-1, 1, r, dtype=torch.float64)
    points = []
    v = values.double()
    for axis in range(3):
        a = v.narrow(axis, 0, r - 1)
        b = v.narrow(axis, 1, r - 1)
        crossing = (a < 0) != (b < 0)
        index = crossing.nonzero()
        if not len(index):
            continue
        va, vb = a[crossing], b[crossing]
        t = va / (va - vb)
        p = coords[index]
        p[:, axis] = p[:, axis] + t * h
        points.append(p)
    return torch.cat(points) if points else torch.zeros(0, 3, dtype=torch.float64)


def chamfer_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Symmetric Chamfer distance between point sets ``(n, d)`` and ``(m, d)``: the mean distance from each point
    to the other set's nearest, averaged over both directions (k-d trees, exact)."""
    if not len(a) or not len(b):
        return math.inf
    from scipy.spatial import cKDTree

    a_np, b_np = a.double().cpu().numpy(), b.double().cpu().numpy()
    ab = cKDTree(b_np).query(a_np)[0].mean()
    ba = cKDTree(a_np).query(b_np)[0].mean()
    return float((ab + ba) / 2)


def accuracy_by_latitude(lonlat: torch.Tensor, correct: torch.Tensor, band: float = 20.0) -> dict[str, float]:
    """Accuracy in latitude bands of ``band`` degrees from -90 (the authors' 9 bands of 20 degrees), keyed
    ``"[lo, hi)"``, the last ``"[lo, 90]"`` (shorter when ``band`` does not divide 180); bands without points are
    left out."""
    if not 0 < band <= 180:
        raise ValueError(f"accuracy_by_latitude: band={band} must be in (0, 180] degrees")
    lat = lonlat[:, 1].double()
    out = {}
    edges = [*torch.arange(-90, 90, band, dtype=torch.float64).tolist(), 90.0]  # the last band ends at 90
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        last = hi == 90.0
        inside = (lat >= lo) & ((lat <= hi) if last else (lat < hi))
        if inside.any():
            out[f"[{lo:g}, {hi:g}{']' if last else ')'}"] = correct[inside].float().mean().item()
    return out
