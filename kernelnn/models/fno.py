"""The Fourier Neural Operator (Li et al., "Fourier Neural Operator for Parametric PDEs", ICLR 2021)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from kernelnn.layers.global_tucker import GlobalTucker
from kernelnn.layers.input_checks import check_dtype_matches
from kernelnn.layers.pointwise import pointwise
from kernelnn.layers.skip import SKIPS
from kernelnn.layers.spectral import (
    MODES_CONVENTIONS,
    SpectralConv,
    _as_modes,
    check_field_input,
    check_modes_fit,
)
from kernelnn.registry import ACTIVATIONS


def grid_coordinates(spatial_shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """Coordinates ``x_i = i / N`` of a uniform grid on ``[0, 1)^d``, shape ``(d, *spatial_shape)``."""
    axes = [torch.arange(n, device=like.device, dtype=like.dtype) / n for n in spatial_shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"))


CHANNEL_MLP = {"expansion": 0.0, "neuron": "linear", "options": {}, "skip": None}
BLOCKS = ("fno", "neuralop")
PADDING_MODES = ("one-sided", "symmetric")

_INSTANCE_NORMS = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
NORMS = {
    None: None,
    "group": lambda channels, dim: nn.GroupNorm(1, channels),
    "instance": lambda channels, dim: _INSTANCE_NORMS[dim](channels, affine=True),
}


class FNO(nn.Module):
    r"""Fourier Neural Operator: lifting, ``n_layers`` Fourier blocks, projection.

    With ``block="fno"`` (the paper's, the default) each block computes :math:`v \leftarrow \sigma(K v + W v)`
    with :math:`K` a :class:`SpectralConv` and :math:`W` a point-wise linear skip; the last block has no
    activation. With ``channel_mlp["expansion"] > 0`` each block then adds a point-wise channel MLP,
    :math:`v \leftarrow v + \mathrm{MLP}(v)`.

    ``block="neuralop"`` is neuraloperator 2.x's block (MG-TFNO's backbone): both skips read the block's input,
    :math:`u = \sigma(N_1(K v) + W v)`, then :math:`u \leftarrow \mathrm{MLP}(u) + S v` with ``S`` the
    channel-MLP skip (``channel_mlp["skip"]``, soft-gating by default), then :math:`v \leftarrow
    \sigma(N_2(u))`; the last block has neither activation. The norms :math:`N_1, N_2` are identities unless
    ``norm`` is set.

    Lifting is point-wise linear (the paper's) or, with ``lifting_channels > 0``, a point-wise two-layer MLP
    (neuraloperator's); projection is a point-wise two-layer MLP. The hidden layer of the channel MLPs and the
    projection uses ``channel_mlp["neuron"]`` (their output layers are linear).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output fields.
    n_modes : int or sequence of int
        Kept Fourier modes per dim, ``|k| < n_modes`` (see :mod:`kernelnn.layers.spectral`).
    hidden_channels : int
        Width of the Fourier blocks.
    n_layers : int
        Number of Fourier blocks.
    dim : int, optional
        Spatial dims (1, 2, 3); needed when ``n_modes`` is an int.
    projection_channels : int
        Hidden width of the projection MLP.
    activation : str
        Name from :data:`kernelnn.registry.ACTIVATIONS`.
    positional_embedding : bool
        Append the grid coordinates in ``[0, 1)^d`` as extra input channels.
    domain_padding : float or sequence of float
        Zero-pad each spatial dim by this fraction of its size before the Fourier blocks, then crop: for
        non-periodic problems (the paper pads Darcy flow). One value for every dim, or one per dim (e.g.
        ``[0, 0, 0.25]`` pads only the time axis of a space-time FNO).
    domain_padding_mode : str
        ``"one-sided"`` pads on the right only (the paper's code), ``"symmetric"`` by the same amount on both
        sides (neuraloperator's).
    skip : str
        The block's skip path :math:`W`: ``"linear"`` (point-wise, the paper's), ``"identity"`` or
        ``"soft-gating"`` (one learnable scale per channel).
    factorization, rank, implementation
        How the spectral weights are stored (see :class:`~kernelnn.layers.SpectralConv`); ``"dense"`` is the
        FNO, a tensor factorization makes a TFNO.
    channel_mlp : dict, optional
        The point-wise MLPs: ``expansion`` (width of each block's channel MLP as a multiple of
        ``hidden_channels``; 0, the default, for none), ``neuron`` (type of the hidden layer of the channel
        MLPs and of the projection, a name from :data:`kernelnn.registry.NEURONS`: ``"linear"`` (the
        paper's), ``"quadratic"``, ``"kan"``, ...), ``options`` (that neuron's constructor arguments) and, for
        ``block="neuralop"``, ``skip`` (``"soft-gating"``, the default, ``"linear"``, ``"identity"`` or
        ``"none"``).
    block : str
        ``"fno"`` (the paper's) or ``"neuralop"`` (neuraloperator 2.x's; see above).
    lifting_channels : int
        0 (the default) for a point-wise linear lifting; otherwise the hidden width of a two-layer lifting MLP.
    spectral_bias : bool
        Give each spectral convolution a bias (neuraloperator's do).
    modes_convention : str
        ``"kernelnn"`` (``|k| < n_modes``) or ``"neuralop"`` (``n_modes`` counted as neuraloperator 2.x does; see
        :mod:`kernelnn.layers.spectral`).
    norm : str or None
        Normalisation of each block's spectral branch before the skip is added, as MG-TFNO's backbone
        (neuraloperator's ``norm``): ``"group"`` (one group: layer norm over channels and space), ``"instance"``
        (per channel over space, learnable affine), or ``None`` (the FNO paper's, the default).
    global_factorization : bool
        With ``factorization="tucker"``: one Tucker factorization of all layers' weights stacked
        (:class:`~kernelnn.layers.GlobalTucker`, MG-TFNO's global factorization); ``rank`` is then the fraction
        of all layers' dense parameters together.

    Shapes
    ------
    ``(batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``, any resolution with
    ``n_modes <= (N + 1) // 2`` per dim (neuraloperator's convention: ``n_modes <= N``, on the last dim
    ``n_modes // 2 <= N // 2``).

    Example
    -------
    >>> model = FNO(1, 1, n_modes=(12, 12), hidden_channels=32)
    >>> model(torch.randn(2, 1, 32, 32)).shape
    torch.Size([2, 1, 32, 32])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: int | Sequence[int],
        hidden_channels: int = 32,
        n_layers: int = 4,
        dim: int | None = None,
        projection_channels: int = 128,
        activation: str = "gelu",
        positional_embedding: bool = True,
        domain_padding: float | Sequence[float] = 0.0,
        skip: str = "linear",
        factorization: str = "dense",
        rank: int | float = 0.1,
        implementation: str = "auto",
        global_factorization: bool = False,
        channel_mlp: dict | None = None,
        norm: str | None = None,
        block: str = "fno",
        lifting_channels: int = 0,
        spectral_bias: bool = False,
        modes_convention: str = "kernelnn",
        domain_padding_mode: str = "one-sided",
    ) -> None:
        super().__init__()
        self.n_modes = _as_modes(n_modes, dim, "FNO")
        self.dim = len(self.n_modes)
        for arg, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("hidden_channels", hidden_channels),
            ("n_layers", n_layers),
            ("projection_channels", projection_channels),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"FNO: {arg}={value!r} must be a positive int")
        for arg, value, allowed in (("block", block, BLOCKS), ("domain_padding_mode", domain_padding_mode,
                                                                 PADDING_MODES),
                                    ("modes_convention", modes_convention, MODES_CONVENTIONS)):
            if value not in allowed:
                raise ValueError(f"FNO: {arg}={value!r} is not one of {list(allowed)}")
        if not isinstance(lifting_channels, int) or lifting_channels < 0:
            raise ValueError(f"FNO: lifting_channels={lifting_channels!r} must be an int >= 0 (0: linear lifting)")
        pads = [domain_padding] * self.dim if isinstance(domain_padding, int | float) else list(domain_padding)
        if len(pads) != self.dim or not all(0.0 <= float(p) <= 1.0 for p in pads):
            raise ValueError(f"FNO: domain_padding={domain_padding} must be a fraction in [0, 1] or {self.dim} "
                             "fractions")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.positional_embedding = positional_embedding
        self.domain_padding = tuple(float(p) for p in pads)
        self.domain_padding_mode = domain_padding_mode
        self.block = block
        self.modes_convention = modes_convention
        d = self.dim
        lifted_in = in_channels + (d if positional_embedding else 0)
        if lifting_channels:
            self.lifting = self._mlp(lifted_in, lifting_channels, hidden_channels, d, activation, "linear", {})
        else:
            self.lifting = pointwise(lifted_in, hidden_channels, d)
        weights = [factorization] * n_layers
        if global_factorization:
            if factorization != "tucker":
                raise ValueError(f"FNO: global_factorization=True shares one Tucker factorization, so it needs "
                                 f"factorization='tucker', got {factorization!r}")
            stored = self.n_modes if modes_convention == "kernelnn" else tuple(m // 2 + 1 for m in self.n_modes)
            self.global_weights = GlobalTucker(n_layers, hidden_channels, hidden_channels, stored, rank=rank)
            weights = [self.global_weights.layer(i) for i in range(n_layers)]
        self.spectral = nn.ModuleList(
            SpectralConv(hidden_channels, hidden_channels, self.n_modes, factorization=weight, rank=rank,
                         implementation=implementation, modes_convention=modes_convention, bias=spectral_bias)
            for weight in weights
        )
        if norm not in NORMS:
            raise ValueError(f"FNO: norm={norm!r} is not one of {list(NORMS)}")
        norms_per_block = 2 if block == "neuralop" else 1
        self.norms = nn.ModuleList(NORMS[norm](hidden_channels, d) for _ in range(norms_per_block * n_layers)) \
            if norm else None
        make_skip = SKIPS.get(skip, owner=type(self).__name__, argument="skip")
        self.skips = nn.ModuleList(make_skip(hidden_channels, d) for _ in range(n_layers))
        self.activation = ACTIVATIONS.build(activation, owner="FNO", argument="activation")
        mlp = {**CHANNEL_MLP, **(channel_mlp or {})}
        unknown = sorted(set(mlp) - set(CHANNEL_MLP))
        if unknown:
            raise ValueError(f"FNO: channel_mlp has unknown key(s) {unknown}; valid: {sorted(CHANNEL_MLP)}")
        if mlp["expansion"] < 0:
            raise ValueError(f"FNO: channel_mlp.expansion={mlp['expansion']} must be >= 0")
        width = round(mlp["expansion"] * hidden_channels)
        self.channel_mlp_skips = None
        if block == "fno" and mlp["skip"] is not None:
            raise ValueError(f"FNO: channel_mlp.skip={mlp['skip']!r} needs block='neuralop' (block='fno' adds the "
                             "channel MLP's output to its own input)")
        if block == "neuralop" and width == 0 and mlp["skip"] is not None:
            raise ValueError(f"FNO: channel_mlp.skip={mlp['skip']!r} has no channel MLP to skip "
                             "(channel_mlp.expansion=0)")
        if block == "neuralop" and width > 0:
            mlp_skip = "soft-gating" if mlp["skip"] is None else mlp["skip"]
            if mlp_skip != "none":
                make_mlp_skip = SKIPS.get(mlp_skip, owner="FNO", argument="channel_mlp.skip")
                self.channel_mlp_skips = nn.ModuleList(make_mlp_skip(hidden_channels, d) for _ in range(n_layers))
        neuron, neuron_options = mlp["neuron"], dict(mlp["options"] or {})
        self.channel_mlps = nn.ModuleList(
            self._mlp(hidden_channels, width, hidden_channels, d, activation, neuron, neuron_options)
            for _ in range(n_layers)
        ) if width > 0 else None
        self.projection = self._mlp(hidden_channels, projection_channels, out_channels, d, activation, neuron,
                                    neuron_options)

    @staticmethod
    def _mlp(n_in: int, n_hidden: int, n_out: int, dim: int, activation: str, neuron: str,
             neuron_options: dict) -> nn.Sequential:
        return nn.Sequential(
            pointwise(n_in, n_hidden, dim, neuron, owner="FNO", **neuron_options),
            ACTIVATIONS.build(activation, owner="FNO", argument="activation"),
            pointwise(n_hidden, n_out, dim),
        )

    def extra_repr(self) -> str:
        return (
            f"n_modes={self.n_modes}, positional_embedding={self.positional_embedding}, "
            f"domain_padding={self.domain_padding}, block={self.block!r}"
        )

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``x`` is a float tensor ``(batch, in_channels, *spatial)``
        with ``dim`` spatial sizes that resolve ``n_modes`` (``n_modes <= (N + 1) // 2`` in kernelnn's
        convention)."""
        check_field_input(x, type(self).__name__, self.in_channels, self.dim, self.n_modes, self.modes_convention)
        check_dtype_matches(x, self, type(self).__name__)

    def _padding(self, spatial: Sequence[int]) -> list[int]:
        return [round(frac * n) for frac, n in zip(self.domain_padding, spatial, strict=True)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        spatial = x.shape[2:]
        if self.positional_embedding:
            grid = grid_coordinates(spatial, x).expand(x.shape[0], *([-1] * (self.dim + 1)))
            x = torch.cat([x, grid.to(x.dtype)], dim=1)
        x = self.lifting(x)
        pads = self._padding(spatial)
        left = pads if self.domain_padding_mode == "symmetric" else [0] * self.dim
        if any(pads):
            # F.pad takes (left, right) pairs starting from the last dim.
            x = F.pad(x, [p for before, after in zip(reversed(left), reversed(pads), strict=True)
                          for p in (before, after)])
        block = self._neuralop_block if self.block == "neuralop" else self._fno_block
        for i in range(len(self.spectral)):
            x = block(x, i, last=i == len(self.spectral) - 1)
        if any(pads):
            x = x[(..., *(slice(start, start + n) for start, n in zip(left, spatial, strict=True)))]
        return self.projection(x)

    def _norm(self, i: int, x: torch.Tensor) -> torch.Tensor:
        return x if self.norms is None else self.norms[i](x)

    def _fno_block(self, x: torch.Tensor, i: int, last: bool) -> torch.Tensor:
        x = self._norm(i, self.spectral[i](x)) + self.skips[i](x)
        if not last:
            x = self.activation(x)
        if self.channel_mlps is not None:
            x = x + self.channel_mlps[i](x)
        return x

    def _neuralop_block(self, x: torch.Tensor, i: int, last: bool) -> torch.Tensor:
        u = self._norm(2 * i, self.spectral[i](x)) + self.skips[i](x)
        if not last:
            u = self.activation(u)
        if self.channel_mlps is not None:
            u = self.channel_mlps[i](u)
            if self.channel_mlp_skips is not None:
                u = u + self.channel_mlp_skips[i](x)
        u = self._norm(2 * i + 1, u)
        return u if last else self.activation(u)


class TFNO(FNO):
    """Tensorized FNO (Kossaifi et al., 2023): an :class:`FNO` whose spectral weights are Tucker-factorized.

    ``rank`` (default 0.1) is an int rank or the fraction of each dense spectral weight's parameters; pass
    ``factorization="cp"`` or ``"tt"`` for the other factorizations. All other arguments as :class:`FNO`.
    """

    def __init__(self, *args, factorization: str = "tucker", rank: int | float = 0.1, **kwargs) -> None:
        super().__init__(*args, factorization=factorization, rank=rank, **kwargs)


def check_frames_input(x: torch.Tensor, model: nn.Module, in_steps: int) -> None:
    """Raise unless ``x`` is a float tensor of frames ``(batch, in_steps, X, Y)`` in ``model``'s dtype."""
    name = type(model).__name__
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: input must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != in_steps:
        raise ValueError(f"{name}: input must have shape (batch, {in_steps}, X, Y), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: input dtype must be floating point, got {x.dtype}")
    check_dtype_matches(x, model, name)


class SpatioTemporalFNO(nn.Module):
    """Frames ``(batch, in_steps, X, Y)`` -> the next frames ``(batch, out_steps, X, Y)`` by a space-time FNO.

    The FNO paper's 3-D construction: the history is repeated along a new time axis of length ``out_steps``
    (the ``in_steps`` frames become channels at every output time), a 3-D :class:`FNO` with space-time
    spectral convolutions over ``(x, y, t)`` maps it to one channel, and the time axis becomes the output
    frames. Space is periodic; the time axis is zero-padded by ``time_padding`` (non-periodic).
    ``n_modes`` is ``(m_x, m_y, m_t)``; other keyword arguments go to :class:`FNO`.
    """

    def __init__(self, in_channels: int, out_channels: int, n_modes: Sequence[int] = (12, 12, 3),
                 hidden_channels: int = 20, n_layers: int = 4, time_padding: float = 0.25, **fno_kwargs) -> None:
        super().__init__()
        if len(n_modes) != 3:
            raise ValueError(f"SpatioTemporalFNO: n_modes={list(n_modes)} needs 3 entries (x, y, t)")
        self.in_steps, self.out_steps = in_channels, out_channels
        self.fno = FNO(in_channels, 1, n_modes=n_modes, hidden_channels=hidden_channels, n_layers=n_layers,
                       domain_padding=[0.0, 0.0, time_padding], **fno_kwargs)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``x`` is a float tensor ``(batch, in_steps, X, Y)`` whose
        grid, with ``out_steps`` times, resolves ``n_modes``."""
        check_frames_input(x, self, self.in_steps)
        check_modes_fit(self.fno.n_modes, (x.shape[2], x.shape[3], self.out_steps), type(self).__name__,
                        convention=self.fno.modes_convention)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        history = repeat(x, "b t x y -> b t x y s", s=self.out_steps)
        return rearrange(self.fno(history), "b 1 x y s -> b s x y")
