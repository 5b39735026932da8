r"""The Gaunt tensor product as a layer: channel-wise products with learnable per-degree weights.

Luo et al.'s parameterisation: each input is re-weighted per (channel, degree), the two spherical functions are
multiplied (:func:`~kernelnn.layers.gaunt.gaunt_tensor_product`), and the product is re-weighted per
(channel, degree) again, optionally followed by a channel-mixing linear map per output degree. Every step acts
on whole degrees, so the layer is as equivariant as the product.

``parities="all"`` ("The Price of Freedom", Xie et al.): features carry both parity classes of every degree,
``x[..., 0, :]`` transforming like functions on the sphere (parity :math:`(-1)^l`: ``0e + 1o + 2e + ...``) and
``x[..., 1, :]`` like pseudo-functions (parity :math:`-(-1)^l`: ``0o + 1e + 2o + ...``). A product of two of the
same class is a function, of different classes a pseudo-function; all four combinations are computed (with their
own weights), so odd-parity inputs are supported.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from kernelnn.layers.gaunt import METHODS, gaunt_tensor_product
from kernelnn.layers.spherical_harmonics import NORMALIZATIONS, degrees_of, sh_dim

PARITIES = ("sphere", "all")
# (class of x, class of y) -> class of the product; 0: parity (-1)^l, 1: -(-1)^l.
_COMBINATIONS = ((0, 0), (1, 1), (0, 1), (1, 0))


class GauntTensorProduct(nn.Module):
    r"""Channel-wise Gaunt tensor product with learnable per-(channel, degree) weights.

    Parameters
    ----------
    L1, L2, L_out : int
        Degrees of the two inputs and of the output.
    channels : int
        Channels, multiplied channel by channel.
    mix_channels : bool
        Follow the product with a learnable ``channels x channels`` linear map per output degree (and class).
    parities : {"sphere", "all"}
        ``"sphere"``: features ``(..., channels, (L+1)^2)`` with parity :math:`(-1)^l`; ``"all"``: features
        ``(..., channels, 2, (L+1)^2)`` with both classes (module docstring).
    method, normalization :
        As in :func:`~kernelnn.layers.gaunt.gaunt_tensor_product`.

    Shapes: ``x (..., channels, [2,] (L1+1)^2)``, ``y (..., channels, [2,] (L2+1)^2)`` (leading dims broadcast)
    ``-> (..., channels, [2,] (L_out+1)^2)``.

    Source: Luo et al., "Enabling Efficient Equivariant Operations in the Fourier Basis via Gaunt Tensor
    Products" (ICLR 2024); Xie et al., "The Price of Freedom" (all parities).

    Example
    -------
    >>> layer = GauntTensorProduct(2, 2, 4, channels=8)
    >>> layer(torch.randn(16, 8, 9), torch.randn(16, 8, 9)).shape
    torch.Size([16, 8, 25])
    """

    def __init__(self, L1: int, L2: int, L_out: int, channels: int, mix_channels: bool = False,
                 parities: str = "sphere", method: str = "auto", normalization: str = "integral") -> None:
        super().__init__()
        for arg, value in (("L1", L1), ("L2", L2), ("L_out", L_out)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"GauntTensorProduct: {arg}={value!r} must be an int >= 0")
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"GauntTensorProduct: channels={channels!r} must be a positive int")
        if parities not in PARITIES:
            raise ValueError(f"GauntTensorProduct: parities={parities!r}; valid: {', '.join(PARITIES)}")
        if method not in METHODS:
            raise ValueError(f"GauntTensorProduct: method={method!r}; valid: {', '.join(METHODS)}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"GauntTensorProduct: normalization={normalization!r}; valid: "
                             f"{', '.join(NORMALIZATIONS)}")
        self.L1, self.L2, self.L_out, self.channels = L1, L2, L_out, channels
        self.parities, self.method, self.normalization = parities, method, normalization
        combinations = len(_COMBINATIONS) if parities == "all" else 1
        self.weight1 = nn.Parameter(torch.ones(combinations, channels, L1 + 1))
        self.weight2 = nn.Parameter(torch.ones(combinations, channels, L2 + 1))
        # Two combinations feed each class with all parities: start each at 1/sqrt(2).
        self.weight_out = nn.Parameter(torch.full((combinations, channels, L_out + 1),
                                                  1 / math.sqrt(max(1, combinations // 2))))
        classes = 2 if parities == "all" else 1
        if mix_channels:
            mix = torch.randn(classes, L_out + 1, channels, channels) / math.sqrt(channels)
            self.mix = nn.Parameter(mix)
        else:
            self.register_parameter("mix", None)
        for name, L in (("degrees1", L1), ("degrees2", L2), ("degrees_out", L_out)):
            self.register_buffer(name, degrees_of(L), persistent=False)

    def extra_repr(self) -> str:
        return (f"L1={self.L1}, L2={self.L2}, L_out={self.L_out}, channels={self.channels}, "
                f"parities={self.parities!r}, mix_channels={self.mix is not None}, method={self.method!r}")

    def _check(self, t: torch.Tensor, L: int, name: str) -> None:
        classes = (2,) if self.parities == "all" else ()
        expected = (self.channels, *classes, sh_dim(L))
        if t.dim() < len(expected) or tuple(t.shape[-len(expected):]) != expected:
            layout = f"(..., {self.channels}, {'2, ' if classes else ''}{sh_dim(L)})"
            raise ValueError(f"GauntTensorProduct: {name} must have shape {layout} (channels, "
                             f"{'parity classes, ' if classes else ''}(L+1)^2 with L={L}), got {tuple(t.shape)}")

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._check(x, self.L1, "x")
        self._check(y, self.L2, "y")
        w1 = self.weight1[..., self.degrees1]  # (combinations, channels, (L1+1)^2)
        w2 = self.weight2[..., self.degrees2]
        w_out = self.weight_out[..., self.degrees_out]
        if self.parities == "sphere":
            z = gaunt_tensor_product(x * w1[0], y * w2[0], self.L_out, method=self.method,
                                     normalization=self.normalization) * w_out[0]
            return self._mix(z.unsqueeze(-2)).squeeze(-2) if self.mix is not None else z
        # All four class combinations in one call: stack them in front of the channel axis.
        first = torch.stack([x[..., a, :] for a, _ in _COMBINATIONS], -3) * w1
        second = torch.stack([y[..., b, :] for _, b in _COMBINATIONS], -3) * w2
        products = gaunt_tensor_product(first, second, self.L_out, method=self.method,
                                        normalization=self.normalization) * w_out  # (..., 4, channels, d_out)
        functions = products[..., 0, :, :] + products[..., 1, :, :]
        pseudo = products[..., 2, :, :] + products[..., 3, :, :]
        z = torch.stack([functions, pseudo], -2)  # (..., channels, 2, d_out)
        return self._mix(z) if self.mix is not None else z

    def _mix(self, z: torch.Tensor) -> torch.Tensor:
        """``z (..., channels, classes, d_out)``: per class and degree, ``channels x channels``."""
        mix = self.mix[:, self.degrees_out]  # (classes, d_out, out channels, in channels)
        return torch.einsum("...ckd,kdoc->...okd", z, mix)
