r"""A reader for extended-XYZ files, the format of MD17 and most interatomic-potential data sets.

Each frame is a line with the atom count, a comment line of ``key=value`` pairs, then one line per atom::

    2
    Lattice="4 0 0 0 4 0 0 0 4" Properties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc="T T T"
    Ar 0.0 0.0 0.0 0.1 0.0 0.0
    Ar 1.1 0.0 0.0 -0.1 0.0 0.0

``Properties`` names the columns (``name:type:count``, types ``S`` string, ``R`` real, ``I`` integer, ``L``
logical); without it the columns are ``species:S:1:pos:R:3``. The reader takes positions (``pos``), the element
(``species`` as a symbol, or ``Z`` / ``numbers`` as atomic numbers), forces (``forces`` or ``force``), the energy
(``energy``, any case, or ``free_energy``), the cell (``Lattice``, rows = lattice vectors), ``pbc`` (default: all
true when a lattice is given) and a stress (``stress``, 9 or Voigt 6 values). Other columns are kept by type
(``R`` float64, ``I`` int64, ``L`` bool) and other keys as float arrays where they are numbers. Nothing in a file
is executed or imported: values are parsed as numbers, booleans or strings only.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

ELEMENTS = (
    "X H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr Rb Sr Y Zr "
    "Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt "
    "Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv "
    "Ts Og").split()
ATOMIC_NUMBER = {symbol: z for z, symbol in enumerate(ELEMENTS)}


class ExtXYZError(ValueError):
    """A file that is not valid extended XYZ; the message names the file, the line and what was wrong."""


@dataclass
class Frame:
    """One configuration: ``positions (N, 3)`` and ``numbers (N,)`` (atomic numbers), and where the file has them
    ``cell (3, 3)``, ``pbc (3,)``, ``energy``, ``forces (N, 3)``, ``stress (3, 3)``; other numeric data in
    ``info`` (per frame) and ``arrays`` (per atom). float64."""

    positions: torch.Tensor
    numbers: torch.Tensor
    cell: torch.Tensor | None = None
    pbc: torch.Tensor | None = None
    energy: float | None = None
    forces: torch.Tensor | None = None
    stress: torch.Tensor | None = None
    info: dict[str, torch.Tensor] = field(default_factory=dict)
    arrays: dict[str, torch.Tensor] = field(default_factory=dict)


def _comment(line: str, where: str) -> dict[str, str]:
    if "=" not in line:  # a plain XYZ comment: free text, no key=value pairs
        return {}
    try:
        tokens = shlex.split(line, comments=False, posix=True)
    except ValueError as error:
        raise ExtXYZError(f"{where}: the comment line does not parse ({error})") from None
    pairs = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        pairs[key.strip()] = value.strip() if sep else "T"  # a bare key is a true flag, as ASE reads it
    return pairs


def _floats(text: str, count: int | None, where: str, key: str) -> torch.Tensor:
    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise ExtXYZError(f"{where}: {key}={text!r} is not a list of numbers") from None
    if count is not None and len(values) != count:
        raise ExtXYZError(f"{where}: {key} has {len(values)} numbers, expected {count}")
    return torch.tensor(values, dtype=torch.float64)


def _properties(spec: str, where: str) -> list[tuple[str, str, int]]:
    parts = spec.split(":")
    if len(parts) % 3:
        raise ExtXYZError(f"{where}: Properties={spec!r} is not a list of name:type:count")
    columns = []
    for name, kind, count in zip(parts[::3], parts[1::3], parts[2::3], strict=True):
        if kind not in ("S", "R", "I", "L") or not re.fullmatch(r"[0-9]+", count) or int(count) < 1:
            raise ExtXYZError(f"{where}: Properties entry {name}:{kind}:{count} needs a type S, R, I or L and a "
                              "count >= 1")
        if name in [c[0] for c in columns]:
            raise ExtXYZError(f"{where}: Properties names the column {name!r} twice")
        columns.append((name, kind, int(count)))
    return columns


def _parse_frame(lines: list[str], start: int, path: str) -> tuple[Frame, int]:
    where = f"{path}, line {start + 1}"
    try:
        n = int(lines[start].split()[0])
    except (ValueError, IndexError):
        raise ExtXYZError(f"{where}: expected the number of atoms, got {lines[start].strip()!r}") from None
    if n < 0:
        raise ExtXYZError(f"{where}: negative number of atoms {n}")
    if n > len(lines):
        raise ExtXYZError(f"{where}: the frame announces {n} atoms, more than the file's {len(lines)} lines")
    if start + 1 >= len(lines):
        raise ExtXYZError(f"{where}: the frame ends before its comment line")
    info = _comment(lines[start + 1], f"{path}, line {start + 2}")
    lowered = {key.lower(): key for key in info}
    spec = info[lowered["properties"]] if "properties" in lowered else "species:S:1:pos:R:3"
    columns = _properties(spec, f"{path}, line {start + 2}")
    names = [name for name, _, _ in columns]
    if "pos" not in names and "positions" not in names:
        raise ExtXYZError(f"{path}, line {start + 2}: the frame has no positions: Properties names {names}, "
                          "expected a 'pos' column (pos:R:3)")
    if start + 2 + n > len(lines):
        raise ExtXYZError(f"{where}: the frame announces {n} atoms but the file ends after "
                          f"{len(lines) - start - 2}")
    width = sum(count for _, _, count in columns)
    table: dict[str, list[list[str]]] = {name: [] for name in names}
    for k in range(n):
        fields = lines[start + 2 + k].split()
        if len(fields) != width:
            raise ExtXYZError(f"{path}, line {start + 3 + k}: {len(fields)} columns, the Properties ask for {width}")
        offset = 0
        for name, _, count in columns:
            table[name].append(fields[offset:offset + count])
            offset += count
    arrays: dict[str, torch.Tensor] = {}
    for name, kind, count in columns:
        if kind == "S":
            continue
        try:
            if kind == "L":
                flags = {"T": True, "True": True, "true": True, "t": True, "F": False, "False": False,
                         "false": False, "f": False}
                arrays[name] = torch.tensor([[flags[v] for v in row] for row in table[name]], dtype=torch.bool)
            elif kind == "I":
                arrays[name] = torch.tensor([[int(v) for v in row] for row in table[name]], dtype=torch.long)
            else:
                arrays[name] = torch.tensor([[float(v) for v in row] for row in table[name]], dtype=torch.float64)
        except (ValueError, KeyError):
            raise ExtXYZError(f"{where}: column {name!r} of type {kind} holds a value that is not "
                              f"{'T or F' if kind == 'L' else 'an integer' if kind == 'I' else 'a number'}") from None
        if n == 0:  # an empty frame: keep the column's width
            arrays[name] = arrays[name].reshape(0, count)
        if arrays[name].dim() == 2 and arrays[name].shape[1] == 1:
            arrays[name] = arrays[name][:, 0]
    positions = arrays.pop("pos", None)
    positions = arrays.pop("positions") if positions is None else positions
    if positions.dtype != torch.float64 or positions.shape != (n, 3):
        raise ExtXYZError(f"{where}: positions must have 3 columns, got shape {tuple(positions.shape)}")
    if "species" in table and columns[names.index("species")][1] == "S":
        unknown = sorted({row[0] for row in table["species"]} - set(ATOMIC_NUMBER))
        if unknown:
            raise ExtXYZError(f"{where}: unknown element symbols {unknown}")
        numbers = torch.tensor([ATOMIC_NUMBER[row[0]] for row in table["species"]], dtype=torch.long)
    elif "Z" in arrays or "numbers" in arrays:
        numbers = arrays.pop("Z") if "Z" in arrays else arrays.pop("numbers")
        if numbers.dtype != torch.long or bool(((numbers < 1) | (numbers >= len(ELEMENTS))).any()):
            raise ExtXYZError(f"{where}: atomic numbers must be integers 1..{len(ELEMENTS) - 1} (an I column)")
    else:
        raise ExtXYZError(f"{where}: the frame names no element per atom (a species:S:1, Z:I:1 or numbers:I:1 "
                          "column)")
    forces = arrays.pop("forces", None)
    forces = arrays.pop("force", None) if forces is None else forces
    if forces is not None and forces.shape != (n, 3):
        raise ExtXYZError(f"{where}: forces must have 3 columns, got shape {tuple(forces.shape)}")
    frame = Frame(positions=positions, numbers=numbers, forces=forces, arrays=arrays)
    line = f"{path}, line {start + 2}"
    for key, value in info.items():
        low = key.lower()
        if low == "properties":
            continue
        if low == "lattice":
            frame.cell = _floats(value, 9, line, key).reshape(3, 3)
        elif low == "pbc":
            flags = value.split()
            if len(flags) != 3 or any(f.lower() not in ("t", "f", "true", "false") for f in flags):
                raise ExtXYZError(f"{line}: pbc={value!r} must be three T/F flags")
            frame.pbc = torch.tensor([f.lower() in ("t", "true") for f in flags])
        elif low in ("energy", "free_energy") and (frame.energy is None or low == "energy"):
            frame.energy = float(_floats(value, 1, line, key))
        elif low == "stress":
            values = _floats(value, None, line, key)
            if values.numel() == 9:
                frame.stress = values.reshape(3, 3)
            elif values.numel() == 6:  # Voigt order xx yy zz yz xz xy
                xx, yy, zz, yz, xz, xy = values.tolist()
                frame.stress = torch.tensor([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]], dtype=torch.float64)
            else:
                raise ExtXYZError(f"{line}: stress has {values.numel()} numbers, expected 9 or 6 (Voigt)")
        elif "," not in value:  # "1,000" is text, not two numbers
            try:
                frame.info[key] = _floats(value, None, line, key)
            except ExtXYZError:
                pass  # strings and flags are kept out: only numbers become tensors
    if frame.cell is not None and frame.pbc is None:
        frame.pbc = torch.ones(3, dtype=torch.bool)
    if frame.pbc is not None and bool(frame.pbc.any()) and frame.cell is None:
        raise ExtXYZError(f"{line}: pbc is set but the frame has no Lattice")
    return frame, start + 2 + n


def read_extxyz(path: str | Path) -> list[Frame]:
    """Every frame of an extended-XYZ file (module docstring); :class:`ExtXYZError` names the line of a problem.

    Example
    -------
    >>> frames = read_extxyz("train.xyz")  # doctest: +SKIP
    >>> frames[0].positions.shape, frames[0].energy  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise ExtXYZError(f"read_extxyz: {path} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ExtXYZError(f"read_extxyz: {path} is not UTF-8 text ({error})") from None
    lines = text.split("\n")  # only newlines end lines (str.splitlines also splits at form feeds)
    lines = [line.rstrip("\r") for line in lines]
    if lines and not lines[-1]:
        lines.pop()  # the final newline ends the last line; it does not start another
    frames, start = [], 0
    while start < len(lines):
        if not lines[start].strip():
            start += 1
            continue
        frame, start = _parse_frame(lines, start, str(path))
        frames.append(frame)
    if not frames:
        raise ExtXYZError(f"read_extxyz: {path} holds no frames")
    return frames


def make_extxyz(path: str, val_fraction: float = 0.1, test_fraction: float = 0.1, cutoff: float = 5.0,
                energy_weight: float = 1.0, force_weight: float = 1.0, seed: int = 0,
                name: str = "extxyz") -> Any:
    """A training bundle from an extended-XYZ file (``data=extxyz data.path=...``): every frame needs positions,
    an energy and forces; frames may have any numbers of atoms (batches join them without padding,
    :class:`~kernelnn.data.atomic_systems.AtomicSystems`). Frames are split at random (``seed``) into train / val /
    test. Species are the file's elements, numbered in increasing atomic number; cells and pbc are used when the
    file has them (all frames alike)."""
    from kernelnn.data.atomic_systems import AtomicSystems
    from kernelnn.data.bundle import DataBundle

    frames = read_extxyz(path)
    missing = [k for k, f in enumerate(frames) if f.energy is None or f.forces is None]
    if missing:
        raise ExtXYZError(f"extxyz: frame {missing[0]} of {path} (and {len(missing) - 1} more) has no energy or no "
                          "forces; data=extxyz trains on both")
    def finite(f) -> bool:
        values = [f.positions, f.forces, torch.tensor(float(f.energy))] + ([f.cell] if f.cell is not None else [])
        return all(bool(torch.isfinite(t).all()) for t in values)

    bad = [k for k, f in enumerate(frames) if not finite(f)]
    if bad:
        raise ExtXYZError(f"extxyz: frame {bad[0]} of {path} (and {len(bad) - 1} more) holds NaN or inf in its "
                          "positions, forces, energy or cell")
    periodic = {bool(f.pbc.any()) if f.pbc is not None else False for f in frames}
    if len(periodic) != 1:
        raise ExtXYZError(f"extxyz: {path} mixes periodic and open frames")
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"extxyz: data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must be in "
                         "[0, 1) with a sum below 1")
    elements = sorted({int(z) for f in frames for z in f.numbers})
    index = {z: k for k, z in enumerate(elements)}
    positions = [f.positions for f in frames]
    species = [torch.tensor([index[int(z)] for z in f.numbers], dtype=torch.long) for f in frames]
    if periodic.pop():
        if any(f.pbc is None or not bool(f.pbc.all()) for f in frames):
            raise ExtXYZError(f"extxyz: {path}: data=extxyz takes fully periodic or open frames (pbc all T or all F)")
        cells = torch.stack([f.cell for f in frames])
        positions = [x @ torch.linalg.inv(c) % 1.0 @ c for x, c in zip(positions, cells, strict=True)]  # wrapped
    else:
        cells = None
    energies = torch.tensor([f.energy for f in frames], dtype=torch.float64)
    order = torch.randperm(len(frames), generator=torch.Generator().manual_seed(seed))
    n_val, n_test = int(round(val_fraction * len(frames))), int(round(test_fraction * len(frames)))
    n_train = len(frames) - n_val - n_test
    if n_train < 1:
        raise ValueError(f"extxyz: {path} has {len(frames)} frames, none left to train on")
    parts = order.split([n_train, n_val, n_test])

    def dataset(rows: torch.Tensor) -> AtomicSystems:
        pick = rows.tolist()
        return AtomicSystems.from_frames([positions[k].float() for k in pick], [species[k] for k in pick],
                                         energies[rows], [frames[k].forces.float() for k in pick],
                                         None if cells is None else cells[rows].float())

    train, val, test = (dataset(rows) for rows in parts)
    counts = torch.stack([torch.bincount(species[k], minlength=len(elements)) for k in parts[0].tolist()]).double()
    shift = torch.linalg.lstsq(counts, energies[parts[0], None]).solution[:, 0]
    forces = torch.cat([frames[k].forces for k in parts[0].tolist()])
    fill = {"species": len(elements), "energy_shift": [float(v) for v in shift],
            "energy_scale": float(forces.square().mean().sqrt()), "cutoff": cutoff}
    return DataBundle(name=name, task="energy_forces", train=train, val=val if n_val else None,
                      tests={"test": test} if n_test else {}, in_channels=3, out_channels=1, dim=0, geometric=True,
                      model_fill=fill, loss_weights={"energy": energy_weight, "forces": force_weight},
                      info={"elements": elements, "path": str(path)},
                      sources={split: (str(path), rows) for split, rows in zip(("train", "val", "test"), parts,
                                                                               strict=True) if len(rows)})
