"""Irreps: parsing in e3nn's notation, layout, arithmetic, the representation D(M), and e3nn interop."""

import pytest
import torch

from kernelnn.o3 import Irrep, Irreps
from kernelnn.testing import default_dtype, random_rotation


def test_parse_layout_and_print_as_e3nn_does():
    irreps = Irreps("8x0e + 8x1o + 4x2e + 1y")
    assert [(mul, ir.l, ir.p) for mul, ir in irreps] == [(8, 0, 1), (8, 1, -1), (4, 2, 1), (1, 1, -1)]
    assert irreps.dim == 8 + 24 + 20 + 3 and irreps.num_irreps == 21 and irreps.lmax == 2
    assert str(irreps) == "8x0e+8x1o+4x2e+1x1o"
    assert irreps.slices()[1] == slice(8, 32) and irreps.slices()[-1] == slice(52, 55)
    assert Irreps(str(irreps)) == irreps and Irreps(irreps) is irreps
    assert Irreps([(2, "1e"), (3, (0, -1))]) == Irreps("2x1e + 3x0o")
    assert Irreps("") == Irreps() and Irreps("").dim == 0
    assert Irreps("0e") == Irreps("1x0e")


def test_arithmetic_and_helpers():
    assert Irreps("2x0e") + "1x1o" == Irreps("2x0e + 1x1o")
    assert Irreps("1x0e") * 2 == Irreps("1x0e + 1x0e")
    assert Irreps("1x0e + 2x0e + 0x1o + 1x1o").simplify() == Irreps("3x0e + 1x1o")
    assert Irreps("1x2e + 1x0e + 1x1o").sort() == (Irreps("1x0e + 1x1o + 1x2e"), (1, 2, 0))
    assert Irreps("2x1o + 1x0e + 3x1o").count("1o") == 5
    assert Irreps.spherical_harmonics(3) == Irreps("0e + 1o + 2e + 3o")
    assert Irreps("1x1o").ls == [1] and Irreps("2x1o + 0e").ls == [1, 1, 0]
    assert Irrep("1o") * Irrep("2e") == [Irrep("1o"), Irrep("2o"), Irrep("3o")]
    assert Irrep("3y") == Irrep(3, -1) == (3, -1) and Irrep((2, 1)).dim == 5
    assert 3 * Irrep("1e") == Irreps("3x1e")
    irreps = Irreps("2x0e + 1x1o + 3x2e")
    assert irreps[1:] == Irreps("1x1o + 3x2e") and isinstance(irreps[1:], Irreps)  # slices stay irreps (e3nn)
    assert "1o" in irreps and Irrep("2e") in irreps and "1e" not in irreps and "junk" not in irreps


@pytest.mark.parametrize("text", ["8x1q", "x1o", "2x", "1.5x0e", "-1x0e", "8x0e ++ 1o", "1o 2e", "two x 1o"])
def test_bad_strings_name_the_argument_and_the_term(text):
    with pytest.raises(ValueError, match=r"Irreps: irreps_in1=.* is not like '8x1o'"):
        Irreps(text, "irreps_in1")


@pytest.mark.parametrize("value", [(1, 0), (-1, 1), ("1", 1), (1.0, 1), (True, 1)])
def test_bad_irreps_are_refused(value):
    with pytest.raises(ValueError, match="Irrep: .* is not an irrep"):
        Irrep(value)
    with pytest.raises(ValueError, match=r"Irrep: irreps_out=.* is not an irrep"):
        Irreps([(1, value)], "irreps_out")
    with pytest.raises(ValueError, match="irreps_out has the entry 5; each entry must be"):
        Irreps([(1, "0e"), 5], "irreps_out")


def test_bad_types_are_refused():
    with pytest.raises(TypeError, match="must be a string like"):
        Irreps(3.5)
    with pytest.raises(TypeError, match="repeat by an integer"):
        Irreps("0e") * 1.5


def test_D_is_an_orthogonal_representation_of_o3_with_parity():
    irreps = Irreps("2x0e + 1x0o + 1x1o + 1x1e + 1x2e + 1x3o")
    a, b = random_rotation(), -random_rotation()  # b improper
    for m in (a, b):
        d = irreps.D_from_matrix(m)
        torch.testing.assert_close(d @ d.T, torch.eye(irreps.dim, dtype=torch.float64))
    torch.testing.assert_close(irreps.D_from_matrix(a @ b), irreps.D_from_matrix(a) @ irreps.D_from_matrix(b))
    torch.testing.assert_close(Irreps("1o").D_from_matrix(b), b)  # vectors flip under inversion
    torch.testing.assert_close(Irreps("1e").D_from_matrix(b), -b)  # pseudovectors do not
    torch.testing.assert_close(Irreps("0o").D_from_matrix(b), -torch.ones(1, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="orthogonal 3 x 3"):
        irreps.D_from_matrix(torch.ones(3, 3))


def test_interoperates_with_e3nn():
    o3 = pytest.importorskip("e3nn.o3")
    text = "8x0e + 8x1o + 4x2e + 3x3o + 2x1e"
    theirs, ours = o3.Irreps(text), Irreps(text)
    assert str(ours) == str(theirs) and ours.dim == theirs.dim
    assert Irreps(theirs) == ours and o3.Irreps(str(ours)) == theirs
    assert [s for s in ours.slices()] == theirs.slices()
    m = -random_rotation()
    with default_dtype(torch.float64):  # e3nn builds D in the default dtype
        expected = theirs.D_from_matrix(m)
    torch.testing.assert_close(ours.D_from_matrix(m), expected, atol=1e-12, rtol=0)
