r"""Signed distance fields of analytic shapes: points of ``[-1, 1]^3`` in, the signed distance to the surface out
(negative inside), the geometry-fitting task of the neural-field papers without a mesh to download.

Shapes (``data.shape``), each centred in the box:

- ``sphere``: radius ``0.6``;
- ``torus``: major radius ``0.5``, minor ``0.2``, around the third axis;
- ``box``: half sides ``(0.5, 0.35, 0.25)`` with edges rounded by ``0.05``;
- ``blend``: the smooth union of a sphere, a torus and a box (the polynomial smooth minimum with ``k = 0.1``,
  applied twice: ``smin(smin(sphere, torus), box)``).

The distances of the first three are exact (Quilez's formulas). The smooth union is below the exact union's
distance by at most ``k / 4`` for two shapes; nested for three, by at most ``k / 4 + 9 k / 64`` (``0.39 k``) where
all three meet. Its zero set is the blended surface and its gradient has norm at most 1; training targets are its
values.

Samples follow the papers (DeepSDF, NeuRBF, GNF): half of them near the surface (surface points moved along the
normal by ``N(0, near_std^2)``) and half uniform in the box. The test set is drawn the same way from another seed;
full-field metrics (IoU of the inside, Chamfer distance between the surfaces) come from a grid
(:class:`~kernelnn.training.plugins.field_report.FieldReport`).
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from kernelnn.data.bundle import DataBundle, cached

SHAPES = ("sphere", "torus", "box", "blend")


def _length(v: torch.Tensor) -> torch.Tensor:
    return v.norm(dim=-1)


def sphere_sdf(p: torch.Tensor, center=(0.0, 0.0, 0.0), radius: float = 0.6) -> torch.Tensor:
    return _length(p - p.new_tensor(center)) - radius


def torus_sdf(p: torch.Tensor, center=(0.0, 0.0, 0.0), major: float = 0.5, minor: float = 0.2) -> torch.Tensor:
    q = p - p.new_tensor(center)
    ring = _length(q[..., :2]) - major
    return torch.hypot(ring, q[..., 2]) - minor


def box_sdf(p: torch.Tensor, center=(0.0, 0.0, 0.0), half=(0.5, 0.35, 0.25), rounding: float = 0.05) -> torch.Tensor:
    q = (p - p.new_tensor(center)).abs() - (p.new_tensor(half) - rounding)
    outside = _length(q.clamp_min(0))
    inside = q.max(-1).values.clamp_max(0)
    return outside + inside - rounding


def smooth_min(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    """Quilez's polynomial smooth minimum: ``min(a, b) - h^2 k / 4`` with ``h = max(k - |a - b|, 0) / k``."""
    h = (k - (a - b).abs()).clamp_min(0) / k
    return torch.minimum(a, b) - h * h * k / 4


BLEND_K = 0.1


def blend_parts(p: torch.Tensor) -> list[torch.Tensor]:
    """The exact distances of the three shapes the ``blend`` joins: a sphere, a torus, a box."""
    return [sphere_sdf(p, (-0.35, 0.0, 0.0), 0.35), torus_sdf(p, (0.3, 0.0, 0.0), 0.35, 0.12),
            box_sdf(p, (0.1, 0.0, -0.25), (0.55, 0.2, 0.12), 0.03)]


def shape_sdf(shape: str, p: torch.Tensor) -> torch.Tensor:
    """Signed distance ``(...)`` of points ``p (..., 3)`` to ``shape``."""
    if shape == "sphere":
        return sphere_sdf(p)
    if shape == "torus":
        return torus_sdf(p)
    if shape == "box":
        return box_sdf(p)
    if shape == "blend":
        parts = blend_parts(p)
        return smooth_min(smooth_min(parts[0], parts[1], BLEND_K), parts[2], BLEND_K)
    raise ValueError(f"sdf: data.shape={shape!r} is not one of {list(SHAPES)}")


def surface_points(shape: str, n: int, generator: torch.Generator, steps: int = 40) -> torch.Tensor:
    """``n`` points on the zero set: uniform points moved ``steps`` times along ``-sdf grad(sdf)`` (one step lands
    on the surface of an exact distance field; the blended one, whose gradient is shorter than 1 where shapes
    meet, needs more), in float64."""
    p = torch.rand(n, 3, generator=generator, dtype=torch.float64) * 2 - 1
    with torch.enable_grad():  # the normals come from autograd, also when the caller builds data under no_grad
        for _ in range(steps):
            p.requires_grad_(True)
            d = shape_sdf(shape, p)
            (grad,) = torch.autograd.grad(d.sum(), p)
            p = (p - d[:, None] * grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-12)).detach()
    return p


def sdf_samples(shape: str, n: int, near_std: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points ``(n, 3)`` in ``[-1, 1]^3`` (half near the surface, half uniform) and their distances ``(n, 1)``."""
    n_near = n // 2
    near = surface_points(shape, n_near, generator)
    near = near + near_std * torch.randn(near.shape, generator=generator, dtype=torch.float64)
    uniform = torch.rand(n - n_near, 3, generator=generator, dtype=torch.float64) * 2 - 1
    points = torch.cat([near, uniform]).clamp(-1, 1)
    return points.float(), shape_sdf(shape, points)[:, None].float()


def make_sdf(shape: str = "blend", n_train: int = 200_000, n_test: int = 100_000, near_std: float = 0.02,
             seed: int = 0, cache_dir: str | None = None, cache: bool = True, name: str = "sdf") -> DataBundle:
    """Points ``(n, 3)`` -> signed distances ``(n, 1)`` of an analytic shape."""
    if shape not in SHAPES:
        raise ValueError(f"sdf: data.shape={shape!r} is not one of {list(SHAPES)}")
    for key, value in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"sdf: data.{key}={value!r} must be an int >= 2")
    if not 0 <= near_std <= 1:
        raise ValueError(f"sdf: data.near_std={near_std} must be in [0, 1]")

    def build() -> dict[str, torch.Tensor]:
        train = sdf_samples(shape, n_train, near_std, torch.Generator().manual_seed(seed))
        test = sdf_samples(shape, n_test, near_std, torch.Generator().manual_seed(seed + 1))
        return {"train_x": train[0], "train_y": train[1], "test_x": test[0], "test_y": test[1]}

    params = dict(shape=shape, n_train=n_train, n_test=n_test, near_std=near_std, seed=seed)
    data = cached("sdf", params, build, cache_dir, cache)
    train, test = (data["train_x"], data["train_y"]), (data["test_x"], data["test_y"])
    return DataBundle(name=name, task="field", train=TensorDataset(*train), tests={"test": TensorDataset(*test)},
                      in_channels=3, out_channels=1, dim=0, geometric=True,
                      field_layout={"kind": "sdf", "shape": shape})
