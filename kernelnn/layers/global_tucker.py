r"""One Tucker factorization shared by the spectral weights of every layer (MG-TFNO's global factorization).

Source: Kossaifi et al., "Multi-Grid Tensorized Fourier Neural Operator for High-Resolution PDEs" (TMLR 2023):
the weights of all ``L`` Fourier layers are stacked into one tensor :math:`\mathcal{W} \in
\mathbb{C}^{L \times C_{in} \times C_{out} \times m_1 \times \dots}` and that tensor is Tucker-factorized,

.. math:: \mathcal{W} = G \times_0 U_{layer} \times_1 U_{in} \times_2 U_{out} \times_3 U^{(1)} \dots

so the channel and frequency factors are shared by all layers and layer ``l`` differs only by the row
:math:`U_{layer}[l]` that mixes the core. :class:`GlobalTucker` owns the factors; :meth:`GlobalTucker.layer`
gives each :class:`~kernelnn.layers.SpectralConv` a view that contracts its input directly from them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from kernelnn.layers.spectral_weights import (
    SpectralWeight,
    TuckerWeight,
    _init_rms,
    as_complex,
    block_shape,
    complex_param,
    match_scale,
    tucker_contract,
    tucker_modes,
    tucker_ranks,
)


class GlobalTucker(nn.Module):
    """The factors of the stacked spectral weights ``W[l, i, o, *block]`` of ``n_layers`` layers.

    Parameters
    ----------
    n_layers, in_channels, out_channels : int
        Shape of the stacked weight (every layer maps ``in_channels`` to ``out_channels``).
    n_modes : sequence of int
        Kept modes per spatial dim, as in :class:`~kernelnn.layers.SpectralConv`.
    rank : int, sequence of int or float
        Tucker ranks ``(r_layer, r_in, r_out, *r_modes)``: one int for all dims (capped by each dim), one per
        dim, or a fraction of the parameters of all ``n_layers`` dense weights together.

    Example
    -------
    >>> shared = GlobalTucker(4, 32, 32, n_modes=(12, 12), rank=0.05)
    >>> conv = SpectralConv(32, 32, n_modes=(12, 12), factorization=shared.layer(0))
    """

    def __init__(self, n_layers: int, in_channels: int, out_channels: int, n_modes: Sequence[int],
                 rank: int | float | Sequence[int] = 0.1) -> None:
        super().__init__()
        for arg, value in (("n_layers", n_layers), ("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GlobalTucker: {arg}={value!r} must be a positive int")
        self.n_layers, self.in_channels, self.out_channels = n_layers, in_channels, out_channels
        self.n_modes = tuple(n_modes)
        self.letters = "xyz"[: len(self.n_modes)]
        dims = (n_layers, in_channels, out_channels, *block_shape(self.n_modes))
        self.ranks = tucker_ranks("tucker", dims, rank, math.prod(dims))
        self.core = complex_param(*self.ranks)
        self.factor_layers = complex_param(n_layers, self.ranks[0])
        self.factor_in = complex_param(in_channels, self.ranks[1])
        self.factor_out = complex_param(out_channels, self.ranks[2])
        self.factor_modes = nn.ParameterList(complex_param(n, r) for n, r in zip(dims[3:], self.ranks[3:],
                                                                                 strict=True))
        match_scale(self, _init_rms(in_channels, out_channels))

    def extra_repr(self) -> str:
        return f"n_layers={self.n_layers}, {self.in_channels}, {self.out_channels}, n_modes={self.n_modes}, " \
               f"ranks={self.ranks}"

    @property
    def dense_size(self) -> int:
        """Complex entries of all layers' dense weights together."""
        return self.n_layers * self.in_channels * self.out_channels * math.prod(block_shape(self.n_modes))

    def layer(self, index: int) -> GlobalTuckerLayer:
        """The spectral weight of layer ``index``, for ``SpectralConv(..., factorization=shared.layer(index))``."""
        if not 0 <= index < self.n_layers:
            raise ValueError(f"GlobalTucker: layer index {index} is outside 0..{self.n_layers - 1}")
        return GlobalTuckerLayer(self, index)

    def layer_core(self, index: int, real_dtype: torch.dtype) -> torch.Tensor:
        """Layer ``index``'s own Tucker core ``G x_0 U_layer[index]``, shape ``(r_in, r_out, *r_modes)``."""
        mix = as_complex(self.factor_layers, real_dtype)[index]
        return torch.tensordot(mix, as_complex(self.core, real_dtype), dims=1)

    def layer_core_times_modes(self, index: int, real_dtype: torch.dtype) -> torch.Tensor:
        factors = [as_complex(f, real_dtype) for f in self.factor_modes]
        return tucker_modes(self.layer_core(index, real_dtype), factors, self.letters)

    def reconstruct(self, real_dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The stacked dense weight ``(n_layers, C_in, C_out, *block)`` (for tests and inspection)."""
        return torch.stack([self.layer(i).reconstruct(real_dtype) for i in range(self.n_layers)])


class GlobalTuckerLayer(SpectralWeight):
    """Layer ``index`` of a :class:`GlobalTucker`: holds no parameters of its own.

    The shared factors are referenced, not registered as a submodule: the model that owns the
    :class:`GlobalTucker` registers it once, so ``state_dict`` and optimizers see each factor once.
    """

    def __init__(self, shared: GlobalTucker, index: int) -> None:
        super().__init__(shared.in_channels, shared.out_channels, shared.n_modes)
        object.__setattr__(self, "shared", shared)  # bypass nn.Module.__setattr__: a reference, not a child
        self.index = index

    def extra_repr(self) -> str:
        return f"layer {self.index} of a GlobalTucker with ranks {self.shared.ranks}"

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.shared.parameters())

    def reconstruct(self, real_dtype=torch.float32):
        m, s = self.letters, self.shared
        return torch.einsum(f"ia,ob,ab{m}->io{m}", as_complex(s.factor_in, real_dtype),
                            as_complex(s.factor_out, real_dtype), s.layer_core_times_modes(self.index, real_dtype))

    def contract(self, x):
        s, dt = self.shared, x.real.dtype
        return tucker_contract(x, as_complex(s.factor_in, dt), s.layer_core_times_modes(self.index, dt),
                               as_complex(s.factor_out, dt), self.letters)

    @torch.no_grad()
    def standalone(self) -> TuckerWeight:
        """An independent :class:`TuckerWeight` with copies of this layer's core and of the shared factors."""
        s = self.shared
        ranks = s.ranks[1:]
        weight = TuckerWeight(self.in_channels, self.out_channels, self.n_modes, rank=ranks)
        weight.core.copy_(torch.view_as_real(s.layer_core(self.index, s.core.dtype)))
        weight.factor_in.copy_(s.factor_in)
        weight.factor_out.copy_(s.factor_out)
        for mine, theirs in zip(weight.factor_modes, s.factor_modes, strict=True):
            mine.copy_(theirs)
        return weight.to(s.core.device)

    def resize_modes(self, n_modes: Sequence[int]) -> None:
        raise ValueError("GlobalTuckerLayer: a layer that shares a global factorization cannot change its modes "
                         "alone; SpectralConv.n_modes gives it its own copy of the factors first")
