r"""Transform Once (T1; Poli, Massaroli, Berto, Park, Dao, Ré, Ermon, NeurIPS 2022): one transform at the input,
a model acting directly on a reduced set of frequencies, one inverse transform at the output.

Following the authors' code (``DiffEqML/kairos``, ``T1_2d`` / ``T1Layer2d``):

1. lift ``[u(x), x]`` point-wise to ``hidden_channels`` in physical space;
2. transform once: the orthonormal DCT-II (``transform="dct"``, for non-periodic data) or the real FFT
   (``"fft"``), and keep a block of frequencies (the lowest ``n_modes`` per axis, or per axis the ``n_modes`` of
   most training-set energy: ``selection="energy"``);
3. ``n_layers`` frequency-domain layers, each: channel mixing with a separate dense matrix per kept frequency, the
   activation applied to the coefficients (for the FFT to their real and imaginary parts: the authors' complex
   ``sin`` / ``tanh`` grow like ``exp|Im z|``, and their FFT path does not run), then mode mixing along
   each axis with a dense ``K x K`` matrix per channel, and a residual connection;
4. a point-wise head per frequency, ``Linear -> sin -> Linear`` without biases (so every dropped frequency stays
   exactly zero), started at ``1e-8`` scale as in the authors' code;
5. zero-fill the dropped frequencies and transform back once.

The paper's variance-preserving initialisation (``init="variance_preserving"``) gives the channel-mixing weights
``std = gain sqrt(N / (C m))`` (``N`` grid points of the training resolution, ``C`` channels, ``m`` kept
coefficients; gain 1 for the DCT, 1/2 for the FFT): an orthonormal transform preserves variance, and keeping ``m``
of ``N`` coefficients and zero-filling the rest loses the factor ``m / N`` that the weights restore. In a residual
stack each layer restores it again, and the model can fail to train (see ``init``); the default is Kaiming's
``gain / sqrt(C)``. The mode-mixing matrices use Kaiming's ``1 / K``.

Resolution: coefficients are scaled by ``sqrt(N_train / N)`` (and back), so the kept coefficients of a function
sampled on a finer grid are those of the training grid: the model is evaluated zero-shot at other resolutions.
``resolution`` (the training grid, filled from the data by ``train.py``) sets ``N_train``; left ``None``, every grid
is its own reference (plain orthonormal transforms, as the paper). With the FFT a band-limited function gives the
same output on any grid; the DCT-II places its samples at cell centres, ``(i + 1/2) / N``, so on kernelnn's grids
(points ``i / N``) a finer grid shifts them by a quarter of a coarse cell and zero-shot results carry that error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from kernelnn.layers.dct import dctn, idctn
from kernelnn.layers.input_checks import check_dtype_matches, check_positive_ints
from kernelnn.models.fno import grid_coordinates
from kernelnn.registry import ACTIVATIONS

TRANSFORMS = ("dct", "fft")
SELECTIONS = ("lowest", "energy")
INITS = ("kaiming", "variance_preserving")


class TransformOnce(nn.Module):
    """T1: ``(batch, in_channels, *spatial) -> (batch, out_channels, *spatial)`` through one transform pair.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output fields.
    n_modes : int or sequence of int
        Kept frequencies per axis (for the FFT along every axis but the last: ``n_modes`` non-negative and
        ``n_modes - 1`` negative ones, as the FNO's ``|k| < n_modes``).
    hidden_channels : int
        Channels of the frequency-domain layers.
    n_layers : int
        Frequency-domain layers.
    transform : str
        ``"dct"`` (the paper's default; non-periodic data) or ``"fft"``.
    dim : int
        Spatial dims (1, 2 or 3).
    activation : str
        From :data:`kernelnn.registry.ACTIVATIONS` (the authors' configs use GELU).
    head_channels : int
        Width of the per-frequency head.
    selection : str
        ``"lowest"`` frequencies, or ``"energy"``: per axis the frequencies of most training-target energy, chosen
        by :meth:`fit_output_basis` (the ``pod_basis`` training plugin calls it before training).
    resolution : sequence of int, optional
        The training grid (sets ``N`` of the initialisation and the coefficient scale at other grids).
    residual : bool
        Residual connection around each frequency-domain layer (the authors' default).
    init : str
        Channel-mixing init: ``"variance_preserving"`` (the paper's, every layer) or ``"kaiming"`` (default,
        ``gain / sqrt(C)``). The paper's factor restores the ``N / m`` that truncation loses, but in a residual stack
        every layer adds it again: at initialisation on Burgers the coefficients' rms grew 73x through four layers,
        the ``sin`` head then oscillated, and the FFT model did not train (test error 1.00 on Burgers, 0.41 on
        Navier-Stokes; with ``"kaiming"``: 0.012 and 0.045; DCT on Darcy 0.058 -> 0.053; benchmarks/RESULTS.md).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: int | Sequence[int],
        hidden_channels: int = 32,
        n_layers: int = 4,
        transform: str = "dct",
        dim: int = 2,
        activation: str = "gelu",
        head_channels: int = 128,
        selection: str = "lowest",
        resolution: Sequence[int] | None = None,
        residual: bool = True,
        init: str = "kaiming",
    ) -> None:
        super().__init__()
        check_positive_ints("TransformOnce", in_channels=in_channels, out_channels=out_channels,
                            hidden_channels=hidden_channels, n_layers=n_layers, head_channels=head_channels, dim=dim)
        if dim > 3:
            raise ValueError(f"TransformOnce: dim={dim} must be 1, 2 or 3")
        if init not in INITS:
            raise ValueError(f"TransformOnce: init={init!r}; valid: {', '.join(INITS)}")
        if transform not in TRANSFORMS:
            raise ValueError(f"TransformOnce: transform={transform!r}; valid: {', '.join(TRANSFORMS)}")
        if selection not in SELECTIONS:
            raise ValueError(f"TransformOnce: selection={selection!r}; valid: {', '.join(SELECTIONS)}")
        modes = [n_modes] * dim if isinstance(n_modes, int) else list(n_modes)
        if len(modes) != dim or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in modes):
            raise ValueError(f"TransformOnce: n_modes={n_modes!r} must be a positive int or {dim} positive ints")
        if resolution is not None:
            resolution = [resolution] * dim if isinstance(resolution, int) else list(resolution)
            if len(resolution) != dim or any(not isinstance(r, int) or r < 1 for r in resolution):
                raise ValueError(f"TransformOnce: resolution={resolution!r} must be {dim} positive ints or null")
        self.in_channels, self.out_channels, self.dim = in_channels, out_channels, dim
        self.hidden_channels, self.transform, self.selection = hidden_channels, transform, selection
        self.n_modes, self.resolution, self.residual = modes, resolution, residual
        self.complex = complex_ = transform == "fft"
        self.block = [2 * m - 1 if complex_ and axis < dim - 1 else m for axis, m in enumerate(modes)]
        for axis, frequencies in enumerate(self._lowest()):
            self.register_buffer(f"frequencies_{axis}", frequencies)  # kept frequencies (signed for the FFT)

        self.lift = nn.Linear(in_channels + dim, hidden_channels)
        self.activation = ACTIVATIONS.build(activation, owner="TransformOnce", argument="activation")
        kept = math.prod(self.block)
        points = math.prod(resolution) if resolution is not None else kept
        gain = 0.5 if complex_ else 1.0
        # variance-preserving (module docstring) or Kaiming's; see ``init``
        std = gain * math.sqrt((points / kept if init == "variance_preserving" else 1) / hidden_channels)
        # complex weights (FFT) are stored as real (..., 2) tensors, so .to(dtype) and .double() keep them whole
        self.channel_mixing = nn.ParameterList(
            nn.Parameter(_normal((hidden_channels, hidden_channels, *self.block), std, complex_))
            for _ in range(n_layers))
        self.mode_mixing = nn.ParameterList(
            nn.Parameter(_normal((hidden_channels, k, k), math.sqrt(1 / k), complex_))
            for _ in range(n_layers) for k in self.block)
        self.head_in = nn.Parameter(_normal((hidden_channels, head_channels), 1e-8, complex_))
        self.head_out = nn.Parameter(_normal((head_channels, out_channels), 1e-8, complex_))

    def _lowest(self) -> list[torch.Tensor]:
        out = []
        for axis, m in enumerate(self.n_modes):
            if self.transform == "fft" and axis < self.dim - 1:
                out.append(torch.cat([torch.arange(m), torch.arange(-m + 1, 0)]))
            else:
                out.append(torch.arange(m))
        return out

    def frequencies(self) -> list[torch.Tensor]:
        return [getattr(self, f"frequencies_{axis}") for axis in range(self.dim)]

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, n_modes={self.n_modes}, transform={self.transform!r}, "
                f"selection={self.selection!r}, resolution={self.resolution}")

    # ---------------------------------------------------------------------------------------- input checks
    def check_input(self, x: torch.Tensor) -> None:
        """A float tensor ``(batch, in_channels, *spatial)`` on a grid that holds the kept frequencies."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"TransformOnce: input must be a floating-point torch.Tensor, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"TransformOnce: input must have shape (batch, {self.in_channels}, "
                             f"{', '.join('n' * self.dim)}), got {tuple(x.shape)}")
        check_dtype_matches(x, self, "TransformOnce")
        if torch.compiler.is_compiling() or torch.compiler.is_exporting():
            return  # the limit reads the kept frequencies' values, which a traced program cannot branch on
        for axis, (frequencies, n) in enumerate(zip(self.frequencies(), x.shape[2:], strict=True)):
            last = axis == self.dim - 1
            limit = n // 2 + 1 if self.transform == "fft" and last else (n if self.transform == "dct" else
                                                                          (n + 1) // 2)
            highest = int(frequencies.abs().max()) + 1
            if highest > limit:
                raise ValueError(f"TransformOnce: spatial size {n} (dim {axis}) holds {limit} frequencies, the model "
                                 f"keeps up to {highest} (n_modes={self.n_modes}, {self.transform})")

    # ---------------------------------------------------------------------------------------- forward
    def _forward_transform(self, v: torch.Tensor) -> torch.Tensor:
        if self.transform == "dct":
            return dctn(v, self.dim)
        return torch.fft.rfftn(v, dim=tuple(range(-self.dim, 0)), norm="ortho")

    def _inverse_transform(self, c: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
        if self.transform == "dct":
            return idctn(c, self.dim)
        return torch.fft.irfftn(c, s=tuple(spatial), dim=tuple(range(-self.dim, 0)), norm="ortho")

    def _index(self, spatial: Sequence[int]) -> list[torch.Tensor]:
        """Positions of the kept frequencies in the spectrum of a grid of ``spatial`` (negative ones wrap)."""
        return [f % n for f, n in zip(self.frequencies(), spatial, strict=True)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        spatial = x.shape[2:]
        if x.shape[0] == 0:
            return x.new_zeros(0, self.out_channels, *spatial)
        grid = grid_coordinates(spatial, x).expand(x.shape[0], -1, *spatial)
        v = self.lift(torch.cat([x, grid], dim=1).movedim(1, -1)).movedim(-1, 1)  # (B, C, *spatial)
        scale = math.sqrt(math.prod(self.resolution) / math.prod(spatial)) if self.resolution else 1.0
        with torch.autocast(x.device.type, enabled=False):  # the transforms and complex weights stay in float32+
            v = v.float() if v.dtype in (torch.float16, torch.bfloat16) else v
            z = self.analysis(v) * scale  # (B, C, *block)
            z = self._layers(z.to(self._weight(self.head_in).dtype))
            out = torch.einsum("bc...,ch->bh...", z, self._weight(self.head_in))
            out = torch.einsum("bh...,ho->bo...", _split(torch.sin, out), self._weight(self.head_out))
            y = self.synthesis(out / scale, spatial)
        return y.to(x.dtype)

    # ---------------------------------------------------------------------------------------- the transform pair
    # Only the kept coefficients are ever needed, so the forward transform is one small matrix per axis (kept
    # frequencies x grid points) and the inverse its adjoint: cheaper than a whole FFT of every hidden channel, and
    # equal to it (tests/models/test_transform_once.py checks against the full transforms, gradients included).
    def _bases(self, spatial: Sequence[int], like: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per axis ``(forward (K, N), inverse (N, K))`` of the orthonormal transform restricted to the kept
        frequencies (the FFT's last axis: the inverse of the real FFT, counting each k > 0 twice)."""
        real = like.real.dtype if like.is_complex() else like.dtype
        bases = []
        for axis, (frequencies, n) in enumerate(zip(self.frequencies(), spatial, strict=True)):
            k = frequencies.to(like.device, real)[:, None]
            j = torch.arange(n, device=like.device, dtype=real)[None]
            if self.transform == "dct":
                forward = torch.cos(math.pi * k * (j + 0.5) / n) * math.sqrt(2 / n)
                forward = torch.where(k == 0, forward / math.sqrt(2), forward)
                bases.append((forward, forward.T))
                continue
            phase = 2 * math.pi * k * j / n
            forward = torch.polar(torch.full_like(phase, 1 / math.sqrt(n)), -phase)
            inverse = torch.polar(torch.full_like(phase, 1 / math.sqrt(n)), phase).T
            if axis == self.dim - 1:  # irfft: the negative frequencies are the conjugates of the positive ones
                twice = torch.where((k == 0) | (2 * k == n), 1.0, 2.0).T
                inverse = inverse * twice
            bases.append((forward, inverse))
        return bases

    def analysis(self, v: torch.Tensor) -> torch.Tensor:
        """The kept coefficients ``(B, C, *block)`` of ``v`` ``(B, C, *spatial)`` (orthonormal transform)."""
        bases = self._bases(v.shape[2:], v)
        z = v
        for axis in reversed(range(self.dim)):  # the last axis first: real -> complex for the FFT
            forward = bases[axis][0]
            z = (z.movedim(2 + axis, -1).to(forward.dtype) @ forward.T).movedim(-1, 2 + axis)
        return z

    def synthesis(self, c: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
        """The field ``(B, O, *spatial)`` whose only coefficients are ``c`` ``(B, O, *block)``."""
        bases = self._bases(spatial, c)
        y = c
        for axis in range(self.dim):  # the last axis last: complex -> real for the FFT
            inverse = bases[axis][1].to(y.dtype)
            y = (y.movedim(2 + axis, -1) @ inverse.T).movedim(-1, 2 + axis)
        return y.real if y.is_complex() else y

    def analysis_by_full_transform(self, v: torch.Tensor) -> torch.Tensor:
        """Reference for :meth:`analysis`: the whole transform, then the kept frequencies picked out."""
        z = self._forward_transform(v)
        for axis, positions in enumerate(self._index(z.shape[2:])):
            z = z.index_select(2 + axis, positions)
        return z

    def synthesis_by_full_transform(self, c: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
        """Reference for :meth:`synthesis`: zero-fill the spectrum, then the whole inverse transform."""
        shape = (*spatial[:-1], spatial[-1] // 2 + 1) if self.transform == "fft" else tuple(spatial)
        full = c.new_zeros(*c.shape[:2], *shape)
        full[(slice(None), slice(None), *torch.meshgrid(*self._index(shape), indexing="ij"))] = c
        return self._inverse_transform(full, spatial)

    def _weight(self, p: torch.Tensor) -> torch.Tensor:
        """A parameter as used: real, or complex viewed from its trailing (real, imaginary) pair (float32 at least)."""
        p = p.float() if p.dtype in (torch.float16, torch.bfloat16) else p
        return torch.view_as_complex(p) if self.complex else p

    def _layers(self, z: torch.Tensor) -> torch.Tensor:
        letters = "xyz"[: self.dim]
        for i, weight in enumerate(self.channel_mixing):
            h = torch.einsum(f"bi{letters},io{letters}->bo{letters}", z, self._weight(weight))
            h = _split(self.activation, h)
            for axis in range(self.dim):
                mix = self._weight(self.mode_mixing[i * self.dim + axis])  # (C, K, K): this axis, per channel
                h = torch.einsum("bck...,ckj->bcj...", h.movedim(2 + axis, 2), mix).movedim(2, 2 + axis)
            z = z + h if self.residual else h
        return z

    # ---------------------------------------------------------------------------------------- selection
    @torch.no_grad()
    def fit_output_basis(self, y: torch.Tensor) -> bool:
        """``selection="energy"``: keep, per axis, the ``n_modes`` frequencies of most energy in the training targets
        ``y`` (``(n, out_channels, *grid)``, summed over the other axes, channels and samples). Returns whether it
        chose (``"lowest"`` keeps its frequencies)."""
        if self.selection != "energy":
            return False
        if y.dim() != self.dim + 2:
            raise ValueError(f"TransformOnce: fit_output_basis needs targets (n, channels, *grid) with {self.dim} "
                             f"spatial dims, got {tuple(y.shape)}")
        spectrum = self._forward_transform(y.double())
        energy = spectrum.abs().square()
        for axis in range(self.dim):
            other = [d for d in range(energy.dim()) if d != 2 + axis]
            marginal = energy.sum(other)  # (n_frequencies,) along this axis
            if self.transform == "fft" and axis < self.dim - 1:
                n = len(marginal)
                signed = torch.fft.fftfreq(n, 1 / n).long()
                order = marginal.argsort(descending=True)[: self.block[axis]]
                chosen = signed[order]
            else:
                chosen = marginal.argsort(descending=True)[: self.block[axis]]
            if len(chosen) < self.block[axis]:
                raise ValueError(f"TransformOnce: the targets' grid has {len(chosen)} frequencies along dim {axis}, "
                                 f"fewer than the {self.block[axis]} kept")
            getattr(self, f"frequencies_{axis}").copy_(chosen.sort().values)
        return True


def _split(activation, h: torch.Tensor) -> torch.Tensor:
    """``activation`` on real coefficients, or on the real and imaginary parts of complex ones (a complex-analytic
    sin or tanh, as the authors' FFT code has, grows like exp|Im| and overflows)."""
    return torch.complex(activation(h.real), activation(h.imag)) if h.is_complex() else activation(h)


def _normal(shape: Sequence[int], std: float, complex_: bool) -> torch.Tensor:
    """Normal entries of this std; complex ones as a trailing (real, imaginary) pair, each part with this std, as
    the authors' code stores them."""
    return torch.randn(*shape, 2) * std if complex_ else torch.randn(*shape) * std
