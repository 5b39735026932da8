"""Field data: images as pixel fields (shipped or the user's own file), exact signed distances of analytic
shapes, and points on the sphere, uniform, labelled by the land mask or the checkerboard."""

import math

import numpy as np
import pytest
import torch

from kernelnn.data import make_image, make_land_ocean, make_sdf, make_sphere_checkerboard
from kernelnn.data.sdf import shape_sdf, surface_points
from kernelnn.data.sphere import fibonacci_lattice, uniform_sphere, unit_vectors


def test_the_sample_image_is_a_field_of_its_pixels():
    bundle = make_image("china.jpg", downscale=4)
    x, y = bundle.train.tensors
    height, width = bundle.field_layout["shape"]
    assert (height, width) == (106, 160) and x.shape == (height * width, 2) and y.shape == (height * width, 3)
    assert x.min() == -1 and x.max() == 1 and 0 <= y.min() and y.max() <= 1
    torch.testing.assert_close(x[width + 2], torch.tensor([-1 + 2 / (height - 1), -1 + 4 / (width - 1)]))
    assert bundle.task == "field" and bundle.geometric and bundle.in_channels == 2 and bundle.out_channels == 3


def test_a_users_image_file_and_a_holdout(tmp_path):
    from PIL import Image

    pixels = (np.arange(12 * 9).reshape(12, 9) * 2).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "gray.png")
    bundle = make_image(str(tmp_path / "gray.png"), holdout=0.5)
    x, y = bundle.tests["test"].tensors
    assert y.shape == (108, 1) and y[5, 0].item() == pytest.approx(10 / 255)
    assert 30 < len(bundle.train) < 80  # about half the pixels train, the others are the heldout test set
    mask = bundle.field_layout["train_mask"].reshape(-1)
    assert torch.equal(bundle.train.tensors[0], x[mask]) and torch.equal(bundle.tests["heldout"].tensors[0], x[~mask])


def test_image_files_of_every_depth_and_transparency(tmp_path):
    """16-bit gray scales by 65535, float gray is taken as it is, transparency is composited over black, and the
    EXIF orientation turns the picture upright."""
    from PIL import Image

    ramp = (np.arange(6 * 4).reshape(6, 4) * 2000).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    y = make_image(str(tmp_path / "deep.png")).tests["test"].tensors[1]
    torch.testing.assert_close(y[:, 0], torch.from_numpy(ramp.reshape(-1) / 65535.0).float())
    floats = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    Image.fromarray(floats, mode="F").save(tmp_path / "float.tif")
    y = make_image(str(tmp_path / "float.tif")).tests["test"].tensors[1]
    torch.testing.assert_close(y[:, 0], torch.from_numpy(floats.reshape(-1)))
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0], rgba[0, 0, 3], rgba[0, 1, 3] = 255, 255, 0  # red; opaque, transparent, transparent, transparent
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "alpha.png")
    y = make_image(str(tmp_path / "alpha.png")).tests["test"].tensors[1]
    assert y.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    picture = Image.fromarray(np.arange(6, dtype=np.uint8).reshape(2, 3) * 40)
    exif = picture.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    picture.save(tmp_path / "turned.jpg", exif=exif, quality=100)
    assert make_image(str(tmp_path / "turned.jpg")).field_layout["shape"] == [3, 2]
    bad = (np.ones((2, 2)) * 3).astype(np.float32)
    Image.fromarray(bad, mode="F").save(tmp_path / "hot.tif")
    with pytest.raises(ValueError, match=r"holds floating-point values outside \[0, 1\]"):
        make_image(str(tmp_path / "hot.tif"))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"image": "missing.png"}, r"image: data.image='missing.png' is neither one of \['china.jpg', 'flower.jpg'\]"),
    ({"downscale": 0}, r"image: data.downscale=0 must be an int >= 1"),
    ({"holdout": 1.0}, r"image: data.holdout=1.0 must be in \[0, 1\)"),
    ({"downscale": 400}, r"is 1 x 1 pixels after data.downscale=400"),
])
def test_bad_image_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_image(**kwargs)


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    with pytest.raises(ValueError, match=r"image: data.image=.*notes.png' is not an image Pillow can read"):
        make_image(str(path))


@pytest.mark.parametrize("shape", ["sphere", "torus", "box"])
def test_exact_distances_have_unit_gradient_and_vanish_on_the_surface(shape):
    """An exact signed distance has |grad| = 1 away from the medial axis; surface points are zeros."""
    gen = torch.Generator().manual_seed(0)
    p = (torch.rand(500, 3, generator=gen, dtype=torch.float64) * 2 - 1).requires_grad_()
    (grad,) = torch.autograd.grad(shape_sdf(shape, p).sum(), p)
    assert (grad.norm(dim=1) - 1).abs().median() < 1e-9
    assert shape_sdf(shape, surface_points(shape, 200, gen)).abs().max() < 1e-9


def test_sdf_samples_half_near_the_surface():
    bundle = make_sdf("blend", n_train=2000, n_test=100, cache=False)
    x, y = bundle.train.tensors
    assert x.shape == (2000, 3) and y.shape == (2000, 1) and x.abs().max() <= 1
    torch.testing.assert_close(y[:, 0], shape_sdf("blend", x.double()).float())
    assert (y[:1000].abs() < 0.1).float().mean() > 0.95  # the near-surface half
    assert (y[1000:].abs() < 0.1).float().mean() < 0.6


def test_the_smooth_union_is_below_the_union_by_its_bound():
    """Two fields: at most k / 4 below their minimum, equal where they differ by k or more. The blend nests two
    smooth minima: at most k / 4 + 9 k / 64 below the union of its three shapes (checked on a grid)."""
    from kernelnn.data.sdf import BLEND_K, blend_parts, smooth_min

    a, b = torch.linspace(-1, 1, 101)[:, None], torch.linspace(-1, 1, 101)[None, :]
    blended, union = smooth_min(a, b, 0.1), torch.minimum(a, b)
    assert (blended <= union).all() and (union - blended).max() == pytest.approx(0.1 / 4)
    assert torch.equal(blended[(a - b).abs() >= 0.1], union[(a - b).abs() >= 0.1])
    axis = torch.linspace(-1, 1, 81, dtype=torch.float64)
    p = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    parts = blend_parts(p)
    gap = torch.minimum(torch.minimum(parts[0], parts[1]), parts[2]) - shape_sdf("blend", p)
    assert gap.min() >= 0 and gap.max() <= BLEND_K * (1 / 4 + 9 / 64) and gap.max() > BLEND_K / 4


def test_sdf_data_can_be_built_without_gradients():
    with torch.no_grad():
        bundle = make_sdf("torus", n_train=10, n_test=10, cache=False)
    assert bundle.train.tensors[0].shape == (10, 3)


def test_uniform_points_on_the_sphere_and_the_polar_caps():
    gen = torch.Generator().manual_seed(0)
    points = uniform_sphere(100_000, gen)
    z = torch.sin(torch.deg2rad(points[:, 1]))
    assert abs(z.mean()) < 0.01 and abs(z.var() - 1 / 3) < 0.01  # sin(lat) uniform on [-1, 1]
    assert points[:, 0].min() >= -180 and points[:, 0].max() <= 180
    caps = uniform_sphere(1000, gen, 60.0)
    assert caps[:, 1].abs().min() >= 60 and (caps[:, 1] > 0).float().mean().item() == pytest.approx(0.5, abs=0.06)


def test_the_checkerboard_is_the_nearest_support_points_class():
    bundle = make_sphere_checkerboard(n_support=50, n_classes=5, n_train=300, n_val=10, n_test=200, n_polar=20)
    support = unit_vectors(fibonacci_lattice(50))
    x, y = bundle.train.tensors
    nearest = (unit_vectors(x) @ support.T).argmax(1)
    assert torch.equal(y, nearest % 5)
    lattice = fibonacci_lattice(200)
    assert lattice[:, 1].abs().max() < 90 and lattice[:, 0].abs().max() <= 180
    assert (lattice[:, 1].sort().values.diff() > 0).all()  # one point per latitude ring
    assert set(bundle.tests) == {"test", "test_polar"} and bundle.out_channels == 5


def test_land_ocean_labels_known_places():
    pytest.importorskip("global_land_mask")
    from kernelnn.data.sphere import land_labels

    # California, the Gulf of Guinea, the Netherlands, the South Atlantic, Australia
    places = torch.tensor([[-120.0, 40.0], [0.0, 0.0], [5.6, 52.0], [-30.0, -40.0], [135.0, -25.0]])
    assert land_labels(places).tolist() == [1, 0, 1, 0, 1]
    bundle = make_land_ocean(n_train=4000, n_val=10, n_test=10, n_polar=10, cache=False)
    assert abs(bundle.train.tensors[1].float().mean().item() - 0.29) < 0.03  # land is 29% of the surface


@pytest.mark.parametrize(("build", "message"), [
    (lambda: make_sdf("cube"), r"sdf: data.shape='cube' is not one of"),
    (lambda: make_sdf(n_train=1), r"sdf: data.n_train=1 must be an int >= 2"),
    (lambda: make_sphere_checkerboard(n_support=3, n_classes=4), r"data.n_classes=4 must be at least 2 and at most"),
    (lambda: make_land_ocean(polar_latitude=95), r"land_ocean: data.polar_latitude=95 must be in \(0, 90\)"),
    (lambda: make_land_ocean(n_train=0), r"land_ocean: data.n_train=0 must be a positive int"),
])
def test_bad_field_data_arguments_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_the_lattice_follows_the_authors_formula():
    lattice = fibonacci_lattice(10)  # i = -5 .. 4: lat = asin(2 i / 11), lon = (i mod phi) 360 / phi
    golden = (1 + math.sqrt(5)) / 2
    assert lattice[0, 1].item() == pytest.approx(math.degrees(math.asin(-10 / 11)))
    lon = ((-5) % golden) * 360 / golden
    assert lattice[0, 0].item() == pytest.approx((lon + 180) % 360 - 180)
