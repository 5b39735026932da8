r"""An O(3)-equivariant message-passing network on point clouds built from Gaunt tensor products.

Each point carries features ``h (channels, classes, (L+1)^2)``: real spherical-harmonic coefficients in e3nn's
layout (component normalisation) per channel, in one parity class (``parities="sphere"``: ``0e + 1o + 2e + ...``)
or two (``parities="all"``: also ``0o + 1e + 2o + ...``, "The Price of Freedom"). One interaction layer:

1. **Gaunt point convolution** (NequIP's convolution with the Clebsch-Gordan product replaced by the Gaunt
   product): :math:`m_i = \frac{1}{\bar n} \sum_{j \ne i} h_j \circledast F_{ij}`, with the edge filter
   :math:`F_{ij} = \sum_l R_l(d_{ij}) Y_l(\hat r_{ij})`: spherical harmonics of the edge direction weighted per
   (channel, degree) by an MLP of a Bessel basis of the distance times a smooth cutoff. The Gaunt product is a
   point-wise product of spherical functions, and the projection back to coefficients is linear, so the sum over
   neighbours is taken on the sphere grid and projected once per point (exactly
   :math:`\sum_j \mathrm{gaunt}(h_j, F_{ij})`, tested).
2. with ``parities="all"``: a **pseudovector seed**, the cross product of two channel mixes of the degree-1
   messages (``1o x 1o -> 1e``). The Gaunt product is symmetric and cannot make it ("The Price of Freedom"), and
   without it no feature can tell a shape from its mirror image.
3. **Gaunt self-product** :math:`m \circledast m` (:class:`~kernelnn.layers.GauntTensorProduct`, channel-wise with
   per-degree weights and channel mixing): many-body features, as Luo et al. use Gaunt products in MACE.
4. **Update**: per-degree linear maps of ``m``, of the product and of ``h`` (self-interaction), summed, then the
   **gated nonlinearity**, added to ``h`` (residual).

Readout: ``output="invariant"``: the mean over points of the invariant scalars (and, with all parities, of the
pseudoscalars: they distinguish mirror images), then an MLP: logits or invariant properties ``(batch,
out_features)``. ``output="energy_forces"``: an MLP per point on the invariant scalars gives atomic energies,
``E = energy_scale * sum_i e_i + energy_shift * n_points``, and forces ``F = -dE/dx`` by autograd:
``(batch, 1 + 3 n_points)`` = ``[E, F.flatten()]`` (``forces=False``: ``(batch, 1)``).

Shapes: ``positions (batch, n_points, 3)``, optional ``mask (batch, n_points)`` (False: padding; a padded point
changes nothing; two points at exactly the same place do not interact). Invariant outputs are unchanged by
rotations and translations (and by reflections, except for the pseudoscalar readout of ``parities="all"``, which
is meant to tell mirror images apart); forces rotate with the input.

Sources: Luo et al., "Enabling Efficient Equivariant Operations in the Fourier Basis via Gaunt Tensor Products"
(ICLR 2024); Xie et al., "The Price of Freedom"; Batzner et al., NequIP (Nat. Commun. 2022) for the convolution,
Bessel basis and cutoff; Weiler et al. 2018 for the gate.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from kernelnn.layers.cp_tensor_product import CPTensorProduct, cp_rank_for
from kernelnn.layers.degree_linear import DegreeLinear
from kernelnn.layers.gate import Gate
from kernelnn.layers.gaunt import sphere_grid_plan
from kernelnn.layers.gaunt_layer import GauntTensorProduct
from kernelnn.layers.input_checks import check_dtype_matches
from kernelnn.layers.radial import BesselBasis, PolynomialCutoff
from kernelnn.layers.spherical_harmonics import spherical_harmonics
from kernelnn.layers.tensor_product import TensorProduct
from kernelnn.o3.irreps import Irreps

OUTPUTS = ("invariant", "energy_forces")
PARITIES = ("sphere", "all")
TENSOR_PRODUCTS = ("gaunt", "cg", "cp")
FOUR_PI_ROOT = math.sqrt(4 * math.pi)


class Edges:
    """What every layer needs about the pairs of one batch (computed once per forward, shared by the layers)."""

    def __init__(self, positions: torch.Tensor, mask: torch.Tensor, L: int, L_sh: int, basis: BesselBasis,
                 cutoff: PolynomialCutoff) -> None:
        n = positions.shape[-2]
        eye = torch.eye(n, dtype=torch.bool, device=positions.device)
        valid = mask[:, :, None] & mask[:, None, :] & ~eye  # (batch, i, j)
        r = positions[:, None, :, :] - positions[:, :, None, :]  # r_ij = x_j - x_i
        valid = valid & (r.detach().square().sum(-1) > 0)  # coincident points: no direction, no edge
        # Self-pairs and padding get a harmless unit vector before the norm (no 0/0 in values or gradients).
        r = torch.where(valid[..., None], r, torch.ones_like(r))
        d = r.norm(dim=-1)
        self.weight = cutoff(d) * valid  # smooth envelope; 0 for invalid pairs and beyond the cutoff
        self.basis = basis(d)  # (batch, i, j, num_basis)
        self.harmonics = spherical_harmonics(L_sh, r, normalization="component")  # (batch, i, j, (L_sh+1)^2)
        # Per-degree values of the edge harmonics on the sphere grid of the (L, L_sh) -> L product (component
        # normalisation: sqrt(4 pi) x the integral-normalised synthesis).
        _, synthesis, _ = sphere_grid_plan(L, L_sh, L, positions)
        synthesis = FOUR_PI_ROOT * synthesis.T  # ((L_sh+1)^2, grid)
        y = self.harmonics
        self.grid_harmonics = torch.stack([y[..., l * l:(l + 1) ** 2] @ synthesis[l * l:(l + 1) ** 2]
                                           for l in range(L_sh + 1)], -2)  # (batch, i, j, L_sh+1, grid)


class GauntConvolution(nn.Module):
    """``h (batch, n, channels, classes, (L+1)^2) -> messages`` of the same shape (module docstring, step 1)."""

    def __init__(self, L: int, L_sh: int, channels: int, num_basis: int, radial_hidden: int,
                 avg_neighbors: float) -> None:
        super().__init__()
        self.L, self.L_sh, self.channels, self.avg_neighbors = L, L_sh, channels, float(avg_neighbors)
        self.radial = nn.Sequential(nn.Linear(num_basis, radial_hidden), nn.SiLU(),
                                    nn.Linear(radial_hidden, channels * (L_sh + 1)))

    def forward(self, h: torch.Tensor, edges: Edges) -> torch.Tensor:
        b_h, _, projection = sphere_grid_plan(self.L, self.L_sh, self.L, h)
        # Component normalisation: values are sqrt(4 pi) x integral ones; projection divides by it.
        h_grid = h @ (FOUR_PI_ROOT * b_h.T)  # (batch, n, channels, classes, grid)
        # The filter: the edge harmonics' grid values weighted per (channel, degree) by the radial MLP.
        radial = self.radial(edges.basis).unflatten(-1, (self.channels, self.L_sh + 1))
        radial = radial * (edges.weight / self.avg_neighbors)[..., None, None]
        filters = torch.einsum("bijcl,bijlg->bijcg", radial, edges.grid_harmonics)
        messages = torch.einsum("bijcg,bjckg->bickg", filters, h_grid)
        return messages @ (projection.T / FOUR_PI_ROOT)


def harmonic_feature_irreps(L: int, channels: int, classes: int) -> Irreps:
    """The irreps of features ``(..., channels, classes, (L+1)^2)`` once moved to e3nn's layout (class 0: parity
    :math:`(-1)^l`, class 1: the opposite), term by term ``(class, l)``."""
    return Irreps([(channels, (l, (-1) ** (l + k))) for k in range(classes) for l in range(L + 1)])


def to_e3nn_layout(h: torch.Tensor) -> torch.Tensor:
    """``(..., channels, classes, (L+1)^2) -> (..., dim)`` in the order of :func:`harmonic_feature_irreps`."""
    L = math.isqrt(h.shape[-1]) - 1
    # Splits, not slices: a slice's backward writes a zero tensor of the whole input, once per slice.
    degrees = [d for c in h.unbind(-2) for d in c.split([2 * l + 1 for l in range(L + 1)], dim=-1)]
    return torch.cat([d.flatten(-2) for d in degrees], dim=-1)


def from_e3nn_layout(x: torch.Tensor, L: int, channels: int, classes: int) -> torch.Tensor:
    """The inverse of :func:`to_e3nn_layout`."""
    sizes = [channels * (2 * l + 1) for _ in range(classes) for l in range(L + 1)]
    blocks = [b.unflatten(-1, (channels, -1)) for b in x.split(sizes, dim=-1)]
    return torch.stack([torch.cat(blocks[k * (L + 1):(k + 1) * (L + 1)], dim=-1) for k in range(classes)], dim=-2)


class ChannelwiseProduct(nn.Module):
    """The self-product ``m x m`` of step 3 by the full Clebsch-Gordan product (``"cg"``: every path allowed by
    the classes, its own weight per channel) or its CP decomposition (``"cp"``: TDN's shared path weights plus
    per-degree weights), channel by channel ("uuu"), on features ``(..., channels, classes, (L+1)^2)``."""

    def __init__(self, L: int, channels: int, classes: int, kind: str, rank: int | None) -> None:
        super().__init__()
        self.L, self.channels, self.classes = L, channels, classes
        irreps = harmonic_feature_irreps(L, channels, classes)
        if kind == "cg":
            instructions = [(i1, i2, io, "uuu", True) for i1, (_, a) in enumerate(irreps)
                            for i2, (_, b) in enumerate(irreps) for io, (_, c) in enumerate(irreps) if c in a * b]
            self.product = TensorProduct(irreps, irreps, irreps, instructions)
        else:
            self.product = CPTensorProduct(irreps, irreps, irreps, rank=rank, mode="uuu", share_path_weights=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.product(to_e3nn_layout(x), to_e3nn_layout(y))
        return from_e3nn_layout(out, self.L, self.channels, self.classes)


class Interaction(nn.Module):
    """One layer: convolution, (pseudovector seed), self-product, linear update, gate, residual."""

    def __init__(self, L: int, L_sh: int, channels: int, classes: int, num_basis: int, radial_hidden: int,
                 avg_neighbors: float, self_product: bool, method: str, tensor_product: str = "gaunt",
                 cp_rank: int | None = None) -> None:
        super().__init__()
        self.classes = classes
        self.conv = GauntConvolution(L, L_sh, channels, num_basis, radial_hidden, avg_neighbors)
        if classes == 2 and L >= 1:
            self.cross_a = nn.Linear(channels, channels, bias=False)
            self.cross_b = nn.Linear(channels, channels, bias=False)
        else:
            self.cross_a = self.cross_b = None
        if not self_product:
            self.product = None
        elif tensor_product == "gaunt":
            self.product = GauntTensorProduct(L, L, L, channels, mix_channels=True,
                                              parities="all" if classes == 2 else "sphere", method=method,
                                              normalization="component")
        else:
            self.product = ChannelwiseProduct(L, channels, classes, tensor_product, cp_rank)
        self.linear_message = DegreeLinear(L, channels, channels, classes)
        self.linear_product = DegreeLinear(L, channels, channels, classes, bias=False) if self_product else None
        self.linear_self = DegreeLinear(L, channels, channels, classes, bias=False)
        self.gate = Gate(L, channels, classes)

    def forward(self, h: torch.Tensor, edges: Edges) -> torch.Tensor:
        m = self.conv(h, edges)
        if self.cross_a is not None:
            vectors = m[..., 0, 1:4].transpose(-1, -2)  # (batch, n, 3, channels): (x, y, z) of each channel
            pseudo = torch.linalg.cross(self.cross_a(vectors), self.cross_b(vectors), dim=-2).transpose(-1, -2)
            seed = F.pad(pseudo, (1, m.shape[-1] - 4))  # into degree 1 of the pseudo class
            m = torch.stack([m[..., 0, :], m[..., 1, :] + seed], -2)
        update = self.linear_message(m) + self.linear_self(h)
        if self.product is not None:
            if isinstance(self.product, ChannelwiseProduct):
                p = self.product(m, m)
            elif self.classes == 2:
                p = self.product(m, m)
            else:
                p = self.product(m[..., 0, :], m[..., 0, :])[..., None, :]
            update = update + self.linear_product(p)
        return h + self.gate(update)


class EquivariantNet(nn.Module):
    """Gaunt-product message passing on point clouds (module docstring).

    Parameters
    ----------
    out_features : int
        Readout size (classes; 1 for ``output="energy_forces"``).
    output : {"invariant", "energy_forces"}
    L : int
        Degree of the point features; ``L_sh`` (default ``L``) of the edge harmonics.
    channels, layers : int
    parities : {"all", "sphere"}
        ``"all"`` adds the pseudo class (and the pseudovector seed): needed to tell mirror images apart.
    cutoff : float
        Radius of the neighbourhood (smooth polynomial cutoff, exponent ``cutoff_p``).
    num_basis, radial_hidden : int
        Bessel functions of the distance, and the hidden width of each layer's radial MLP.
    avg_neighbors : float
        Messages are summed over neighbours and divided by this (a fixed number, so a point's output never
        depends on other samples of the batch).
    self_product : bool
        The Gaunt self-product of each layer's messages.
    readout_hidden : int
    energy_shift, energy_scale : float
        ``E = energy_scale * sum_i e_i + energy_shift * n_points`` (from the training data in configs).
    forces : bool
        With ``output="energy_forces"``, also return ``-dE/dx``.
    method : str
        Method of the Gaunt self-product (:func:`~kernelnn.layers.gaunt_tensor_product`).
    tensor_product : {"gaunt", "cg", "cp"}
        The self-product: Gaunt (even paths only), the full Clebsch-Gordan product
        (:class:`~kernelnn.layers.TensorProduct`, every path the classes allow, a weight per path and channel), or
        its CP decomposition (:class:`~kernelnn.layers.CPTensorProduct`, TDN: shared path weights).
    cp_rank : int, optional
        Rank of the CP product; default: the smallest whose fit error is at most 1e-3
        (:func:`~kernelnn.layers.cp_tensor_product.cp_rank_for`).

    Example
    -------
    >>> net = EquivariantNet(8, L=2, channels=8, layers=2)
    >>> net(torch.randn(5, 4, 3)).shape
    torch.Size([5, 8])
    """

    def __init__(self, out_features: int, output: str | None = "invariant", L: int = 2, L_sh: int | None = None,
                 channels: int = 32, layers: int = 3, parities: str = "all", cutoff: float = 3.0,
                 cutoff_p: int = 6, num_basis: int = 8, radial_hidden: int = 32, avg_neighbors: float = 8.0,
                 self_product: bool = True, readout_hidden: int = 32, energy_shift: float | None = 0.0,
                 energy_scale: float | None = 1.0, forces: bool = True, method: str = "auto",
                 tensor_product: str = "gaunt", cp_rank: int | None = None) -> None:
        super().__init__()
        _energy_forces_runs_eagerly()
        output = output or "invariant"
        if output not in OUTPUTS:
            raise ValueError(f"EquivariantNet: output={output!r}; valid: {', '.join(OUTPUTS)}")
        if parities not in PARITIES:
            raise ValueError(f"EquivariantNet: parities={parities!r}; valid: {', '.join(PARITIES)}")
        L_sh = L if L_sh is None else L_sh
        for arg, value, low in (("out_features", out_features, 1), ("L", L, 0), ("L_sh", L_sh, 0),
                                ("channels", channels, 1), ("layers", layers, 1), ("num_basis", num_basis, 1),
                                ("radial_hidden", radial_hidden, 1), ("readout_hidden", readout_hidden, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"EquivariantNet: {arg}={value!r} must be an int >= {low}")
        if output == "energy_forces" and out_features != 1:
            raise ValueError(f"EquivariantNet: output='energy_forces' predicts one energy, so out_features must be "
                             f"1, got {out_features}")
        if not avg_neighbors > 0:
            raise ValueError(f"EquivariantNet: avg_neighbors={avg_neighbors!r} must be positive")
        if tensor_product not in TENSOR_PRODUCTS:
            raise ValueError(f"EquivariantNet: tensor_product={tensor_product!r}; valid: {', '.join(TENSOR_PRODUCTS)}")
        if cp_rank is not None and (isinstance(cp_rank, bool) or not isinstance(cp_rank, int) or cp_rank < 1):
            raise ValueError(f"EquivariantNet: cp_rank={cp_rank!r} must be a positive int or None (automatic)")
        self.output, self.parities, self.forces = output, parities, forces
        self.L, self.channels = L, channels
        classes = 2 if parities == "all" else 1
        self.classes = classes
        self.basis = BesselBasis(num_basis, cutoff)
        self.cutoff = PolynomialCutoff(cutoff, cutoff_p)
        self.L_sh = L_sh
        # Every point starts as the same invariant scalars (one kind of point).
        self.embedding = nn.Parameter(torch.ones(channels))
        if tensor_product == "cp" and self_product and cp_rank is None:
            irreps = harmonic_feature_irreps(L, 1, classes)
            cp_rank = cp_rank_for(irreps, irreps, irreps, tolerance=1e-3, mode="uuu")
        self.tensor_product, self.cp_rank = tensor_product, cp_rank
        self.layers = nn.ModuleList(
            Interaction(L, L_sh, channels, classes, num_basis, radial_hidden, avg_neighbors, self_product, method,
                        tensor_product, cp_rank)
            for _ in range(layers))
        pooled = channels * (2 if classes == 2 and output == "invariant" else 1)
        self.readout = nn.Sequential(nn.Linear(pooled, readout_hidden), nn.SiLU(),
                                     nn.Linear(readout_hidden, out_features))
        self.register_buffer("energy_shift", torch.tensor(float(0.0 if energy_shift is None else energy_shift)))
        self.register_buffer("energy_scale", torch.tensor(float(1.0 if energy_scale is None else energy_scale)))

    def extra_repr(self) -> str:
        return (f"output={self.output!r}, L={self.L}, channels={self.channels}, parities={self.parities!r}, "
                f"tensor_product={self.tensor_product!r}")

    def check_input(self, positions: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``positions`` is a float tensor ``(batch, n_points, 3)`` and
        ``mask``, if given, a bool tensor ``(batch, n_points)``."""
        if not isinstance(positions, torch.Tensor):
            raise TypeError(f"EquivariantNet: positions must be a torch.Tensor, got {type(positions).__name__}")
        if positions.dim() != 3 or positions.shape[-1] != 3:
            raise ValueError(f"EquivariantNet: positions must have shape (batch, n_points, 3), got "
                             f"{tuple(positions.shape)}")
        if not positions.is_floating_point():
            raise TypeError(f"EquivariantNet: positions must be floating point, got {positions.dtype}")
        check_dtype_matches(positions, self, "EquivariantNet", "positions")
        if mask is not None and (not isinstance(mask, torch.Tensor) or mask.shape != positions.shape[:2]
                                 or mask.dtype != torch.bool):
            got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"EquivariantNet: mask must be a bool tensor of shape {tuple(positions.shape[:2])}, "
                             f"got {got}")

    def features(self, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Point features after the last layer: ``(batch, n_points, channels, classes, (L+1)^2)``."""
        edges = Edges(positions, mask, self.L, self.L_sh, self.basis, self.cutoff)
        batch, n = positions.shape[:2]
        h = positions.new_zeros(batch, n, self.channels, self.classes, (self.L + 1) ** 2)
        h = h + F.pad(self.embedding.to(positions.dtype)[:, None, None],
                      (0, (self.L + 1) ** 2 - 1, 0, self.classes - 1))
        for layer in self.layers:
            h = layer(h, edges)
        return h

    def forward(self, positions: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        self.check_input(positions, mask)
        if mask is None:
            mask = torch.ones(positions.shape[:2], dtype=torch.bool, device=positions.device)
        if self.output == "invariant":
            h = self.features(positions, mask)
            invariants = rearrange(h[..., 0], "b n c k -> b n (k c)")  # scalars (and pseudoscalars)
            weights = mask.to(h.dtype)[..., None]
            pooled = (invariants * weights).sum(1) / weights.sum(1).clamp_min(1)
            return self.readout(pooled)
        return self._energy_forces(positions, mask)

    # torch.compile's aot_autograd has no double backward (training on forces needs one): this part runs eagerly
    # inside a compiled model (torch.compiler.disable, applied by _energy_forces_runs_eagerly).
    def _energy_forces(self, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Forces need the graph even under torch.no_grad (evaluation); the caller's grad mode decides whether the
        # forces themselves are differentiable (training on forces) or plain numbers.
        differentiable = torch.is_grad_enabled()
        with torch.enable_grad():
            x = positions if positions.requires_grad else positions.detach().requires_grad_(self.forces)
            h = self.features(x, mask)
            atomic = self.readout(h[..., :, 0, 0]).squeeze(-1) * mask  # (batch, n)
            energy = self.energy_scale * atomic.sum(-1) + self.energy_shift * mask.sum(-1)
            if not self.forces:
                return energy[:, None] if differentiable else energy[:, None].detach()
            (grad,) = torch.autograd.grad(energy.sum(), x, create_graph=differentiable)
        out = torch.cat([energy[:, None], -grad.flatten(1)], -1)
        return out if differentiable else out.detach()


def _energy_forces_runs_eagerly() -> None:
    """Wrap :meth:`EquivariantNet._energy_forces` in ``torch.compiler.disable`` once, when the first net is built:
    as a decorator it would import ``torch._dynamo`` (about a second) with kernelnn. Nets are built before they are
    compiled, so the wrapper is in place whenever dynamo meets the method."""
    global _EAGER
    if not _EAGER:
        EquivariantNet._energy_forces = torch.compiler.disable(EquivariantNet._energy_forces)
        _EAGER = True


_EAGER = False
