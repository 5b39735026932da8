r"""The antiderivative operator :math:`G(u)(x) = \int_0^x u(s)\,ds` on ``[0, 1)``: the first experiment of the
DeepONet paper (Lu et al. 2021, Section 3.1), with inputs drawn from a mean-zero Gaussian random field with the
squared-exponential kernel :math:`k(x, x') = \exp(-|x - x'|^2 / (2 l^2))`, length scale ``l = 0.2`` there.

Inputs are drawn on a fine grid (``solve_resolution`` points ``i / N``) from the eigendecomposition of the kernel
matrix, integrated there with the trapezoidal rule (error ``O(h^2)``, about ``1e-7`` at ``N = 1000``), and
subsampled to each requested resolution. The paper's 100 sensors are ``data.resolution=100``.
"""

from __future__ import annotations

import torch

from kernelnn.data.bundle import DataBundle, cached, check_resolutions, resolution_splits


def squared_exponential_grf(n: int, points: torch.Tensor, length_scale: float,
                            generator: torch.Generator) -> torch.Tensor:
    """``(n, len(points))`` samples of the mean-zero GRF with kernel ``exp(-|x - x'|^2 / (2 l^2))``."""
    cov = torch.exp(-((points[:, None] - points[None]) ** 2) / (2 * length_scale**2))
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    scale = eigenvalues.clamp_min(0).sqrt()  # the kernel matrix is PSD; round-off makes tiny negatives
    noise = torch.randn(n, len(points), generator=generator, dtype=points.dtype)
    return (noise * scale) @ eigenvectors.T


def antiderivative(u: torch.Tensor, h: float) -> torch.Tensor:
    """``int_0^{x_i} u`` on the grid ``x_i = i h`` by the trapezoidal rule (last dim)."""
    steps = (u[..., 1:] + u[..., :-1]) * (h / 2)
    return torch.cat([torch.zeros_like(u[..., :1]), steps.cumsum(-1)], dim=-1)


def make_antiderivative(
    resolution: int = 100,
    test_resolutions: list[int] | None = (100, 200),
    n_train: int = 1000,
    n_val: int = 100,
    n_test: int = 1000,
    length_scale: float = 0.2,
    solve_resolution: int | None = 1000,
    seed: int = 0,
    cache_dir: str | None = None,
    cache: bool = True,
    name: str = "antiderivative",
) -> DataBundle:
    """Input ``u`` and output ``int_0^x u``, both ``(n, 1, R)`` on ``x_i = i / R``; a test set per resolution."""
    tests, solve = check_resolutions("antiderivative", resolution, test_resolutions, solve_resolution)
    if not length_scale > 0:
        raise ValueError(f"antiderivative: data.length_scale={length_scale} must be positive")
    for key, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if value < (1 if key == "n_train" else 0):
            raise ValueError(f"antiderivative: data.{key}={value} must be {'positive' if key == 'n_train' else '>= 0'}")
    params = dict(n=n_train + n_val + n_test, solve_resolution=solve, length_scale=length_scale, seed=seed)

    def build() -> dict[str, torch.Tensor]:
        points = torch.arange(solve, dtype=torch.float64) / solve
        u = squared_exponential_grf(params["n"], points, length_scale, torch.Generator().manual_seed(seed))
        return {"u": u.float(), "s": antiderivative(u, 1.0 / solve).float()}

    data = cached("antiderivative", params, build, cache_dir, cache)
    x, y = data["u"].unsqueeze(1), data["s"].unsqueeze(1)

    return DataBundle(
        name=name, task="operator", **resolution_splits(x, y, solve, resolution, tests, n_train, n_val, n_test),
        in_channels=1, out_channels=1, dim=1, periodic=False,
        info={"solve_resolution": solve, "length_scale": length_scale},
    )
