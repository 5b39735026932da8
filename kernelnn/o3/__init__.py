"""O(3) representation theory in e3nn's conventions: irreps, Wigner 3j symbols and D matrices."""

from kernelnn.o3.irreps import Irrep, Irreps, MulIrrep
from kernelnn.o3.wigner import clebsch_gordan_complex, wigner_3j, wigner_D

__all__ = ["Irrep", "Irreps", "MulIrrep", "clebsch_gordan_complex", "wigner_3j", "wigner_D"]
