"""Interpreting Kolmogorov-Arnold networks, as pykan does: attribution, pruning, edge plots, symbolic formulas.

The functions take a :class:`~kernelnn.models.KAN` and are also its methods (``model.prune(...)``); pykan's names
are kept so its users find them. See :mod:`.attribution`, :mod:`.plotting`, :mod:`.symbolic_library`,
:mod:`.symbolic_fit`, :mod:`.symbolic_layer` and :mod:`.formula`;
:func:`symbolic_regression` (:mod:`.recipe`) runs the whole workflow in one call.
"""

from kernelnn.interpret.attribution import attribute, edge_layers, layer_inputs, prune
from kernelnn.interpret.formula import symbolic_formula
from kernelnn.interpret.plotting import plot
from kernelnn.interpret.recipe import symbolic_regression
from kernelnn.interpret.symbolic_fit import auto_symbolic, fit_affine, fit_symbolic
from kernelnn.interpret.symbolic_layer import SymbolicKANLinear
from kernelnn.interpret.symbolic_library import FUNCTIONS, LIBRARIES, library

__all__ = ["FUNCTIONS", "LIBRARIES", "SymbolicKANLinear", "attribute", "auto_symbolic", "edge_layers",
           "fit_affine", "fit_symbolic", "layer_inputs", "library", "plot", "prune", "symbolic_formula",
           "symbolic_regression"]
