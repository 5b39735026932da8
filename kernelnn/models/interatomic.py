r"""An equivariant interatomic potential on neighbour lists: energies, forces and stress of systems of any size.

Atoms of several systems are concatenated (``batch[i]`` = system of atom ``i``; no padding), pairs come from
:func:`~kernelnn.layers.neighbor_list.neighbor_list` (cell lists, periodic cells), so time and memory grow
linearly with the number of atoms at fixed density. Features are irreps ``C x (0e + 1o + 2e + ...)`` up to
degree ``L`` in e3nn's layout, starting from a learned embedding of each atom's species (scalars).

One interaction layer (NequIP's, with a choice of tensor product):

1. **Convolution**: :math:`m_i = \frac{1}{\bar n} \sum_{j} \mathrm{TP}(h_j, Y(\hat r_{ij});\, R(d_{ij}))`, the edge
   harmonics :math:`Y` (component normalisation) weighted by an MLP :math:`R` of a Bessel basis of the distance
   times a smooth polynomial cutoff. ``tensor_product="cg"``: the Clebsch-Gordan product
   (:class:`~kernelnn.layers.TensorProduct`, mode "uvu", a radial weight per path and channel); ``"cp"``: its
   CP decomposition (:class:`~kernelnn.layers.CPTensorProduct`, TDN: one radial weight per channel for all paths);
   ``"gaunt"``: the Gaunt product of :math:`h_j` with the filter :math:`\sum_l R_{l}(d) Y_l` (radial weights per
   channel and filter degree). The features carry the harmonics' parities only, so the three share one path set
   (:math:`l_1 + l_2 + l_3` even) and differ in coefficients and weights.
2. **Update**: :math:`h \leftarrow h + \mathrm{Gate}(W_m m + W_s h)` with equivariant linear maps
   (:class:`~kernelnn.layers.IrrepsLinear`) and the gated nonlinearity (SiLU on scalars, sigmoid gates on the
   rest).

Readout: atomic energies from the scalars, :math:`E = \text{scale} \sum_i e_i + \sum_i \text{shift}_{Z_i}`;
forces :math:`F = -\partial E / \partial x` and, for periodic systems, the stress
:math:`\sigma = \frac{1}{V} \partial E / \partial \varepsilon` (a symmetric strain :math:`\varepsilon` applied to
positions and cell), all from one backward pass.

Sources: Batzner et al., "E(3)-equivariant graph neural networks for data-efficient and accurate interatomic
potentials" (NequIP, Nat. Commun. 2022); Lin et al., TDN (NeurIPS 2025) for the CP product; Luo et al. (ICLR 2024)
for the Gaunt product.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from kernelnn.layers.cp_tensor_product import CPTensorProduct, cp_rank_for
from kernelnn.layers.gaunt import gaunt_tensor_product
from kernelnn.layers.irreps_linear import IrrepsLinear
from kernelnn.layers.neighbor_list import Neighbors, edge_vectors, neighbor_list
from kernelnn.layers.radial import BesselBasis, PolynomialCutoff
from kernelnn.layers.spherical_harmonics import spherical_harmonics
from kernelnn.layers.tensor_product import TensorProduct
from kernelnn.models.equivariant import from_e3nn_layout, to_e3nn_layout
from kernelnn.o3.irreps import Irreps

TENSOR_PRODUCTS = ("gaunt", "cg", "cp")


def feature_irreps(L: int, channels: int) -> Irreps:
    return Irreps([(channels, (l, (-1) ** l)) for l in range(L + 1)])


class Convolution(nn.Module):
    """``h (N, H.dim)`` and the edges -> messages ``(N, H.dim)`` (module docstring, step 1)."""

    def __init__(self, L: int, channels: int, kind: str, num_basis: int, radial_hidden: int,
                 avg_neighbors: float, cp_rank: int | None) -> None:
        super().__init__()
        self.L, self.channels, self.kind, self.avg_neighbors = L, channels, kind, float(avg_neighbors)
        features, harmonics = feature_irreps(L, channels), Irreps.spherical_harmonics(L)
        if kind == "cg":
            paths = [(i1, i2, io, "uvu", True) for i1, (_, a) in enumerate(features)
                     for i2, (_, b) in enumerate(harmonics) for io, (_, c) in enumerate(features) if c in a * b]
            self.product = TensorProduct(features, harmonics, features, paths, shared_weights=False)
            n_weights = self.product.weight_numel
        elif kind == "cp":
            self.product = CPTensorProduct(features, harmonics, features, rank=cp_rank, mode="uvu",
                                           shared_weights=False)
            n_weights = self.product.weight_numel
        else:
            self.product = None
            n_weights = channels * (L + 1)  # per channel and filter degree
        self.radial = nn.Sequential(nn.Linear(num_basis, radial_hidden), nn.SiLU(),
                                    nn.Linear(radial_hidden, n_weights))

    def forward(self, h: torch.Tensor, edges: dict[str, torch.Tensor], chunk: int | None = None) -> torch.Tensor:
        """Messages summed over edges, ``chunk`` edges at a time when given: each chunk's intermediates stay small
        (cache-sized, reused by the allocator), which keeps the time per atom flat up to 32,768 atoms and beyond;
        one pass over all edges allocates edge-sized intermediates afresh and took up to 1.5x longer per atom at 32,768
        atoms than at 4,096 (CPU)."""
        out = torch.zeros_like(h)
        n_edges = edges["i"].shape[0]
        # One gather for all edges: a gather per chunk would zero-fill an (N, H.dim) gradient per chunk in backward.
        # Then split, not slices: a slice's backward writes an edge-sized zero tensor per chunk (quadratic work).
        sources = {**edges, "hj": h.index_select(0, edges["j"])}
        parts = {k: v.split(chunk or max(n_edges, 1)) for k, v in sources.items()}
        for part in (dict(zip(parts, p, strict=True)) for p in zip(*parts.values(), strict=True)):
            out.index_add_(0, part["i"], self.messages(part).to(h.dtype))
        return out / self.avg_neighbors

    def messages(self, edges: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(E, H.dim)``: the message along each edge ``i <- j`` (``edges["hj"]``: the features of ``j``)."""
        weights = self.radial(edges["basis"]) * edges["envelope"][:, None]
        if self.product is not None:
            return self.product(edges["hj"], edges["harmonics"], weights)
        hj = from_e3nn_layout(edges["hj"], self.L, self.channels, 1)[..., 0, :]  # (E, C, (L+1)^2)
        device = hj.device
        degree = torch.repeat_interleave(torch.arange(self.L + 1, device=device),
                                         2 * torch.arange(self.L + 1, device=device) + 1)
        radial = weights.unflatten(-1, (self.channels, self.L + 1))[..., degree]  # (E, C, (L+1)^2)
        filters = radial * edges["harmonics"][:, None, :]
        product = gaunt_tensor_product(hj, filters, self.L, normalization="component")
        return to_e3nn_layout(product[..., None, :])


class IrrepsGate(nn.Module):
    """SiLU on ``C`` scalars, sigmoid gates (``C`` per higher degree) on the higher irreps: ``(N, C (1 + L) x 0e
    + C x (1o + ... )) -> (N, H.dim)``."""

    def __init__(self, L: int, channels: int) -> None:
        super().__init__()
        self.L, self.channels = L, channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, L = self.channels, self.L
        scalars, gates, rest = x.split([c, c * L, x.shape[-1] - c * (L + 1)], dim=-1)
        pieces = [torch.nn.functional.silu(scalars)]
        blocks = rest.split([c * (2 * l + 1) for l in range(1, L + 1)], dim=-1)
        for l, (gate, block) in enumerate(zip(gates.split(c, dim=-1), blocks, strict=True), start=1):
            pieces.append((torch.sigmoid(gate)[:, :, None] * block.unflatten(-1, (c, 2 * l + 1))).flatten(-2))
        return torch.cat(pieces, dim=-1)


class Interaction(nn.Module):
    def __init__(self, L: int, channels: int, kind: str, num_basis: int, radial_hidden: int, avg_neighbors: float,
                 cp_rank: int | None) -> None:
        super().__init__()
        features = feature_irreps(L, channels)
        gated = Irreps([(channels * (L + 1), (0, 1))]) + Irreps([(channels, (l, (-1) ** l)) for l in range(1, L + 1)])
        self.conv = Convolution(L, channels, kind, num_basis, radial_hidden, avg_neighbors, cp_rank)
        self.linear_message = IrrepsLinear(features, gated, biases=True)
        self.linear_self = IrrepsLinear(features, gated)
        self.gate = IrrepsGate(L, channels)

    def forward(self, h: torch.Tensor, edges: dict[str, torch.Tensor], chunk: int | None = None) -> torch.Tensor:
        m = self.conv(h, edges, chunk)
        return h + self.gate(self.linear_message(m) + self.linear_self(h))


class InteratomicPotential(nn.Module):
    """Energies, forces and stress of atomic systems on neighbour lists (module docstring).

    Parameters
    ----------
    species : int
        Number of species; ``species`` inputs are indices ``0 .. species - 1``.
    L, channels, layers : int
        Feature degree, channels per degree, interaction layers.
    cutoff : float
        Interaction radius (smooth polynomial cutoff, exponent ``cutoff_p``).
    num_basis, radial_hidden : int
        Bessel functions of the distance; hidden width of the radial MLPs.
    avg_neighbors : float
        Messages are summed and divided by this (a constant: an atom's output never depends on other systems).
    tensor_product : {"gaunt", "cg", "cp"}
    cp_rank : int, optional
        Rank of the CP product; default: the smallest whose fit error is at most 1e-3.
    energy_scale : float
    energy_shift : sequence of float, optional
        Per-species energy added per atom (e.g. from a least-squares fit on the training set).
    edge_chunk : int, optional
        Edges processed at a time in each convolution (same result; bounds the size of its intermediates, which
        keeps time per atom flat in large systems); ``None``: all at once.

    Call: ``model(positions (N, 3), species (N,), batch=None, cell=None, pbc=None, forces=True, stress=False)``
    -> ``{"energy": (B,), "forces": (N, 3), "stress": (B, 3, 3)}`` (stress needs cells); the training loop calls it
    so on batches of :class:`~kernelnn.data.atomic_systems.AtomicSystems`. Systems of one size
    may also come stacked, as the training loop batches them: ``model(positions (B, n, 3), species (B, n),
    cell (B, 3, 3) or None)`` -> ``(B, 1 + 3n)`` = ``[energy, forces.flatten()]`` (the ``energy_forces`` task).

    Example
    -------
    >>> model = InteratomicPotential(species=2, L=1, channels=8, layers=1, cutoff=3.0)
    >>> out = model(torch.randn(10, 3), torch.randint(2, (10,)))
    >>> out["energy"].shape, out["forces"].shape
    (torch.Size([1]), torch.Size([10, 3]))
    """

    def __init__(self, species: int, L: int = 2, channels: int = 16, layers: int = 2, cutoff: float = 5.0,
                 cutoff_p: int = 6, num_basis: int = 8, radial_hidden: int = 32, avg_neighbors: float = 10.0,
                 tensor_product: str = "cg", cp_rank: int | None = None, readout_hidden: int = 16,
                 energy_scale: float | None = 1.0, energy_shift: list[float] | None = None,
                 edge_chunk: int | None = 32768) -> None:
        super().__init__()
        _runs_eagerly()
        name = "InteratomicPotential"
        for arg, value, low in (("species", species, 1), ("L", L, 0), ("channels", channels, 1),
                                ("layers", layers, 1), ("num_basis", num_basis, 1),
                                ("radial_hidden", radial_hidden, 1), ("readout_hidden", readout_hidden, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: {arg}={value!r} must be an int >= {low}")
        if tensor_product not in TENSOR_PRODUCTS:
            raise ValueError(f"{name}: tensor_product={tensor_product!r}; valid: {', '.join(TENSOR_PRODUCTS)}")
        if not (isinstance(cutoff, (int, float)) and cutoff > 0):
            raise ValueError(f"{name}: cutoff={cutoff!r} must be a positive number")
        if edge_chunk is not None and (isinstance(edge_chunk, bool) or not isinstance(edge_chunk, int)
                                       or edge_chunk < 1):
            raise ValueError(f"{name}: edge_chunk={edge_chunk!r} must be None or an int >= 1")
        self.edge_chunk = edge_chunk
        if not avg_neighbors > 0:
            raise ValueError(f"{name}: avg_neighbors={avg_neighbors!r} must be positive")
        self.species, self.L, self.channels, self.cutoff = species, L, channels, float(cutoff)
        self.tensor_product = tensor_product
        if tensor_product == "cp" and cp_rank is None:
            one = feature_irreps(L, 1)
            cp_rank = cp_rank_for(one, Irreps.spherical_harmonics(L), one, tolerance=1e-3, mode="uvu")
        self.cp_rank = cp_rank
        self.irreps = feature_irreps(L, channels)
        self.embedding = nn.Embedding(species, channels)
        self.basis = BesselBasis(num_basis, cutoff)
        self.envelope = PolynomialCutoff(cutoff, cutoff_p)
        self.layers = nn.ModuleList(Interaction(L, channels, tensor_product, num_basis, radial_hidden,
                                                avg_neighbors, cp_rank) for _ in range(layers))
        self.readout = nn.Sequential(nn.Linear(channels, readout_hidden), nn.SiLU(), nn.Linear(readout_hidden, 1))
        shift = torch.zeros(species) if energy_shift is None else torch.as_tensor(energy_shift, dtype=torch.float32)
        if shift.shape != (species,):
            raise ValueError(f"{name}: energy_shift needs {species} values (one per species), got {tuple(shift.shape)}")
        self.register_buffer("energy_shift", shift)
        self.register_buffer("energy_scale", torch.tensor(float(1.0 if energy_scale is None else energy_scale)))

    def get_extra_state(self) -> dict:
        """The settings the weights mean nothing without, saved in the state dict and checked on load."""
        return {"cutoff": self.cutoff, "tensor_product": self.tensor_product, "cp_rank": self.cp_rank,
                "avg_neighbors": self.layers[0].conv.avg_neighbors, "cutoff_p": int(self.envelope.p)}

    def set_extra_state(self, state: dict) -> None:
        mine = self.get_extra_state()
        if not isinstance(state, dict):
            raise ValueError(f"InteratomicPotential: the state dict's settings are {type(state).__name__}, not a dict")
        differ = {k: (state.get(k), v) for k, v in mine.items() if state.get(k) != v}
        if differ:
            listed = ", ".join(f"{k}: checkpoint {a!r}, this model {b!r}" for k, (a, b) in differ.items())
            raise ValueError(f"InteratomicPotential: the checkpoint was trained with other settings ({listed}); "
                             "build the model with the checkpoint's settings")

    def extra_repr(self) -> str:
        return (f"species={self.species}, L={self.L}, channels={self.channels}, cutoff={self.cutoff}, "
                f"tensor_product={self.tensor_product!r}")

    @staticmethod
    def _check_types(positions: Any, species: Any) -> None:
        name = "InteratomicPotential"
        if not isinstance(positions, torch.Tensor) or not positions.is_floating_point():
            raise TypeError(f"{name}: positions must be a floating-point tensor, got "
                            f"{getattr(positions, 'dtype', type(positions).__name__)}")
        if not isinstance(species, torch.Tensor) or species.dtype != torch.long:
            raise TypeError(f"{name}: species must be a long (int64) tensor of species indices, got "
                            f"{getattr(species, 'dtype', type(species).__name__)}")

    def _check(self, positions: torch.Tensor, species: torch.Tensor) -> None:
        name = "InteratomicPotential"
        self._check_types(positions, species)
        if positions.dim() != 2 or positions.shape[-1] != 3:
            raise ValueError(f"{name}: positions must have shape (N, 3) (or (B, n, 3) stacked), got "
                             f"{tuple(positions.shape)}")
        if species.shape != positions.shape[:1]:
            raise ValueError(f"{name}: species must have shape ({positions.shape[0]},), got {tuple(species.shape)}")
        dtype = self.embedding.weight.dtype
        if positions.dtype != dtype and not torch.is_autocast_enabled(positions.device.type):
            raise TypeError(f"{name}: positions dtype {positions.dtype} does not match the parameters' dtype {dtype}; "
                            f"convert the positions (positions.to({dtype})) or the model (model.to({positions.dtype}))")
        if species.numel() and (int(species.min()) < 0 or int(species.max()) >= self.species):
            bad = species[(species < 0) | (species >= self.species)].unique().tolist()
            raise ValueError(f"{name}: unknown species indices {bad}; this model knows 0..{self.species - 1} "
                             f"(species={self.species})")

    def forward(self, positions: torch.Tensor, species: torch.Tensor, batch: torch.Tensor | None = None,
                cell: torch.Tensor | None = None, pbc: torch.Tensor | bool | None = None, forces: bool = True,
                stress: bool = False, neighbors: Neighbors | None = None) -> dict[str, torch.Tensor] | torch.Tensor:
        if isinstance(positions, torch.Tensor) and positions.dim() == 3:  # stacked: the third argument is the cell
            return self._stacked(positions, species, cell if cell is not None else batch)
        self._check(positions, species)
        if batch is None:
            batch = torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device)
        if stress and cell is None:
            raise ValueError("InteratomicPotential: stress=True needs the cells of the systems")
        if (forces or stress) and torch.is_inference_mode_enabled():
            raise RuntimeError("InteratomicPotential: forces and stress are derivatives, and torch.inference_mode() "
                               "forbids autograd; call the model under torch.no_grad() instead (or forces=False)")
        if cell is not None:
            cell = torch.as_tensor(cell, dtype=positions.dtype, device=positions.device)
        if neighbors is None:
            try:
                neighbors = neighbor_list(positions, self.cutoff, batch=batch, cell=cell, pbc=pbc)
            except ValueError as error:
                raise ValueError(f"InteratomicPotential: {error}") from None
        systems = int(batch.max()) + 1 if batch.numel() else 0
        differentiable = torch.is_grad_enabled()
        with torch.enable_grad():
            x = positions if positions.requires_grad else positions.detach().requires_grad_(forces or stress)
            cells = None if cell is None else (cell if cell.dim() == 3 else cell[None].expand(systems, 3, 3))
            strain = None
            if stress:
                strain = torch.zeros(systems, 3, 3, dtype=x.dtype, device=x.device, requires_grad=True)
                symmetric = (strain + strain.transpose(1, 2)) / 2
                x = x + torch.einsum("na,nab->nb", x, symmetric[batch])
                cells = cells + cells @ symmetric
            energy = self.energy(x, species, batch, cells, neighbors, systems)
            wanted = [t for t, on in ((x, forces), (strain, stress)) if on]
            # materialize_grads: an atom with no neighbours (or no pairs at all) gets a zero force, not an error
            grads = torch.autograd.grad(energy.sum(), wanted, create_graph=differentiable,
                                        materialize_grads=True) if wanted else []
        out = {"energy": energy}
        grads = list(grads)
        if forces:
            out["forces"] = -grads.pop(0)
        if stress:
            volume = torch.linalg.det(cell if cell.dim() == 3 else cell[None].expand(systems, 3, 3)).abs()
            out["stress"] = grads.pop(0) / volume[:, None, None]
        return out if differentiable else {k: v.detach() for k, v in out.items()}

    def _stacked(self, positions: torch.Tensor, species: torch.Tensor, cell: torch.Tensor | None) -> torch.Tensor:
        """``(B, n, 3)``, ``(B, n)``, ``(B, 3, 3)`` -> ``(B, 1 + 3n)``: the systems flattened into one padding-free
        batch, the result packed as the ``energy_forces`` task wants it."""
        b, n = positions.shape[:2]
        self._check_types(positions, species)
        if positions.shape[-1] != 3:
            raise ValueError(f"InteratomicPotential: stacked positions must have shape (B, n, 3), got "
                             f"{tuple(positions.shape)}")
        if cell is not None and (not isinstance(cell, torch.Tensor) or cell.shape != (b, 3, 3)):
            raise ValueError(f"InteratomicPotential: with stacked positions {tuple(positions.shape)}, the cells must "
                             f"be ({b}, 3, 3), got {tuple(getattr(cell, 'shape', ()))}")
        if species.shape != (b, n):
            raise ValueError(f"InteratomicPotential: with stacked positions {tuple(positions.shape)}, species must "
                             f"have shape ({b}, {n}), got {tuple(species.shape)}")
        batch = torch.arange(b, device=positions.device).repeat_interleave(n)
        out = self(positions.reshape(b * n, 3), species.reshape(b * n), batch=batch, cell=cell)
        return torch.cat([out["energy"][:, None], out["forces"].reshape(b, 3 * n)], dim=1)

    def energy(self, positions: torch.Tensor, species: torch.Tensor, batch: torch.Tensor,
               cells: torch.Tensor | None, neighbors: Neighbors, systems: int) -> torch.Tensor:
        """Energies ``(B,)`` from positions (differentiable) and a neighbour list."""
        r = edge_vectors(positions, neighbors, batch=batch, cell=cells)
        apart = r.detach().square().sum(-1) > 0  # coincident atoms have no direction: no edge
        if not bool(apart.all()):
            neighbors = Neighbors(*(t[apart] for t in neighbors))
            r = r[apart]
        d = r.norm(dim=-1)
        edges = {"i": neighbors.i, "j": neighbors.j, "basis": self.basis(d), "envelope": self.envelope(d),
                 "harmonics": spherical_harmonics(self.L, r, normalization="component")}
        h = positions.new_zeros(positions.shape[0], self.irreps.dim)
        h = torch.cat([self.embedding(species).to(positions.dtype), h[:, self.channels:]], dim=-1)
        for layer in self.layers:
            h = layer(h, edges, self.edge_chunk)
        atomic = self.readout(h[:, :self.channels]).squeeze(-1)
        # The sum over atoms in the positions' precision (float32 under autocast): energies are large sums.
        atomic = self.energy_scale.to(positions.dtype) * atomic.to(positions.dtype) \
            + self.energy_shift.to(positions.dtype)[species]
        return positions.new_zeros(systems).index_add(0, batch, atomic)


def _runs_eagerly() -> None:
    """Wrap :meth:`InteratomicPotential.forward` in ``torch.compiler.disable`` once, when the first model is built:
    its neighbour list has data-dependent sizes and its forces need a double backward in training, which
    aot_autograd lacks, so it runs eagerly inside a compiled model. (Applied here rather than as a decorator, which
    would import ``torch._dynamo``, about a second, with kernelnn.)"""
    global _EAGER
    if not _EAGER:
        InteratomicPotential.forward = torch.compiler.disable(InteratomicPotential.forward)
        _EAGER = True


_EAGER = False
