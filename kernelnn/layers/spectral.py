"""Fourier spectral convolution, the integral operator of the Fourier Neural Operator.

Source: Li et al., "Fourier Neural Operator for Parametric Partial Differential Equations" (ICLR 2021).

``n_modes`` in kernelnn
-----------------------
``n_modes = (m_1, ..., m_d)`` keeps every Fourier mode whose integer frequency satisfies ``|k_i| < m_i`` in
each dimension: ``2 m_i - 1`` frequencies ``-(m_i-1) .. m_i-1`` on the leading dims (all sign
combinations) and ``0 .. m_d-1`` on the last dim, which is transformed with ``rfft``. The kept set is
symmetric and never contains the Nyquist frequency of a grid with ``N_i >= 2 m_i - 1`` points, so
``m_i <= (N_i + 1) // 2`` is required: the aliased Nyquist row that neuraloperator keeps at
``n_modes = N`` is what hurts zero-shot super-resolution. (neuraloperator's ``n_modes=16`` on the
leading dims corresponds to our ``n_modes=8`` plus one extra negative frequency.)

``modes_convention="neuralop"`` takes ``n_modes`` as neuraloperator 2.x does, for models brought over from it:
``M`` on a leading dim keeps the ``M`` frequencies ``-(M // 2) .. (M - 1) // 2`` (for even ``M`` one more negative
than positive, and at ``N = M`` the aliased Nyquist row), ``M`` on the last dim keeps ``0 .. M // 2``. The weights
are stored as kernelnn's ``n_modes = M // 2 + 1``; for even ``M`` the slot of frequency ``+M / 2`` is never fed and
never used, so it stays at its initial value without effect.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn

from kernelnn.layers.spectral_weights import SPECTRAL_WEIGHTS, SpectralWeight


def _integral(m) -> bool:
    if isinstance(m, bool):
        return False
    return hasattr(m, "__index__") or (isinstance(m, float) and m.is_integer())


def _as_modes(n_modes: int | Sequence[int], dim: int | None, owner: str) -> tuple[int, ...]:
    entries = list(n_modes) if isinstance(n_modes, Sequence) and not isinstance(n_modes, str) else [n_modes]
    if isinstance(n_modes, str) or not all(_integral(m) for m in entries):  # "12" is not (1, 2); 4.9 is not 4
        raise ValueError(f"{owner}: n_modes={n_modes!r} must be an int or a sequence of ints")
    if not isinstance(n_modes, Sequence):
        n_modes = int(n_modes)
    if isinstance(n_modes, int):
        if dim is None:
            raise ValueError(f"{owner}: n_modes={n_modes} is an int, so dim (1, 2 or 3) must be given")
        modes = (n_modes,) * dim
    else:
        modes = tuple(int(m) for m in n_modes)
        if dim is not None and len(modes) != dim:
            raise ValueError(f"{owner}: n_modes={list(modes)} has {len(modes)} entries but dim={dim}")
    if not 1 <= len(modes) <= 3:
        raise ValueError(f"{owner}: n_modes={list(modes)} must have 1, 2 or 3 entries (1D/2D/3D)")
    if any(m < 1 for m in modes):
        raise ValueError(f"{owner}: n_modes={list(modes)} must be positive")
    return modes


MODES_CONVENTIONS = ("kernelnn", "neuralop")


def max_modes(size: int) -> int:
    """Largest ``n_modes`` a grid of ``size`` points supports without its Nyquist frequency."""
    return (size + 1) // 2


def modes_limits(spatial_shape: Sequence[int], convention: str = "kernelnn") -> list[int]:
    """Largest ``n_modes`` per dim that a grid of ``spatial_shape`` resolves in ``convention``: kernelnn's
    ``(N + 1) // 2``; neuraloperator's ``N`` on leading dims and ``2 (N // 2) + 1`` on the last (``0 .. N // 2``)."""
    if convention == "neuralop":
        return [*spatial_shape[:-1], 2 * (spatial_shape[-1] // 2) + 1]
    return [max_modes(n) for n in spatial_shape]


def check_modes_fit(n_modes: Sequence[int], spatial_shape: Sequence[int], owner: str, what: str = "input",
                    convention: str = "kernelnn") -> None:
    """Raise a clear ``ValueError`` when ``n_modes`` (in ``convention``) exceeds what ``spatial_shape`` resolves."""
    limits = modes_limits(spatial_shape, convention)
    if any(m > limit for m, limit in zip(n_modes, limits, strict=True)):
        rule = ("neuraloperator's convention: n_modes <= N on leading dims, n_modes // 2 <= N // 2 on the last"
                if convention == "neuralop" else "|k| < n_modes, so n_modes <= (N + 1) // 2")
        raise ValueError(
            f"{owner}: n_modes={list(n_modes)} exceeds the Nyquist limit of a {'x'.join(map(str, spatial_shape))} "
            f"{what}; at most {limits} modes ({rule})"
        )


class FullModesWarning(UserWarning):
    """A spectral convolution keeps every Fourier mode of the grid it sees along some dim (no truncation)."""


def check_field_input(x: torch.Tensor, owner: str, in_channels: int, dim: int, n_modes: Sequence[int],
                      convention: str = "kernelnn") -> None:
    """Raise ``TypeError``/``ValueError`` naming ``owner`` unless ``x`` is a float tensor ``(batch, in_channels,
    *spatial)`` with ``dim`` spatial sizes that resolve ``n_modes``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{owner}: input must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != dim + 2:
        raise ValueError(f"{owner}: input must have shape (batch, {in_channels}, {', '.join('n' * dim)}) for "
                         f"dim={dim}, got shape {tuple(x.shape)}")
    if x.shape[1] != in_channels:
        raise ValueError(f"{owner}: input has {x.shape[1]} channels, in_channels={in_channels}")
    if not x.is_floating_point():
        raise TypeError(f"{owner}: input dtype must be floating point, got {x.dtype}")
    check_modes_fit(n_modes, x.shape[2:], owner, convention=convention)


def autocast_output_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a layer should return: the autocast dtype when autocast is on, else ``x.dtype``."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


class SpectralConv(nn.Module):
    r"""Spectral convolution :math:`(K u)(x) = \mathcal{F}^{-1}\big(R \cdot (\mathcal{F} u)|_{|k|<m}\big)(x)`.

    The input is transformed with a real FFT over its spatial dims, the lowest ``n_modes`` in every dim
    are multiplied by a learned complex tensor :math:`R_{k} \in \mathbb{C}^{C_{in} \times C_{out}}` (one
    per kept mode), all other modes are set to zero, and the result is transformed back. FFTs use
    ``norm="forward"`` so coefficients are Fourier-series coefficients: the same weights act identically at
    every resolution that resolves ``n_modes`` (resolution invariance), and ``output_shape`` evaluates
    the output on a finer or coarser grid (zero-shot super-resolution).

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts :math:`C_{in}`, :math:`C_{out}`.
    n_modes : int or sequence of int
        Kept modes per spatial dim (see the module docstring for the exact meaning); an int needs ``dim``.
    dim : int, optional
        Number of spatial dims (1, 2 or 3); inferred from ``n_modes`` when it is a sequence.
    factorization : str or SpectralWeight
        How the weight tensor is stored (:mod:`kernelnn.layers.spectral_weights`): ``"dense"`` (FNO),
        ``"cp"``, ``"tucker"``, ``"tt"`` (TFNO) or ``"separable"`` (diagonal in channels); or a prebuilt
        weight such as ``GlobalTucker.layer(i)`` (one layer of a factorization shared by all layers).
    rank : int or float
        Rank of a factorization: an int, or a float in (0, 1] giving the fraction of the dense parameter count
        (Tucker also takes one int per dim).
    implementation : str
        ``"factorized"`` contracts the input with the factors directly; ``"reconstructed"`` builds the dense
        weight first; ``"auto"`` (the default) picks per call from the sizes of their intermediates (rank,
        channels, modes, batch; :meth:`SpectralWeight.costs`): when gradients are being taken, the path that keeps
        fewer elements for backward unless it needs more than 1.1x the other's multiply-adds; otherwise (and
        without gradients) the one with fewer multiply-adds. All compute the same operator.
    modes_convention : str
        ``"kernelnn"`` (the default, ``|k| < n_modes``) or ``"neuralop"`` (``n_modes`` as neuraloperator 2.x
        counts them; see the module docstring).
    bias : bool
        Add a learnable constant per output channel after the inverse transform (neuraloperator's spectral
        convolutions have one; the FNO paper's do not, the default).

    Shapes
    ------
    input ``(batch, in_channels, *spatial)`` with ``len(spatial) == dim``; output
    ``(batch, out_channels, *output_shape)`` where ``output_shape`` defaults to ``spatial``.

    Notes
    -----
    Complex weights are stored as a real parameter with a trailing dimension of 2 (DDP and NCCL do not
    handle complex parameters). Under ``torch.autocast`` the FFTs run in float32 and the output is cast
    to the autocast dtype.

    Example
    -------
    >>> conv = SpectralConv(3, 8, n_modes=(12, 12))
    >>> conv(torch.randn(4, 3, 64, 64)).shape
    torch.Size([4, 8, 64, 64])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: int | Sequence[int],
        dim: int | None = None,
        factorization: str = "dense",
        rank: int | float = 0.1,
        implementation: str = "auto",
        modes_convention: str = "kernelnn",
        bias: bool = False,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {arg}={value!r} must be a positive int")
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"{name}: implementation={implementation!r} is not one of {IMPLEMENTATIONS}")
        if modes_convention not in MODES_CONVENTIONS:
            raise ValueError(f"{name}: modes_convention={modes_convention!r} is not one of {MODES_CONVENTIONS}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes_convention = modes_convention
        given = _as_modes(n_modes, dim, name)
        self._given_modes = given if modes_convention == "neuralop" else None
        # neuraloperator's M keeps -(M // 2) .. (M - 1) // 2: stored as kernelnn's M // 2 + 1 with, for even M on a
        # leading dim, one unused slot (+M / 2).
        modes = tuple(m // 2 + 1 for m in given) if self._given_modes else given
        self._unused_slot = tuple(m % 2 == 0 for m in given[:-1]) if self._given_modes else (False,) * (len(given) - 1)
        self.dim = len(modes)
        self.implementation = implementation
        if isinstance(factorization, SpectralWeight):
            weight = factorization
            given = (weight.in_channels, weight.out_channels, weight.n_modes)
            if given != (in_channels, out_channels, modes):
                raise ValueError(f"{name}: the given weight maps {given[0]} -> {given[1]} channels with n_modes="
                                 f"{list(given[2])}, but the layer has {in_channels} -> {out_channels} and "
                                 f"n_modes={list(modes)}")
            self.factorization = type(weight).__name__
        else:
            factory = SPECTRAL_WEIGHTS.get(factorization, owner=name, argument="factorization")
            weight = factory(in_channels, out_channels, modes, rank=rank)
            self.factorization = factorization
        self.weight: SpectralWeight = weight
        self.bias = nn.Parameter(torch.zeros(out_channels, *([1] * self.dim))) if bias else None

    @property
    def n_modes(self) -> tuple[int, ...]:
        """Kept modes per dim, in this layer's ``modes_convention``."""
        return self._given_modes or self.weight.n_modes

    @n_modes.setter
    def n_modes(self, n_modes: int | Sequence[int]) -> None:
        """Keep other modes from now on: existing modes keep their weights, new ones start at zero.

        Parameters are replaced by resized ones, so build the optimizer after changing ``n_modes``. A layer
        that shares a global factorization with others first gets its own copy of the factors. A layer in
        neuraloperator's convention switches to kernelnn's (``n_modes`` are then kernelnn's).
        """
        n_modes = _as_modes(n_modes, self.dim, type(self).__name__)
        self.weight = self.weight.standalone()
        if self._given_modes:
            self._to_kernelnn_convention()
        self.weight.resize_modes(n_modes)

    @torch.no_grad()
    def _to_kernelnn_convention(self) -> None:
        """From neuraloperator's ``n_modes`` to kernelnn's ``|k| < m`` with ``m = M // 2 + 1``: the unused ``+M / 2``
        slots are zeroed (they never acted), so the layer computes the same function on every grid with ``N > M``."""
        for name, axis, dim in self.weight._mode_param_axes():
            if dim < self.dim - 1 and self._unused_slot[dim]:
                self.weight.get_parameter(name).select(axis, self.weight.n_modes[dim] - 1).zero_()
        self._given_modes = None
        self._unused_slot = (False,) * (self.dim - 1)
        self.modes_convention = "kernelnn"

    def get_extra_state(self) -> torch.Tensor:
        """``n_modes`` travels with the weights: a layer whose modes were changed after construction (the
        Spectral-Refiner lifts the truncation) reloads into a constructor-built one."""
        return torch.tensor(self.n_modes, dtype=torch.int64)

    def set_extra_state(self, state: torch.Tensor) -> None:
        pass  # applied in _load_from_state_dict, before the weights whose shapes it sets

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "_extra_state"
        if key not in state_dict:  # written before n_modes was stored: the constructor's modes
            state_dict[key] = self.get_extra_state()
        saved = tuple(int(m) for m in state_dict[key].tolist())
        if saved != self.n_modes:
            self.n_modes = saved
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        extra = "" if self.factorization == "dense" else f", factorization={self.factorization!r}"
        extra += "" if self._given_modes is None else ", modes_convention='neuralop'"
        extra += "" if self.bias is None else ", bias=True"
        return f"{self.in_channels}, {self.out_channels}, n_modes={self.n_modes}{extra}"

    def check_input(self, x: torch.Tensor) -> None:
        check_field_input(x, type(self).__name__, self.in_channels, self.dim, self.n_modes, self.modes_convention)
        if not torch.compiler.is_compiling():  # a shape test while tracing would add a guard to exported programs
            self._warn_if_untruncated(tuple(x.shape[2:]))

    def _warn_if_untruncated(self, spatial: tuple[int, ...]) -> None:
        """Warn (once per grid) when some dim keeps every frequency of an even grid, its Nyquist frequency included.

        That frequency is aliased (``+N/2`` and ``-N/2`` are one coefficient), so the layer truncates nothing there
        and the same weights are not the same operator at another resolution. Only neuraloperator's convention can
        do this (its ``n_modes = N``); kernelnn's keeps ``|k| < m <= (N + 1) // 2``, which never includes it.
        """
        kept = [2 * m - 1 - unused for m, unused in zip(self.weight.n_modes[:-1], self._unused_slot, strict=True)]
        full = [axis for axis, (k, n) in enumerate(zip(kept, spatial[:-1], strict=False)) if n % 2 == 0 and k >= n]
        if spatial[-1] % 2 == 0 and self.weight.n_modes[-1] >= spatial[-1] // 2 + 1:
            full.append(self.dim - 1)
        if full:
            warnings.warn(
                f"{type(self).__name__}: n_modes={list(self.n_modes)} keeps every Fourier mode of the "
                f"{'x'.join(map(str, spatial))} grid it sees along dim(s) {full}, the aliased Nyquist frequency "
                "included, so it truncates nothing there and is not the same operator at other resolutions; keep "
                f"fewer modes (n_modes <= {[n - 1 for n in spatial[:-1]] + [spatial[-1] - 1]} in neuraloperator's "
                f"convention, or kernelnn's n_modes <= {[n // 2 for n in spatial]})", FullModesWarning, stacklevel=2)

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        self.check_input(x)
        out_dtype = autocast_output_dtype(x)
        spatial_in = tuple(x.shape[2:])
        spatial_out = spatial_in if output_shape is None else tuple(int(s) for s in output_shape)
        if output_shape is not None:
            if len(spatial_out) != self.dim:
                raise ValueError(f"{type(self).__name__}: output_shape={list(spatial_out)} needs {self.dim} entries")
            check_modes_fit(self.n_modes, spatial_out, type(self).__name__, what="output_shape",
                            convention=self.modes_convention)
        if x.shape[0] == 0:  # MKL's FFT refuses an empty batch ("Inconsistent configuration parameters")
            return x.new_zeros(0, self.out_channels, *spatial_out, dtype=out_dtype)
        fft_dims = tuple(range(-self.dim, 0))
        with torch.autocast(x.device.type, enabled=False):
            x = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
            x_ft = torch.fft.rfftn(x, dim=fft_dims, norm="forward")
            x_ft = self._gather_low_modes(x_ft)
            if self._path(x_ft) == "factorized":
                out_ft = self.weight.contract(x_ft)
            else:
                out_ft = self.weight.contract_reconstructed(x_ft)
            out_ft = self._scatter_low_modes(out_ft, spatial_out)
            y = torch.fft.irfftn(out_ft, s=spatial_out, dim=fft_dims, norm="forward")
            if self.bias is not None:
                y = y + self.bias.to(y.dtype)
        return y.to(out_dtype)

    def _path(self, x_ft: torch.Tensor) -> str:
        """The contraction path of this call (``implementation``; ``"auto"``: by :meth:`SpectralWeight.costs`)."""
        if self.implementation != "auto":
            return self.implementation
        costs = self.weight.costs(x_ft.shape[0], x_ft.requires_grad)
        if costs is None:
            return "factorized"
        training = torch.is_grad_enabled() and (x_ft.requires_grad or any(p.requires_grad for p in
                                                                          self.weight.parameters()))
        paths = ("factorized", "reconstructed")
        leaner, other = sorted(paths, key=lambda path: costs[path])  # fewer kept elements, then less work
        if training and costs[leaner][1] <= 1.1 * costs[other][1]:
            return leaner
        return min(paths, key=lambda path: costs[path][::-1])  # less work, then fewer kept elements

    def _gather_low_modes(self, x_ft: torch.Tensor) -> torch.Tensor:
        """Keep ``|k| < m``: slices [0, m) and [N-m+1, N) on leading dims, [0, m) on the last dim. An unused slot
        (``+M / 2`` of an even neuraloperator ``M``) is fed zeros."""
        x_ft = x_ft[..., : self.weight.n_modes[-1]]
        for axis, (m, unused) in enumerate(zip(self.weight.n_modes[:-1], self._unused_slot, strict=True), start=2):
            n = x_ft.shape[axis]
            parts = [x_ft.narrow(axis, 0, m - unused), x_ft.narrow(axis, n - m + 1, m - 1)]
            if unused:
                shape = list(x_ft.shape)
                shape[axis] = 1
                parts.insert(1, x_ft.new_zeros(shape))
            x_ft = torch.cat(parts, dim=axis)
        return x_ft

    def _scatter_low_modes(self, out_ft: torch.Tensor, spatial_out: tuple[int, ...]) -> torch.Tensor:
        """Place kept modes into a full-size spectrum (dropping an unused slot); irfftn zero-pads the last dim."""
        for axis, (m, unused, n) in enumerate(zip(self.weight.n_modes[:-1], self._unused_slot, spatial_out[:-1],
                                                  strict=True), start=2):
            positive = m - unused
            zeros_shape = list(out_ft.shape)
            zeros_shape[axis] = n - positive - (m - 1)
            zeros = out_ft.new_zeros(zeros_shape)
            out_ft = torch.cat([out_ft.narrow(axis, 0, positive), zeros, out_ft.narrow(axis, m, m - 1)], dim=axis)
        return out_ft

    @property
    def n_weights(self) -> int:
        """Number of real weights (two per complex coefficient), shared factors included."""
        return sum(p.numel() for p in self.weight.shared_parameters())


IMPLEMENTATIONS = ("auto", "factorized", "reconstructed")


def spectral_parameter_counts(model: nn.Module) -> dict[str, int | float]:
    """Real parameters of ``model``'s spectral weights as stored, against the dense weights they stand for.

    Returns ``spectral_dense`` (parameters of dense weights with the same modes and channels),
    ``spectral_stored`` (parameters actually stored; factors shared by several layers count once) and
    ``spectral_compression`` (their ratio): MG-TFNO's parameter-compression report.
    """
    convs = [m for m in model.modules() if isinstance(m, SpectralConv)]
    if not convs:
        raise ValueError(f"spectral_parameter_counts: {type(model).__name__} has no SpectralConv")
    dense = sum(2 * conv.weight.dense_size for conv in convs)
    stored = sum({id(p): p.numel() for conv in convs for p in conv.weight.shared_parameters()}.values())
    return {"spectral_dense": dense, "spectral_stored": stored, "spectral_compression": dense / stored}

