"""Multi-grid patching (MG-TFNO, Kossaifi et al. 2023): run any field model on patches with coarse context.

The field ``(batch, C, H, W)`` is split into ``2^levels x 2^levels`` patches, stacked on the batch. Each patch
is circularly padded by ``padding`` pixels and gets, for every level ``l = 1..levels``, the window around it that
is ``2^l`` times larger, read from the field subsampled by ``2^l`` (so at the patch's own resolution): the
coarser the level, the wider the context. Levels are stacked as channels, so the wrapped model takes
``C * (levels + 1)`` input channels. Its patch outputs are cropped back to the patch and stitched together.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from kernelnn.layers.input_checks import check_dtype_matches


class MGPatching(nn.Module):
    """Wrap ``model`` so it sees ``2^levels x 2^levels`` patches with multi-resolution context.

    Parameters
    ----------
    model : nn.Module
        Maps ``(n, C * (levels + 1), h + 2 padding, w + 2 padding)`` to ``(n, C_out, same)``.
    levels : int
        Patches per dim ``2^levels``; also the number of coarser context levels.
    padding : int
        Pixels of (periodic) context added around each patch at every level; cropped after the model.

    Shapes: ``(batch, C, H, W) -> (batch, C_out, H, W)`` with ``H`` and ``W`` divisible by ``2^(2 levels)``, so
    that every level's window is centred on its patch exactly.
    """

    def __init__(self, model: nn.Module, levels: int = 1, padding: int = 2) -> None:
        super().__init__()
        if not isinstance(levels, int) or levels < 0:
            raise ValueError(f"MGPatching: levels={levels!r} must be an int >= 0")
        if not isinstance(padding, int) or padding < 0:
            raise ValueError(f"MGPatching: padding={padding!r} must be an int >= 0")
        self.model, self.levels, self.padding = model, levels, padding

    def check_input(self, x: torch.Tensor) -> None:
        """A 2-D field batch ``(batch, C, H, W)`` whose H and W split into ``2^levels`` patches at every level."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"MGPatching: input must be a floating-point torch.Tensor, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.dim() != 4:
            raise ValueError(f"MGPatching: input must be (batch, channels, H, W), got shape {tuple(x.shape)}")
        check_dtype_matches(x, self, "MGPatching")
        n = 2**self.levels
        height, width = x.shape[2:]
        if height % (n * n) or width % (n * n):
            raise ValueError(f"MGPatching: H and W ({height}, {width}) must be divisible by 2^(2 * levels) = {n * n} "
                             f"(levels={self.levels})")

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, C, H, W) -> (batch * P * P, C * (levels + 1), h + 2p, w + 2p)`` with ``P = 2^levels``."""
        self.check_input(x)
        n = 2**self.levels
        height, width = x.shape[2:]
        h, w, p = height // n, width // n, self.padding
        stacked = []
        for level in range(self.levels + 1):
            scale = 2**level
            field = x[..., ::scale, ::scale]  # coarser field: a patch-sized window covers `scale` patches
            rows = self._window(n, h, scale, p, field.shape[2], x.device)  # (n, h + 2p)
            cols = self._window(n, w, scale, p, field.shape[3], x.device)
            windows = field[:, :, rows][..., cols]  # (batch, C, n, h + 2p, n, w + 2p)
            stacked.append(rearrange(windows, "b c i y j x -> (b i j) c y x"))
        return torch.cat(stacked, dim=1)

    @staticmethod
    def _window(n: int, size: int, scale: int, pad: int, length: int, device) -> torch.Tensor:
        """Periodic indices, on a field subsampled by ``scale``, of the window centred on each of ``n`` patches."""
        centres = (torch.arange(n, device=device) * size + size // 2) // scale
        offsets = torch.arange(-size // 2 - pad, size - size // 2 + pad, device=device)
        return (centres[:, None] + offsets[None, :]) % length

    def stitch(self, y: torch.Tensor, batch: int) -> torch.Tensor:
        """Crop the padding off patch outputs and put them back in place: ``(batch, C_out, H, W)``."""
        n, p = 2**self.levels, self.padding
        y = y[..., p: y.shape[-2] - p, p: y.shape[-1] - p]
        return rearrange(y, "(b i j) c y x -> b c (i y) (j x)", b=batch, i=n, j=n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.patches(x)
        try:
            y = self.model(patches)
        except (TypeError, ValueError) as error:  # name the wrapper too: the patches carry levels + 1 copies of C
            if "MGPatching" in str(error):
                raise
            raise type(error)(f"MGPatching (levels={self.levels}: the wrapped {type(self.model).__name__} sees "
                              f"{patches.shape[1]} channels, {self.levels + 1} per input channel): {error}") from error
        return self.stitch(y, x.shape[0])
