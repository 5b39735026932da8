r"""Parametrizations of the complex spectral weight :math:`W \in \mathbb{C}^{C_{in} \times C_{out} \times m_1 \dots}`.

``dense`` stores W itself; ``cp``, ``tucker`` and ``tt`` store a CP / Tucker / tensor-train factorization
(TFNO: Kossaifi et al., "Multi-Grid Tensorized Fourier Neural Operator for High-Resolution PDEs", 2023);
``separable`` is diagonal in channels, :math:`W_{c,k}`. Every parametrization contracts an input block
``x`` ``(batch, C_in, *block)`` directly with its factors (``contract``), never building W, and can also
``reconstruct()`` W for the ``implementation="reconstructed"`` path and for tests.

Complex tensors are stored as real parameters with a trailing dimension of 2 (DDP and NCCL mishandle
complex parameters). Mode axes store frequencies in FFT order: ``0..m-1`` then ``-(m-1)..-1`` on leading
dims, ``0..m-1`` on the last dim, so :meth:`resize_modes` can grow or shrink them, new modes at zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from kernelnn.layers.factorized_contractions import cp_contract, tt_contract
from kernelnn.registry import SPECTRAL_WEIGHTS

MODE_LETTERS = "xyz"


def as_complex(p: torch.Tensor, real_dtype: torch.dtype) -> torch.Tensor:
    return torch.view_as_complex(p.to(real_dtype))


def complex_param(*shape: int, std: float = 1.0) -> nn.Parameter:
    return nn.Parameter(std * torch.randn(*shape, 2))


def block_shape(n_modes: Sequence[int]) -> tuple[int, ...]:
    """Stored frequencies per dim for ``n_modes``: ``2m-1`` on leading dims, ``m`` on the last."""
    return tuple(2 * m - 1 for m in n_modes[:-1]) + (n_modes[-1],)


def resize_mode_axis(t: torch.Tensor, axis: int, old: int, new: int, last: bool) -> torch.Tensor:
    """Keep the frequencies ``|k| < min(old, new)`` of a mode axis; frequencies that are new are zero."""
    keep = min(old, new)
    shape = list(t.shape)
    shape[axis] = new if last else 2 * new - 1
    out = t.new_zeros(shape)
    out.narrow(axis, 0, keep).copy_(t.narrow(axis, 0, keep))
    if not last and keep > 1:
        out.narrow(axis, shape[axis] - keep + 1, keep - 1).copy_(t.narrow(axis, t.shape[axis] - keep + 1, keep - 1))
    return out


class SpectralWeight(nn.Module):
    """Base class: a complex tensor ``W[i, o, *block]`` applied mode-wise, ``y[b,o,k] = sum_i x[b,i,k] W[i,o,k]``."""

    def __init__(self, in_channels: int, out_channels: int, n_modes: Sequence[int]) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.n_modes = tuple(n_modes)
        self.dim = len(self.n_modes)
        self.letters = MODE_LETTERS[: self.dim]

    @property
    def dense_size(self) -> int:
        """Complex entries of the dense weight."""
        return self.in_channels * self.out_channels * math.prod(block_shape(self.n_modes))

    def contract(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reconstruct(self, real_dtype: torch.dtype = torch.float32) -> torch.Tensor:
        raise NotImplementedError

    def contract_reconstructed(self, x: torch.Tensor) -> torch.Tensor:
        m = self.letters
        w = self.reconstruct(x.real.dtype)
        return torch.einsum(f"bi{m},io{m}->bo{m}", x, w)

    def costs(self, batch: int, input_grad: bool) -> dict[str, tuple[int, int]] | None:
        """Estimated ``(elements kept for backward, multiply-adds)`` of the ``"factorized"`` and
        ``"reconstructed"`` paths for a batch (``input_grad``: whether the input needs a gradient, so that the
        reconstructed path keeps the dense weight too), from which ``implementation="auto"`` picks; ``None``:
        the factorized path, which costs no more (dense, separable)."""
        return None

    def _reconstructed_costs(self, batch: int, input_grad: bool, build_kept: int, build_macs: int) -> tuple[int, int]:
        """The reconstructed path: building W (``build_*``), then keeping the input (and W for its gradient)."""
        i, o, modes = self.in_channels, self.out_channels, math.prod(block_shape(self.n_modes))
        return build_kept + batch * i * modes + (i * o * modes if input_grad else 0), build_macs + batch * i * o * modes

    @torch.no_grad()
    def resize_modes(self, n_modes: Sequence[int]) -> None:
        """Change the kept modes in place; new modes start at zero (the operator is unchanged on old modes)."""
        n_modes = tuple(n_modes)
        for name, axis, dim in self._mode_param_axes():
            param = self.get_parameter(name)
            resized = resize_mode_axis(param.detach(), axis, self.n_modes[dim], n_modes[dim], dim == self.dim - 1)
            # A new Parameter (not .data): autograd caches the old shape. Optimizers must be rebuilt.
            owner_path, _, attr = name.rpartition(".")
            owner = self.get_submodule(owner_path) if owner_path else self
            owner.register_parameter(attr, nn.Parameter(resized, requires_grad=param.requires_grad))
        self.n_modes = n_modes

    def _mode_param_axes(self):
        """(parameter name, axis, mode dim) for every axis that is indexed by frequency."""
        raise NotImplementedError

    def shared_parameters(self) -> list[nn.Parameter]:
        """The parameters this weight is computed from, including factors it shares with other layers."""
        return list(self.parameters())

    def standalone(self) -> SpectralWeight:
        """A weight that owns all its parameters (itself, unless it shares factors with other layers)."""
        return self

    def _match_scale(self, rms: float) -> None:
        match_scale(self, rms)


@torch.no_grad()
def match_scale(factorization: nn.Module, rms: float) -> None:
    """Scale every factor of ``factorization`` by the same amount so its ``reconstruct()`` has RMS ``rms``.

    Spreading the scale evenly matters for training: if one factor carried it all it would be orders of
    magnitude smaller than the others, and Adam's steps (about ``lr`` per entry, whatever its size) would
    blow it up in the first iterations.
    """
    current = torch.view_as_real(factorization.reconstruct(torch.float64)).pow(2).mean().sqrt().item()
    factors = list(factorization.parameters())
    if current > 0:
        for p in factors:
            p.mul_((rms / current) ** (1.0 / len(factors)))


def _init_rms(in_channels: int, out_channels: int) -> float:
    # RMS of U[0, 1/(C_in C_out)), the FNO paper's dense initialisation.
    return 1.0 / (in_channels * out_channels * math.sqrt(3))


@SPECTRAL_WEIGHTS.register("dense")
class DenseWeight(SpectralWeight):
    """``W[i, o, *block]`` stored in full (the FNO paper's weight)."""

    def __init__(self, in_channels: int, out_channels: int, n_modes: Sequence[int], rank=None) -> None:
        super().__init__(in_channels, out_channels, n_modes)
        scale = 1.0 / (in_channels * out_channels)
        self.weight = nn.Parameter(scale * torch.rand(in_channels, out_channels, *block_shape(n_modes), 2))

    def _mode_param_axes(self):
        return [("weight", 2 + d, d) for d in range(self.dim)]

    def reconstruct(self, real_dtype=torch.float32):
        return as_complex(self.weight, real_dtype)

    def contract(self, x):
        return self.contract_reconstructed(x)


@SPECTRAL_WEIGHTS.register("separable")
class SeparableWeight(SpectralWeight):
    """Diagonal in channels: ``y[b, c, k] = x[b, c, k] W[c, k]`` (needs ``in_channels == out_channels``)."""

    def __init__(self, in_channels: int, out_channels: int, n_modes: Sequence[int], rank=None) -> None:
        if in_channels != out_channels:
            raise ValueError(f"SpectralConv: factorization='separable' needs in_channels == out_channels, got "
                             f"{in_channels} and {out_channels}")
        super().__init__(in_channels, out_channels, n_modes)
        self.weight = nn.Parameter(torch.rand(in_channels, *block_shape(n_modes), 2) / in_channels)

    def _mode_param_axes(self):
        return [("weight", 1 + d, d) for d in range(self.dim)]

    def reconstruct(self, real_dtype=torch.float32):
        w = as_complex(self.weight, real_dtype)
        eye = torch.eye(self.in_channels, dtype=w.dtype, device=w.device)
        return eye.view(*eye.shape, *([1] * self.dim)) * w.unsqueeze(1)

    def contract(self, x):
        return x * as_complex(self.weight, x.real.dtype)


def _check_rank(name: str, rank) -> int | float:
    """``rank`` is a positive int, or a float in (0, 1]: the fraction of the dense parameter count."""
    if isinstance(rank, bool) or not isinstance(rank, int | float):
        raise ValueError(f"SpectralConv: factorization={name!r} needs rank= a positive int or a fraction in (0, 1], "
                         f"got {rank!r}")
    if isinstance(rank, int) and rank < 1 or isinstance(rank, float) and not 0 < rank <= 1:
        raise ValueError(f"SpectralConv: rank={rank} must be a positive int or a fraction in (0, 1]")
    return rank


def _fraction_rank(name: str, rank, dense: int, params_of) -> int:
    """An int rank as given; for a fraction, the largest int rank whose parameters fit in it (at least 1)."""
    rank = _check_rank(name, rank)
    if isinstance(rank, int):
        return rank
    r = 1
    while params_of(r + 1) <= rank * dense:
        r += 1
    return r


@SPECTRAL_WEIGHTS.register("cp")
class CPWeight(SpectralWeight):
    r"""CP: :math:`W = \sum_r \lambda_r\, a_r \otimes b_r \otimes c^{(1)}_r \otimes \dots`."""

    def __init__(self, in_channels: int, out_channels: int, n_modes: Sequence[int], rank=0.1) -> None:
        super().__init__(in_channels, out_channels, n_modes)
        dims = (in_channels, out_channels, *block_shape(n_modes))
        self.rank = _fraction_rank("cp", rank, self.dense_size, lambda r: r * (sum(dims) + 1))
        r = self.rank
        self.weights = complex_param(r)
        self.factor_in = complex_param(in_channels, r)
        self.factor_out = complex_param(out_channels, r)
        self.factor_modes = nn.ParameterList(complex_param(n, r) for n in block_shape(n_modes))
        self._match_scale(_init_rms(in_channels, out_channels))

    def _mode_param_axes(self):
        return [(f"factor_modes.{d}", 0, d) for d in range(self.dim)]

    def _mode_product(self, real_dtype) -> torch.Tensor:
        """``lambda_r prod_k c^{(k)}_r[m_k]``, shape ``(r, *block)``."""
        m = self.letters
        factors = [as_complex(f, real_dtype) for f in self.factor_modes]
        spec = ",".join(f"{c}r" for c in m)
        return torch.einsum(f"r,{spec}->r{m}", as_complex(self.weights, real_dtype), *factors)

    def reconstruct(self, real_dtype=torch.float32):
        m = self.letters
        modes = self._mode_product(real_dtype)
        return torch.einsum(f"ir,or,r{m}->io{m}", as_complex(self.factor_in, real_dtype),
                            as_complex(self.factor_out, real_dtype), modes)

    def contract(self, x):
        dt = x.real.dtype
        return cp_contract(x, as_complex(self.factor_in, dt), self._mode_product(dt), as_complex(self.factor_out, dt))

    def costs(self, batch, input_grad):
        i, o, r, modes = self.in_channels, self.out_channels, self.rank, math.prod(block_shape(self.n_modes))
        # factorized keeps the input and the mode product (A^T x is rebuilt in backward: its work counted twice);
        # reconstructed keeps W's (i, o, r) intermediate first
        factorized = (batch * i * modes + r * modes, batch * modes * r * (2 * i + o + 1))
        return {"factorized": factorized,
                "reconstructed": self._reconstructed_costs(batch, input_grad, i * o * r + r * modes, i * o * r * modes)}


def tucker_ranks(name: str, dims: Sequence[int], rank, dense_size: int) -> tuple[int, ...]:
    """Tucker ranks for a tensor of shape ``dims``: an int (the same rank for every dim, capped by the dim),
    one int per dim, or a fraction of ``dense_size`` (the largest common scale of all dims that fits)."""
    if isinstance(rank, Sequence) and not isinstance(rank, str):
        ranks = [int(r) for r in rank]
        if len(ranks) != len(dims) or any(not 1 <= r <= n for r, n in zip(ranks, dims, strict=True)):
            raise ValueError(f"SpectralConv: factorization={name!r} got rank={list(rank)}; per-dim ranks need "
                             f"{len(dims)} ints, each between 1 and its dim {list(dims)}")
        return tuple(ranks)

    def ranks_at(scale: float) -> list[int]:
        return [max(1, min(n, math.ceil(scale * n))) for n in dims]

    def params(ranks: list[int]) -> int:
        return math.prod(ranks) + sum(n * r for n, r in zip(dims, ranks, strict=True))

    rank = _check_rank(name, rank)
    if isinstance(rank, int):
        return tuple(min(rank, n) for n in dims)
    lo, hi = 0.0, 1.0
    for _ in range(50):  # bisection on a common scale of all dims
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if params(ranks_at(mid)) <= rank * dense_size else (lo, mid)
    return tuple(ranks_at(lo))


def tucker_modes(core: torch.Tensor, factor_modes: Sequence[torch.Tensor], letters: str) -> torch.Tensor:
    """``core (r_in, r_out, *r_modes)`` with its mode ranks expanded to frequencies: ``(r_in, r_out, *block)``."""
    ranks = "pqs"[: len(letters)]
    spec = ",".join(f"{c}{r}" for c, r in zip(letters, ranks, strict=True))
    return torch.einsum(f"ab{ranks},{spec}->ab{letters}", core, *factor_modes)


def tucker_contract(x: torch.Tensor, factor_in: torch.Tensor, core_modes: torch.Tensor, factor_out: torch.Tensor,
                    letters: str) -> torch.Tensor:
    """``y[n,o,k] = sum_i x[n,i,k] W[i,o,k]`` for a Tucker ``W``, one small contraction at a time."""
    m = letters
    t = torch.einsum(f"ni{m},ia->na{m}", x, factor_in)
    t = torch.einsum(f"na{m},ab{m}->nb{m}", t, core_modes)
    return torch.einsum(f"nb{m},ob->no{m}", t, factor_out)


@SPECTRAL_WEIGHTS.register("tucker")
class TuckerWeight(SpectralWeight):
    r"""Tucker: :math:`W = G \times_1 U_{in} \times_2 U_{out} \times_3 U^{(1)} \dots` with a small core ``G``.

    ``rank``: an int (capped by each dim), one int per dim ``(r_in, r_out, *r_modes)``, or a fraction.
    """

    def __init__(self, in_channels: int, out_channels: int, n_modes: Sequence[int], rank=0.1) -> None:
        super().__init__(in_channels, out_channels, n_modes)
        dims = (in_channels, out_channels, *block_shape(n_modes))
        ranks = tucker_ranks("tucker", dims, rank, self.dense_size)
        self.ranks = ranks
        self.core = complex_param(*ranks)
        self.factor_in = complex_param(in_channels, ranks[0])
        self.factor_out = complex_param(out_channels, ranks[1])
        self.factor_modes = nn.ParameterList(complex_param(n, r) for n, r in zip(dims[2:], ranks[2:], strict=True))
        self._match_scale(_init_rms(in_channels, out_channels))

    def _mode_param_axes(self):
        return [(f"factor_modes.{d}", 0, d) for d in range(self.dim)]

    def _core_times_modes(self, real_dtype) -> torch.Tensor:
        factors = [as_complex(f, real_dtype) for f in self.factor_modes]
        return tucker_modes(as_complex(self.core, real_dtype), factors, self.letters)

    def reconstruct(self, real_dtype=torch.float32):
        m = self.letters
        return torch.einsum(f"ia,ob,ab{m}->io{m}", as_complex(self.factor_in, real_dtype),
                            as_complex(self.factor_out, real_dtype), self._core_times_modes(real_dtype))

    def contract(self, x):
        dt = x.real.dtype
        return tucker_contract(x, as_complex(self.factor_in, dt), self._core_times_modes(dt),
                               as_complex(self.factor_out, dt), self.letters)

    def costs(self, batch, input_grad):
        i, o, modes = self.in_channels, self.out_channels, math.prod(block_shape(self.n_modes))
        ra, rb = self.ranks[:2]
        kept = batch * i * modes + batch * ra * modes + ra * rb * modes + batch * rb * modes
        factorized = (kept, batch * modes * (i * ra + ra * rb + rb * o))
        build = (ra * rb * modes + i * rb * modes, (i * ra * rb + i * rb * o) * modes)
        return {"factorized": factorized, "reconstructed": self._reconstructed_costs(batch, input_grad, *build)}


@SPECTRAL_WEIGHTS.register("tt")
class TTWeight(SpectralWeight):
    r"""Tensor train: :math:`W[i,o,k_1,\dots] = G_0[i] G_1[o] G_2[k_1] \cdots` (matrix products of cores)."""

    def __init__(self, in_channels: int, out_channels: int, n_modes: Sequence[int], rank=0.1) -> None:
        super().__init__(in_channels, out_channels, n_modes)
        dims = (in_channels, out_channels, *block_shape(n_modes))

        def bounded(r: int) -> list[int]:
            # Internal ranks r_1..r_{d-1}, each at most what the dims on either side can use.
            return [min(r, math.prod(dims[:j]), math.prod(dims[j:])) for j in range(1, len(dims))]

        def params(r: int) -> int:
            ranks = [1, *bounded(r), 1]
            return sum(ranks[j] * n * ranks[j + 1] for j, n in enumerate(dims))

        r = _fraction_rank("tt", rank, self.dense_size, params)
        ranks = [1, *bounded(r), 1]
        self.ranks = tuple(ranks)
        self.cores = nn.ParameterList(complex_param(ranks[j], n, ranks[j + 1]) for j, n in enumerate(dims))
        self._match_scale(_init_rms(in_channels, out_channels))

    def _mode_param_axes(self):
        return [(f"cores.{2 + d}", 1, d) for d in range(self.dim)]

    def _modes_train(self, real_dtype) -> torch.Tensor:
        """The mode cores multiplied out: shape ``(r_2, *block)``."""
        h = as_complex(self.cores[2], real_dtype)  # (r2, X, r3)
        for core in list(self.cores)[3:]:
            h = torch.einsum("...a,ayb->...yb", h, as_complex(core, real_dtype))
        return h.squeeze(-1)

    def _out_and_modes(self, real_dtype) -> torch.Tensor:
        m = self.letters
        return torch.einsum(f"aob,b{m}->ao{m}", as_complex(self.cores[1], real_dtype), self._modes_train(real_dtype))

    def reconstruct(self, real_dtype=torch.float32):
        m = self.letters
        first = as_complex(self.cores[0], real_dtype)[0]  # (C_in, r1)
        return torch.einsum(f"ia,ao{m}->io{m}", first, self._out_and_modes(real_dtype))

    def contract(self, x):
        dt = x.real.dtype
        return tt_contract(x, as_complex(self.cores[0], dt)[0], self._out_and_modes(dt))

    def costs(self, batch, input_grad):
        i, o, a, modes = self.in_channels, self.out_channels, self.ranks[1], math.prod(block_shape(self.n_modes))
        # factorized keeps the input and P = G_1 G_2 ... (G_0^T x is rebuilt in backward: its work counted twice)
        factorized = (batch * i * modes + a * o * modes, batch * modes * (2 * i * a + a * o))
        return {"factorized": factorized,
                "reconstructed": self._reconstructed_costs(batch, input_grad, a * o * modes, i * a * o * modes)}
