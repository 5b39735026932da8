"""An image as a field: pixel coordinates in, colours out (the image-fitting task of the neural-field papers).

``data.image`` is ``china.jpg`` or ``flower.jpg`` (the two photographs scikit-learn ships, 427 x 640 RGB) or the
path of the user's own image (anything Pillow opens). Pixel ``(i, j)`` of an ``H x W`` image sits at
``(-1 + 2 i / (H - 1), -1 + 2 j / (W - 1))`` in ``[-1, 1]^2`` (rows, columns), its colour scaled to ``[0, 1]``.
The task is to represent the image: training and test sets are all its pixels (a model is judged by its
reconstruction, PSNR and SSIM); ``data.holdout`` keeps a random fraction of the pixels out of training, for a
test of interpolation between them.
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
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as opened:
                opened.load()
                mode = "L" if opened.mode in ("1", "L", "I", "I;16", "F") else "RGB"
                array = np.array(opened.convert(mode))
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
            raise ValueError(f"image: data.image={image!r} is not an image Pillow can read ({err})") from None
    array = array[..., None] if array.ndim == 2 else array
    scale = 65535.0 if array.dtype == np.uint16 else 255.0
    return torch.from_numpy(array.astype(np.float32) / scale).permute(2, 0, 1).contiguous()


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
    everything = TensorDataset(x, y)
    train = everything
    if holdout:
        keep = torch.rand(len(x), generator=torch.Generator().manual_seed(seed)) >= holdout
        train = TensorDataset(x[keep], y[keep])
    return DataBundle(
        name=name, task="field", train=train, tests={"test": everything}, in_channels=2, out_channels=channels, dim=0,
        geometric=True, field_layout={"kind": "image", "shape": [height, width], "value_range": 1.0},
        info={"image": str(image)},
    )
