"""An image as a field: pixel coordinates in, colours out (the image-fitting task of the neural-field papers).

``data.image`` is ``china.jpg`` or ``flower.jpg`` (the two photographs scikit-learn ships, 427 x 640 RGB) or the
path of the user's own image (anything Pillow opens). Pixel ``(i, j)`` of an ``H x W`` image sits at
``(-1 + 2 i / (H - 1), -1 + 2 j / (W - 1))`` in ``[-1, 1]^2`` (rows, columns), its colour scaled to ``[0, 1]``.
The task is to represent the image: training and test sets are all its pixels (a model is judged by its
reconstruction, PSNR and SSIM); ``data.holdout`` keeps a random fraction of the pixels out of training, and the
test set ``heldout`` holds them alone (interpolation between the trained pixels).

Files: 8-bit gray or colour, 16-bit gray (scaled by 65535), 32-bit float gray in ``[0, 1]``; transparent pixels
are composited over black; the EXIF orientation is applied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from kernelnn.data.bundle import DataBundle

SAMPLE_IMAGES = ("china.jpg", "flower.jpg")


def load_image(image: str) -> torch.Tensor:
    """``(channels, H, W)`` float32 in ``[0, 1]``: a scikit-learn sample image by name, or a file by path."""
    if image in SAMPLE_IMAGES:
        from sklearn.datasets import load_sample_image

        array = np.array(load_sample_image(image))
    else:
        path = Path(image).expanduser()
        if not path.is_file():
            raise ValueError(f"image: data.image={image!r} is neither one of {list(SAMPLE_IMAGES)} nor an existing "
                             "file")
        array = _read_with_pillow(path, image)
    if array.dtype == np.float32:  # a floating-point image (mode F) is taken as it is, if it is in [0, 1]
        if not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
            raise ValueError(f"image: data.image={image!r} holds floating-point values outside [0, 1]")
        scale = 1.0
    else:
        scale = 65535.0 if array.dtype == np.uint16 else 255.0
    array = array[..., None] if array.ndim == 2 else array
    return torch.from_numpy(array.astype(np.float32) / scale).permute(2, 0, 1).contiguous()


def _read_with_pillow(path: Path, image: str) -> np.ndarray:
    """The pixels as Pillow reads them, turned upright (EXIF orientation): 8-bit gray or RGB as uint8, 16-bit gray
    as uint16, 32-bit float gray as float32; transparency composited over black (premultiplied colours)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            opened.load()
            picture = ImageOps.exif_transpose(opened)
    except Image.DecompressionBombError as err:
        raise ValueError(f"image: data.image={image!r} is larger than Pillow opens by default ({err})") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"image: data.image={image!r} is not an image Pillow can read ({err})") from None
    mode = picture.mode
    if mode in ("I;16", "I;16B", "I;16L"):
        return np.array(picture).astype(np.uint16)
    if mode == "I":
        values = np.array(picture)
        if values.min() < 0 or values.max() > 65535:
            raise ValueError(f"image: data.image={image!r} is a 32-bit integer image with values outside 0..65535")
        return values.astype(np.uint16)
    if mode == "F":
        return np.array(picture).astype(np.float32)
    if "A" in mode or (mode == "P" and "transparency" in picture.info):
        rgba = np.array(picture.convert("RGBA")).astype(np.float32)
        composited = rgba[..., :3] * (rgba[..., 3:] / 255.0)
        return (np.rint(composited).astype(np.uint8)[..., :1] if mode in ("LA", "La") else
                np.rint(composited).astype(np.uint8))
    return np.array(picture.convert("L" if mode in ("1", "L") else "RGB"))


def pixel_coordinates(height: int, width: int) -> torch.Tensor:
    """``(H * W, 2)`` pixel positions in ``[-1, 1]^2``, row-major."""
    rows, cols = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
    return torch.stack([rows, cols], -1).reshape(-1, 2)


def make_image(image: str = "china.jpg", downscale: int = 1, holdout: float = 0.0, seed: int = 0,
               name: str = "image") -> DataBundle:
    """Coordinates ``(H W, 2)`` -> colours ``(H W, C)``; ``downscale`` averages ``k x k`` blocks first."""
    if isinstance(downscale, bool) or not isinstance(downscale, int) or downscale < 1:
        raise ValueError(f"image: data.downscale={downscale!r} must be an int >= 1")
    if not 0 <= holdout < 1:
        raise ValueError(f"image: data.holdout={holdout} must be in [0, 1)")
    pixels = load_image(image)
    if downscale > 1:
        pixels = torch.nn.functional.avg_pool2d(pixels[None], downscale)[0]
    channels, height, width = pixels.shape
    if min(height, width) < 2:
        raise ValueError(f"image: data.image={image!r} is {height} x {width} pixels after data.downscale="
                         f"{downscale}; at least 2 x 2 are needed")
    x, y = pixel_coordinates(height, width), pixels.reshape(channels, -1).T.contiguous()
    tests = {"test": TensorDataset(x, y)}
    layout = {"kind": "image", "shape": [height, width], "value_range": 1.0}
    train = tests["test"]
    if holdout:
        keep = torch.rand(len(x), generator=torch.Generator().manual_seed(seed)) >= holdout
        if keep.all() or not keep.any():
            raise ValueError(f"image: data.holdout={holdout} keeps {'every' if keep.all() else 'no'} pixel of the "
                             f"{height} x {width} image for training")
        train, tests["heldout"] = TensorDataset(x[keep], y[keep]), TensorDataset(x[~keep], y[~keep])
        layout["train_mask"] = keep.reshape(height, width)
    return DataBundle(name=name, task="field", train=train, tests=tests, in_channels=2, out_channels=channels, dim=0,
                      geometric=True, field_layout=layout, info={"image": str(image)})
