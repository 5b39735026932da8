r"""Gaussian radial basis function neurons with a learnable precision matrix.

Source: D'Agostino, Ilievski, Shoemaker, "Learning active subspaces and discovering important features with
Gaussian radial basis functions neural networks" (Neural Networks 176, 2024). Each centre :math:`c_m` gives

.. math:: \phi_m(x) = \exp\!\big(-\tfrac12 (x - c_m)^\top P\, (x - c_m)\big), \qquad P = L L^\top,

with :math:`L` lower-triangular and learned, and the network outputs :math:`f(x) = \sum_m w_m \phi_m(x)`.
After training, the eigen-decomposition :math:`P = V \Lambda V^\top` is the model's *active subspace*
(leading eigenvectors: the directions along which it varies most) and :math:`|V| \lambda`, normalised to sum
to one, ranks the input features by importance.

The quadratic forms are computed through :math:`z = x L` and the expansion
:math:`\|z - c L\|^2 = \|z\|^2 - 2 z (cL)^\top + \|cL\|^2` (two matmuls), never through a
``(samples, centres, dims)`` tensor, when the precision is shared. One precision per centre
(``shared=False``) is supported for every parametrization; full per-centre precisions are evaluated in chunks
of centres with activation checkpointing, so memory stays bounded.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from kernelnn.layers.input_checks import check_dtype_matches, check_float_tensor, parameter_dtype
from kernelnn.layers.spectral import autocast_output_dtype
from kernelnn.registry import NEURONS

_HALF = (torch.float16, torch.bfloat16)

PRECISIONS = ("full", "diagonal", "scalar")


class RBFLayer(nn.Module):
    """Gaussian RBF layer ``(..., in_features) -> (..., n_centers)`` (the basis) or ``(..., out_features)``.

    Parameters
    ----------
    in_features : int
        Input dimension ``D``.
    n_centers : int
        Number of centres ``M``.
    out_features : int, optional
        ``None``: return the basis ``phi (..., M)``; else the weighted sums ``phi @ W^T`` ``(..., out_features)``.
    precision : str
        ``"full"`` (``L`` lower-triangular, the paper's), ``"diagonal"`` (``P`` diagonal) or ``"scalar"``
        (``P = s^2 I``, the classical isotropic RBF).
    shared : bool
        One ``P`` for all centres (the paper's) or one per centre.
    rank : int, optional
        With ``shared=False`` and ``precision="full"``: per-centre ``L_m`` of shape ``(D, rank)`` (a low-rank
        precision) instead of lower-triangular ``D x D``.
    trainable_centers : bool
        Learn the centres, or keep them fixed (a buffer) after :meth:`init_centers`.
    bias : bool
        Add a bias to the weighted sums (the paper has none).
    regularization_weights : (float, float, float)
        ``(lambda_L, lambda_w, lambda_c)`` of :meth:`regularization`, the paper's penalties (0: off).
    chunk_size : int, optional
        Centres per chunk for per-centre full precisions (default: keep chunks near 2^22 elements).
    data_init : bool
        Let :func:`~kernelnn.layers.data_dependent_init` (``train.py``'s ``plugins.data_init``) place the centres
        on the inputs this layer sees; ``False`` keeps the initialisation a containing layer chose.

    ``L`` starts as ``I / sqrt(D)`` (so the quadratic form of standardised data is of order one) and the
    centres at standard-normal values until :meth:`init_centers` places them on data.

    Example
    -------
    >>> layer = RBFLayer(10, n_centers=32, out_features=1)
    >>> layer.init_centers(x_train)               # k-means on a batch of inputs
    >>> layer(x_train[:5]).shape
    torch.Size([5, 1])
    >>> eigenvalues, eigenvectors = layer.active_subspace(2)
    """

    def __init__(self, in_features: int, n_centers: int, out_features: int | None = None, precision: str = "full",
                 shared: bool = True, rank: int | None = None, trainable_centers: bool = True, bias: bool = False,
                 regularization_weights: tuple[float, float, float] = (0.0, 0.0, 0.0),
                 chunk_size: int | None = None, data_init: bool = True) -> None:
        super().__init__()
        for arg, value in (("in_features", in_features), ("n_centers", n_centers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RBFLayer: {arg}={value!r} must be a positive int")
        if out_features is not None and (not isinstance(out_features, int) or out_features < 1):
            raise ValueError(f"RBFLayer: out_features={out_features!r} must be a positive int or None")
        if precision not in PRECISIONS:
            raise ValueError(f"RBFLayer: precision={precision!r} is not one of {PRECISIONS}")
        if rank is not None and (shared or precision != "full" or not 1 <= rank <= in_features):
            raise ValueError(f"RBFLayer: rank={rank} is for per-centre full precisions (shared=False, "
                             f"precision='full') and must be in 1..{in_features}")
        weights = tuple(float(w) for w in regularization_weights)
        if len(weights) != 3 or any(w < 0 for w in weights):
            raise ValueError(f"RBFLayer: regularization_weights={regularization_weights} must be three numbers >= 0 "
                             "(lambda_L, lambda_w, lambda_c)")
        self.in_features, self.n_centers, self.out_features = in_features, n_centers, out_features
        self.precision, self.shared, self.rank = precision, shared, rank
        self.regularization_weights = weights
        self.chunk_size = chunk_size
        self.data_init = data_init

        d = in_features
        copies = () if shared else (n_centers,)
        scale = 1.0 / math.sqrt(d)
        if precision == "scalar":
            self.factor = nn.Parameter(torch.full((*copies, 1), scale))
        elif precision == "diagonal":
            self.factor = nn.Parameter(torch.full((*copies, d), scale))
        elif rank is not None:
            eye = torch.eye(d, rank) * scale
            self.factor = nn.Parameter(eye.expand(*copies, d, rank).clone())
        else:
            self.factor = nn.Parameter((torch.eye(d) * scale).expand(*copies, d, d).clone())
            self.register_buffer("tril_mask", torch.ones(d, d).tril().bool(), persistent=False)
        centers = torch.randn(n_centers, d)
        if trainable_centers:
            self.centers = nn.Parameter(centers)
        else:
            self.register_buffer("centers", centers)
        self.linear = None if out_features is None else nn.Linear(n_centers, out_features, bias=bias)

    def extra_repr(self) -> str:
        out = "basis" if self.out_features is None else self.out_features
        return (f"{self.in_features}, n_centers={self.n_centers}, out={out}, precision={self.precision!r}, "
                f"shared={self.shared}" + (f", rank={self.rank}" if self.rank else ""))

    # ---------------------------------------------------------------- the precision matrix
    def cholesky_factor(self) -> torch.Tensor:
        """``L`` with ``P = L L^T``: ``(D, D)`` (or ``(D, rank)``), with a leading ``M`` axis when not shared."""
        f = self.factor
        if self.precision == "scalar":
            return f.unsqueeze(-1) * torch.eye(self.in_features, device=f.device, dtype=f.dtype)
        if self.precision == "diagonal":
            return torch.diag_embed(f)
        if self.rank is not None:
            return f
        return f * self.tril_mask

    def precision_matrix(self) -> torch.Tensor:
        """``P = L L^T``, ``(D, D)``; ``(M, D, D)`` with one precision per centre."""
        factor = self.cholesky_factor()
        return factor @ factor.transpose(-1, -2)

    @torch.no_grad()
    def active_subspace(self, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` leading eigenvalues ``(k,)`` (descending) and eigenvectors ``(D, k)`` (columns) of ``P``.

        With one precision per centre, of their mean.
        """
        k = self.in_features if k is None else k
        if not 1 <= k <= self.in_features:
            raise ValueError(f"RBFLayer.active_subspace: k={k} must be in 1..{self.in_features}")
        p = self.precision_matrix().double()
        if not self.shared:
            p = p.mean(0)
        eigenvalues, eigenvectors = torch.linalg.eigh(p)
        order = torch.argsort(eigenvalues, descending=True)
        return eigenvalues[order[:k]].to(self.factor.dtype), eigenvectors[:, order[:k]].to(self.factor.dtype)

    @torch.no_grad()
    def feature_importance(self) -> torch.Tensor:
        """``|V| lambda`` normalised to sum to one, ``(D,)``: the paper's ranking of the input features."""
        eigenvalues, eigenvectors = self.active_subspace()
        importance = eigenvectors.abs() @ eigenvalues.clamp_min(0)
        return importance / importance.sum()

    # ---------------------------------------------------------------- centres
    @torch.no_grad()
    def init_centers(self, x: torch.Tensor, method: str = "kmeans", seed: int = 0, fit_width: bool = True) -> None:
        """Place the centres on data ``x (N, D)``: k-means++ then Lloyd iterations (SciPy), or ``"random"``
        samples of ``x``. Deterministic for a given ``seed``, so every DDP rank places the same centres.

        With ``fit_width``, ``L`` is reset to ``I / d`` with ``d`` the mean distance from a centre to its nearest
        neighbour, so neighbouring Gaussians overlap (``phi = exp(-1/2)`` at the neighbour) whatever the data scale.
        """
        x = x.reshape(-1, x.shape[-1]) if x.dim() > 2 else x
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"RBFLayer.init_centers: x must have shape (N, {self.in_features}), got "
                             f"{tuple(x.shape)}")
        if len(x) < self.n_centers:
            raise ValueError(f"RBFLayer.init_centers: {len(x)} samples cannot place {self.n_centers} centres")
        if method == "kmeans":
            from scipy.cluster.vq import kmeans2

            data = x.detach().cpu().double().numpy()
            centers, _ = kmeans2(data, self.n_centers, minit="++", seed=np.random.default_rng(seed))
            centers = torch.from_numpy(centers)
        elif method == "random":
            generator = torch.Generator().manual_seed(seed)
            centers = x.detach().cpu()[torch.randperm(len(x), generator=generator)[: self.n_centers]]
        else:
            raise ValueError(f"RBFLayer.init_centers: method={method!r} is not 'kmeans' or 'random'")
        self.centers.copy_(centers.to(self.centers))
        if fit_width and self.n_centers > 1:
            gaps = torch.cdist(centers, centers).fill_diagonal_(float("inf")).min(dim=1).values
            spacing = gaps[torch.isfinite(gaps) & (gaps > 0)].mean()
            if torch.isfinite(spacing):
                self.reset_precision(1.0 / spacing.item())

    def init_from_data(self, x: torch.Tensor, seed: int = 0) -> bool:
        """:meth:`init_centers` by k-means with the width fitted (the hook :func:`data_dependent_init` calls);
        nothing when the layer was built with ``data_init=False``."""
        if not self.data_init:
            return False
        self.init_centers(x, seed=seed)
        return True

    @torch.no_grad()
    def reset_precision(self, scale: float) -> None:
        """Set ``L = scale * I`` (``P = scale^2 I``) in every parametrization."""
        f = self.factor
        if self.precision in ("scalar", "diagonal"):
            f.fill_(scale)
        else:
            f.copy_(torch.eye(f.shape[-2], f.shape[-1], dtype=f.dtype, device=f.device).expand_as(f) * scale)

    # ---------------------------------------------------------------- forward
    def squared_distances(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - c_m)^T P_m (x - c_m)`` for every sample and centre: ``(N, M)`` from ``x (N, D)``."""
        c = self.centers
        if self.shared:
            factor = self.cholesky_factor()
            z, zc = x @ factor, c @ factor
            return _expanded_squared_distance(z, zc)
        if self.precision in ("scalar", "diagonal"):
            p = self.factor.square().expand(self.n_centers, self.in_features)  # diagonal of P_m, (M, D)
            return (x * x) @ p.T - 2 * x @ (p * c).T + (p * c * c).sum(-1)
        chunk = self.chunk_size or max(1, 2**22 // max(1, x.shape[0] * self.factor.shape[-1]))
        parts = []
        for start in range(0, self.n_centers, chunk):
            args = (x, c[start: start + chunk], self.cholesky_factor()[start: start + chunk])
            if torch.is_grad_enabled() and any(t.requires_grad for t in args):
                parts.append(checkpoint(_per_centre_distance, *args, use_reentrant=False))
            else:
                parts.append(_per_centre_distance(*args))
        return torch.cat(parts, dim=1)

    def check_input(self, x: torch.Tensor) -> None:
        """A float tensor ``(..., in_features)``; half inputs run in the parameters' dtype, which must be float32
        or float64 (exp of a difference of large terms); float32 / float64 inputs must match the parameters."""
        check_float_tensor(x, "RBFLayer")
        dtype = parameter_dtype(self)
        if dtype in _HALF:
            raise TypeError(f"RBFLayer: parameters in {dtype} are not supported, only float32 or float64 (the "
                            "Gaussian of a difference of large terms); keep the layer in float32, use torch.autocast")
        if x.dtype not in _HALF:
            check_dtype_matches(x, self, "RBFLayer")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"RBFLayer: input must have shape (..., {self.in_features}), got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        out_dtype = autocast_output_dtype(x)
        lead = x.shape[:-1]
        with torch.autocast(x.device.type, enabled=False):  # exp of a difference of large terms: float32 at least
            flat = x.reshape(-1, self.in_features)
            flat = flat.to(self.centers.dtype) if flat.dtype in _HALF else flat
            phi = torch.exp(-0.5 * self.squared_distances(flat))
            out = phi if self.linear is None else self.linear(phi)
        return out.reshape(*lead, out.shape[-1]).to(out_dtype)

    @property
    def regularization_active(self) -> bool:
        return any(self.regularization_weights)

    def regularization(self) -> torch.Tensor:
        """The paper's penalties ``lambda_L ||L||_F + lambda_w ||W||_F + lambda_c ||C||_F`` (unsquared norms)."""
        lam_l, lam_w, lam_c = self.regularization_weights
        total = lam_l * self.cholesky_factor().norm()
        if self.linear is not None:
            total = total + lam_w * self.linear.weight.norm()
        if isinstance(self.centers, nn.Parameter):
            total = total + lam_c * self.centers.norm()
        return total


def _expanded_squared_distance(z: torch.Tensor, zc: torch.Tensor) -> torch.Tensor:
    """``||z_n - zc_m||^2`` as ``||z||^2 - 2 z zc^T + ||zc||^2``, clamped at 0 (rounding can make it negative)."""
    d2 = torch.addmm((z * z).sum(-1, keepdim=True) + (zc * zc).sum(-1), z, zc.T, alpha=-2)
    return d2.clamp_min(0)


def _per_centre_distance(x: torch.Tensor, centers: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``||(x - c_m) L_m||^2`` for a chunk of centres: ``x (N, D)``, ``centers (m, D)``, ``factors (m, D, r)``."""
    z = torch.einsum("nd,mdr->nmr", x, factors)
    zc = torch.einsum("md,mdr->mr", centers, factors)
    return (z - zc).square().sum(-1)


@NEURONS.register("rbf")
def rbf_neurons(in_features: int, out_features: int, **options) -> RBFLayer:
    """An RBF hidden layer of ``out_features`` Gaussian neurons (its basis), for ``model.neuron=rbf``."""
    return RBFLayer(in_features, n_centers=out_features, out_features=None, **options)


def plot_rbf_interpretation(layer: RBFLayer, path: str | Path, feature_names: list[str] | None = None,
                            k: int = 2) -> Path:
    """A PNG with the eigenvalues of ``P``, the ``k`` leading eigenvectors and the feature importance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eigenvalues, eigenvectors = layer.active_subspace()
    importance = layer.feature_importance()
    d = layer.in_features
    names = feature_names or [f"x{i}" for i in range(d)]
    if len(names) != d:
        raise ValueError(f"plot_rbf_interpretation: {len(names)} feature names for {d} features")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    axes[0].bar(range(1, d + 1), eigenvalues.cpu().numpy())
    axes[0].set(title="eigenvalues of P", xlabel="index")
    for j in range(min(k, d)):
        axes[1].plot(eigenvectors[:, j].cpu().numpy(), marker="o", label=f"v{j + 1}")
    axes[1].set(title=f"leading {min(k, d)} eigenvectors", xticks=range(d))
    axes[1].set_xticklabels(names, rotation=90)
    axes[1].legend()
    order = torch.argsort(importance, descending=True).cpu().numpy()
    axes[2].bar(range(d), importance.cpu().numpy()[order])
    axes[2].set(title="feature importance", xticks=range(d))
    axes[2].set_xticklabels([names[i] for i in order], rotation=90)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
