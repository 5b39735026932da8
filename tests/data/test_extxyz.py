"""read_extxyz: frames, properties, cells, energies, forces and stress; ASE reads the same numbers; bad files
name their line."""

import pytest
import torch

from kernelnn.data.extxyz import ExtXYZError, read_extxyz

COMMENT = ('Lattice="4.0 0.0 0.0 0.0 4.0 0.0 0.5 0.0 4.0" Properties=species:S:1:pos:R:3:forces:R:3:charge:R:1 '
           'energy=-1.5 pbc="T T F" stress="1 2 3 4 5 6" note=hello')
TWO_FRAMES = f"""2
{COMMENT}
Ar 0.0 0.0 0.0 0.1 0.0 0.0 0.5
Kr 1.1 0.0 0.2 -0.1 0.0 0.0 -0.5
3
Properties=species:S:1:pos:R:3 free_energy=2.0 config_id=7
H 0.0 0.0 0.0
O 0.0 0.0 1.0
H 0.0 1.0 0.0
"""


def write(tmp_path, text, name="data.xyz"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_frames_and_their_fields(tmp_path):
    first, second = read_extxyz(write(tmp_path, TWO_FRAMES))
    assert first.numbers.tolist() == [18, 36] and second.numbers.tolist() == [1, 8, 1]
    torch.testing.assert_close(first.positions[1], torch.tensor([1.1, 0.0, 0.2], dtype=torch.float64))
    torch.testing.assert_close(first.forces[:, 0], torch.tensor([0.1, -0.1], dtype=torch.float64))
    assert first.energy == -1.5 and second.energy == 2.0
    assert first.cell[2].tolist() == [0.5, 0.0, 4.0] and first.pbc.tolist() == [True, True, False]
    assert first.stress[0, 1] == 6.0 and first.stress[1, 2] == 4.0  # Voigt xx yy zz yz xz xy
    assert first.arrays["charge"].tolist() == [0.5, -0.5]
    assert "note" not in first.info and second.info["config_id"].tolist() == [7.0]
    assert second.cell is None and second.pbc is None and second.forces is None


def test_default_columns_and_blank_lines(tmp_path):
    (frame,) = read_extxyz(write(tmp_path, "1\nplain comment\nC 1 2 3\n\n"))
    assert frame.numbers.tolist() == [6] and frame.positions.tolist() == [[1.0, 2.0, 3.0]]


def test_ase_reads_the_same(tmp_path):
    ase_io = pytest.importorskip("ase.io")
    # ASE takes a stress as 9 numbers only (its reader refuses Voigt's 6 in the comment line).
    path = write(tmp_path, TWO_FRAMES.replace('stress="1 2 3 4 5 6"', 'stress="1 6 5 6 2 4 5 4 3"'))
    ours = read_extxyz(path)
    theirs = ase_io.read(path, index=":", format="extxyz")
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a.positions, torch.tensor(b.positions))
        assert a.numbers.tolist() == b.numbers.tolist()
    torch.testing.assert_close(ours[0].forces, torch.tensor(theirs[0].get_forces()))
    torch.testing.assert_close(ours[0].cell, torch.tensor(theirs[0].cell.array))
    assert ours[0].energy == pytest.approx(theirs[0].get_potential_energy())
    torch.testing.assert_close(ours[0].stress, read_extxyz(write(tmp_path, TWO_FRAMES, "voigt.xyz"))[0].stress)


@pytest.mark.parametrize("text, message", [
    ("2\nProperties=species:S:1:forces:R:3\nAr 0 0 0\nAr 1 0 0\n", r"line 2: the frame has no positions"),
    ("2\nProperties=species:S:1:pos:R:3\nAr 0 0 0\n", "announces 2 atoms but the file ends after 1"),
    ("1\nProperties=species:S:1:pos:R:3\nAr 0 0\n", r"line 3: 3 columns, the Properties ask for 4"),
    ("1\nProperties=species:S:1:pos:R:3\nQq 0 0 0\n", r"unknown element symbols \['Qq'\]"),
    ("x\n\n", "expected the number of atoms"),
    ("1\nLattice=\"1 2 3\"\nAr 0 0 0\n", "Lattice has 3 numbers, expected 9"),
    ("1\npbc=\"T T T\"\nAr 0 0 0\n", "pbc is set but the frame has no Lattice"),
    ("1\nProperties=species:S:1:pos:R:3 energy=abc\nAr 0 0 0\n", "energy='abc' is not a list of numbers"),
    ("1\nProperties=pos:R:3\n0 0 0\n", "names no element per atom"),
    ("1\nProperties=species:S:1:pos:Q:3\nAr 0 0 0\n", "needs a type S, R, I or L"),
    ("", "holds no frames"),
    ("2\nProperties=Z:I:1:pos:R:3:Z:I:1\n1 0 0 0 8\n8 1 0 0 1\n", "names the column 'Z' twice"),
    ("1\nProperties=Z:I:1:pos:R:3\n1.7 0 0 0\n", "column 'Z' of type I holds a value that is not an integer"),
    ("1\nProperties=Z:I:1:pos:R:3\n-5 0 0 0\n", "atomic numbers must be integers 1..118"),
    ("1\nProperties=species:S:\u00b2:pos:R:3\nAr 0 0 0\n", "needs a type S, R, I or L and a count"),
    ("5000000\nx=1\nAr 0 0 0\n", "announces 5000000 atoms, more than the file's"),
])
def test_bad_files(tmp_path, text, message):
    with pytest.raises(ExtXYZError, match=message):
        read_extxyz(write(tmp_path, text))


def test_what_ase_also_reads(tmp_path):
    frames = read_extxyz(write(tmp_path, "1\nit's a plain comment\nAr 0 0 0\n0\nempty frame\n"
                                         "1\nLattice=\"2 0 0 0 2 0 0 0 2\" pbc=\"t t f\" note=\"1,000\"\nAr 0 0 0\n"))
    assert len(frames) == 3 and frames[1].positions.shape == (0, 3)
    assert frames[2].pbc.tolist() == [True, True, False] and "note" not in frames[2].info
    (tmp_path / "latin.xyz").write_bytes(b"1\ncaf\xe9\nAr 0 0 0\n")
    with pytest.raises(ExtXYZError, match="is not UTF-8 text"):
        read_extxyz(tmp_path / "latin.xyz")


def test_missing_file(tmp_path):
    with pytest.raises(ExtXYZError, match="is not a file"):
        read_extxyz(tmp_path / "none.xyz")


def frames_text(n_frames, sizes=None, energy=True, cell=None):
    g = torch.Generator().manual_seed(0)
    lines = []
    for k in range(n_frames):
        n = sizes[k] if sizes else 3
        lattice = f'Lattice="{cell} 0 0 0 {cell} 0 0 0 {cell}" ' if cell else ""
        lines += [str(n), f"{lattice}Properties=species:S:1:pos:R:3:forces:R:3" + (f" energy={-k - 1.5}" if energy
                                                                                      else "")]
        for a in range(n):
            x = (torch.rand(3, generator=g) * 2.5).tolist()
            lines.append(" ".join(["O" if a == 0 else "H", *map(str, x), "0.1", "-0.2", "0.3"]))
    return "\n".join(lines) + "\n"


def test_make_extxyz_bundle(tmp_path):
    from kernelnn.data.extxyz import make_extxyz
    from kernelnn.models import InteratomicPotential

    bundle = make_extxyz(str(write(tmp_path, frames_text(20))), val_fraction=0.1, test_fraction=0.2, cutoff=2.0)
    assert (len(bundle.train), len(bundle.val), len(bundle.tests["test"])) == (14, 2, 4)
    (positions, species), target = bundle.train[0]
    assert positions.shape == (3, 3) and species.tolist() == [1, 0, 0]  # H (Z=1) -> 0, O (Z=8) -> 1
    assert bundle.info["elements"] == [1, 8] and bundle.model_fill["species"] == 2
    assert target["energy"] == bundle.train.energy[0] and target["forces"].shape == (3, 3)
    model = InteratomicPotential(**{k: bundle.model_fill[k] for k in ("species", "energy_shift", "energy_scale",
                                                                      "cutoff")}, L=1, channels=4, layers=1)
    x, _ = bundle.train.collate([bundle.train[i] for i in range(4)])
    out = model(*x)
    assert out["energy"].shape == (4,) and out["forces"].shape == (12, 3)
    periodic = make_extxyz(str(write(tmp_path, frames_text(10, cell=5.0), "periodic.xyz")), cutoff=2.0)
    assert len(periodic.train[0][0]) == 3  # positions, species, cell


def test_make_extxyz_takes_frames_of_several_sizes(tmp_path):
    from kernelnn.data.extxyz import make_extxyz

    sizes = [3, 5, 4, 3, 5, 4, 3, 5, 4, 6]
    bundle = make_extxyz(str(write(tmp_path, frames_text(10, sizes=sizes))), val_fraction=0.0, test_fraction=0.0)
    train = bundle.train
    order = bundle.sources["train"][1].tolist()  # the file's frame of each sample
    assert [int(n) for n in train.atoms] == [sizes[k] for k in order] and train.sizes() == [3, 4, 5, 6]
    for sample, frame in enumerate(order):
        (positions, species), target = train[sample]
        assert positions.shape == (sizes[frame], 3) and target["energy"] == -frame - 1.5
    # the per-species energy shift is the least-squares fit over systems of all sizes (normal equations hold)
    counts = torch.stack([torch.bincount(train[k][0][1], minlength=2) for k in range(len(train))]).double()
    residual = train.energy.double() - counts @ torch.tensor(bundle.model_fill["energy_shift"], dtype=torch.float64)
    assert float((counts.T @ residual).abs().max()) < 1e-4


def test_make_extxyz_refuses_frames_without_energy(tmp_path):
    from kernelnn.data.extxyz import make_extxyz

    with pytest.raises(ExtXYZError, match="has no energy or no forces"):
        make_extxyz(str(write(tmp_path, frames_text(10, energy=False))))


def test_make_extxyz_names_the_file_frame_holding_nan(tmp_path):
    from kernelnn.data.extxyz import make_extxyz

    lines = frames_text(6).splitlines()
    lines[2 + 2 * 5 + 1] = lines[2 + 2 * 5 + 1].replace("-0.2", "nan")  # frame 2's second atom (frames of 3 atoms)
    with pytest.raises(ExtXYZError, match="frame 2 of .* holds NaN or inf"):
        make_extxyz(str(write(tmp_path, "\n".join(lines) + "\n")))
