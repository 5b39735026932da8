"""Classification on the sphere: (longitude, latitude) in degrees in, a class out. The location-encoding
benchmarks of Rußwurm et al. (ICLR 2024), generated here:

- ``make_land_ocean``: land or ocean at points drawn uniformly on the sphere, from the 1 km (30 arc-second) GLOBE
  land mask that the ``global-land-mask`` package ships (lakes count as land). The authors label points with
  Natural Earth's 110 m country polygons instead, which the package does not ship.
- ``make_sphere_checkerboard``: the authors' synthetic checkerboard: ``n_support`` points of a Fibonacci lattice
  carry ``n_classes`` labels in turn, and every point takes the label of its nearest support point (great-circle
  distance): Voronoi cells of equal size everywhere, poles included.

Training points are uniform on the sphere (not on the lon/lat grid, which crowds the poles). Besides the uniform
test set there is ``test_polar``, uniform on the caps beyond ``polar_latitude`` (60 degrees by default), where
double-Fourier-sphere embeddings are expected to fail.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import TensorDataset

from kernelnn.data.bundle import DataBundle, cached


def uniform_sphere(n: int, generator: torch.Generator, min_abs_latitude: float = 0.0) -> torch.Tensor:
    """``n`` points ``(n, 2)`` (longitude, latitude) in degrees, uniform on the sphere (or on the two caps
    ``|lat| >= min_abs_latitude``): ``sin(lat)`` uniform, longitude uniform."""
    lon = torch.rand(n, generator=generator, dtype=torch.float64) * 360 - 180
    z0 = math.sin(math.radians(min_abs_latitude))
    z = z0 + (1 - z0) * torch.rand(n, generator=generator, dtype=torch.float64)  # |sin(lat)| uniform in [z0, 1]
    z = z * torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).double()  # either hemisphere
    return torch.stack([lon, torch.rad2deg(torch.asin(z))], -1)


def unit_vectors(lonlat: torch.Tensor) -> torch.Tensor:
    lon, lat = torch.deg2rad(lonlat.double()).unbind(-1)
    return torch.stack([torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon), torch.sin(lat)], -1)


def fibonacci_lattice(n: int) -> torch.Tensor:
    """The authors' Fibonacci lattice of ``n`` points ``(n, 2)``: ``i = -n/2 .. n/2 - 1``,
    ``lat = asin(2 i / (n + 1))``, ``lon = (i mod phi) 360 / phi`` wrapped to ``[-180, 180)``."""
    golden = (1 + math.sqrt(5)) / 2
    i = torch.arange(-(n // 2), n - n // 2, dtype=torch.float64)
    lat = torch.rad2deg(torch.asin(2 * i / (n + 1)))
    lon = torch.remainder(i, golden) * 360 / golden
    lon = torch.remainder(lon + 180, 360) - 180
    return torch.stack([lon, lat], -1)


def _check_sizes(owner: str, **sizes: int) -> None:
    for key, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}: data.{key}={value!r} must be a positive int")


def _bundle(name: str, sets: dict[str, tuple[torch.Tensor, torch.Tensor]], n_classes: int) -> DataBundle:
    data = {k: TensorDataset(x.float(), y.long()) for k, (x, y) in sets.items()}
    return DataBundle(name=name, task="classification", train=data.pop("train"), val=data.pop("val", None),
                      tests=data, in_channels=2, out_channels=n_classes, dim=0, geometric=True,
                      field_layout={"kind": "sphere"})


def land_labels(lonlat: torch.Tensor) -> torch.Tensor:
    """1 on land, 0 on the ocean (``global_land_mask``; about 2 s and 1 GB of memory to load its mask)."""
    try:
        from global_land_mask import globe
    except ImportError:
        raise ImportError("land_ocean: the land mask comes from the global-land-mask package; "
                          "pip install 'kernelnn[data]' (or global-land-mask)") from None
    lon, lat = lonlat.double().unbind(-1)
    return torch.from_numpy(globe.is_land(lat.numpy(), lon.numpy())).long()


def make_land_ocean(n_train: int = 5000, n_val: int = 5000, n_test: int = 20_000, n_polar: int = 5000,
                    polar_latitude: float = 60.0, seed: int = 0, cache_dir: str | None = None, cache: bool = True,
                    name: str = "land_ocean") -> DataBundle:
    """Land (1) or ocean (0) at uniform points on the sphere: ``(n, 2)`` lon/lat in degrees -> ``(n,)``."""
    _check_sizes("land_ocean", n_train=n_train, n_val=n_val, n_test=n_test, n_polar=n_polar)
    if not 0 < polar_latitude < 90:
        raise ValueError(f"land_ocean: data.polar_latitude={polar_latitude} must be in (0, 90) degrees")

    def build() -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        points = {k: uniform_sphere(n, gen) for k, n in (("train", n_train), ("val", n_val), ("test", n_test))}
        points["test_polar"] = uniform_sphere(n_polar, gen, polar_latitude)
        return {**{f"{k}_x": x for k, x in points.items()}, **{f"{k}_y": land_labels(x) for k, x in points.items()}}

    params = dict(n_train=n_train, n_val=n_val, n_test=n_test, n_polar=n_polar, polar_latitude=polar_latitude,
                  seed=seed)
    data = cached("land_ocean", params, build, cache_dir, cache)
    return _bundle(name, {k: (data[f"{k}_x"], data[f"{k}_y"]) for k in ("train", "val", "test", "test_polar")}, 2)


def make_sphere_checkerboard(n_support: int = 200, n_classes: int = 16, n_train: int = 10_000, n_val: int = 2000,
                             n_test: int = 10_000, n_polar: int = 5000, polar_latitude: float = 60.0, seed: int = 0,
                             name: str = "sphere_checkerboard") -> DataBundle:
    """The authors' checkerboard: the label of the nearest of ``n_support`` Fibonacci-lattice points, which carry
    ``i mod n_classes``. Train and validation uniform; test on a ``n_test``-point Fibonacci lattice (the authors'
    test set); ``test_polar`` uniform on the polar caps."""
    _check_sizes("sphere_checkerboard", n_support=n_support, n_classes=n_classes, n_train=n_train, n_val=n_val,
                 n_test=n_test, n_polar=n_polar)
    if n_classes < 2 or n_support < n_classes:
        raise ValueError(f"sphere_checkerboard: data.n_classes={n_classes} must be at least 2 and at most "
                         f"data.n_support={n_support}")
    if not 0 < polar_latitude < 90:
        raise ValueError(f"sphere_checkerboard: data.polar_latitude={polar_latitude} must be in (0, 90) degrees")
    support = unit_vectors(fibonacci_lattice(n_support))
    support_labels = torch.arange(n_support) % n_classes

    def label(points: torch.Tensor) -> torch.Tensor:
        return support_labels[(unit_vectors(points) @ support.T).argmax(-1)]

    gen = torch.Generator().manual_seed(seed)
    points = {"train": uniform_sphere(n_train, gen), "val": uniform_sphere(n_val, gen),
              "test": fibonacci_lattice(n_test), "test_polar": uniform_sphere(n_polar, gen, polar_latitude)}
    return _bundle(name, {k: (x, label(x)) for k, x in points.items()}, n_classes)
