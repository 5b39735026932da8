r"""Symbolic regression functions: the classic KAN benchmark and a few Feynman equations, generated in code.

Inputs are drawn uniformly from each variable's range; targets are exact (optionally with noise). Functions:

* ``exp_sin``: :math:`\exp(\sin(\pi x) + y^2)` on :math:`[-1, 1]^2` (Liu et al.'s toy example);
* ``product``: :math:`xy` on :math:`[-1, 1]^2`;
* ``feynman_I_6_2``: :math:`\exp(-\theta^2 / 2\sigma^2) / \sqrt{2\pi\sigma^2}`, :math:`\theta \in [-1, 1]`,
  :math:`\sigma \in [1, 2]` (Gaussian density);
* ``feynman_I_12_11``: :math:`q (E + B v \sin\theta)` with :math:`q, E, B, v \in [-1, 1]`,
  :math:`\theta \in [0, \pi]` (Lorentz force);
* ``feynman_I_29_16``: :math:`\sqrt{x_1^2 + x_2^2 - 2 x_1 x_2 \cos(\theta_1 - \theta_2)}` with
  :math:`x_i \in [0, 1]`, :math:`\theta_i \in [0, \pi]` (sum of two waves);
* ``composition``: :math:`\sin(e^x + y^2)` on :math:`[-1, 1]^2`;
* ``constant``: :math:`\tfrac52 e^{-x^2} + y + \tfrac34` on :math:`[-1, 1]^2` (constants to recover).

:data:`FORMULAS` holds each as a sympy string and :func:`formula` parses it: the truth for symbolic regression.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.utils.data import TensorDataset

from kernelnn.data.bundle import DataBundle

FUNCTIONS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], list[tuple[float, float]]]] = {
    "exp_sin": (lambda v: torch.exp(torch.sin(math.pi * v[:, 0]) + v[:, 1] ** 2), [(-1, 1), (-1, 1)]),
    "product": (lambda v: v[:, 0] * v[:, 1], [(-1, 1), (-1, 1)]),
    "feynman_I_6_2": (lambda v: torch.exp(-(v[:, 0] / v[:, 1]) ** 2 / 2) / torch.sqrt(2 * math.pi * v[:, 1] ** 2),
                      [(-1, 1), (1, 2)]),
    "feynman_I_12_11": (lambda v: v[:, 0] * (v[:, 1] + v[:, 2] * v[:, 3] * torch.sin(v[:, 4])),
                        [(-1, 1)] * 4 + [(0, math.pi)]),
    "feynman_I_29_16": (lambda v: torch.sqrt(v[:, 0] ** 2 + v[:, 1] ** 2
                                             - 2 * v[:, 0] * v[:, 1] * torch.cos(v[:, 2] - v[:, 3])),
                        [(0, 1), (0, 1), (0, math.pi), (0, math.pi)]),
    "composition": (lambda v: torch.sin(torch.exp(v[:, 0]) + v[:, 1] ** 2), [(-1, 1), (-1, 1)]),
    "constant": (lambda v: 2.5 * torch.exp(-v[:, 0] ** 2) + v[:, 1] + 0.75, [(-1, 1), (-1, 1)]),
}

# The same functions as sympy expressions of x_1, x_2, ... (the truth symbolic regression is scored against).
FORMULAS: dict[str, str] = {
    "exp_sin": "exp(sin(pi*x_1) + x_2**2)",
    "product": "x_1*x_2",
    "feynman_I_6_2": "exp(-(x_1/x_2)**2/2)/sqrt(2*pi*x_2**2)",
    "feynman_I_12_11": "x_1*(x_2 + x_3*x_4*sin(x_5))",
    "feynman_I_29_16": "sqrt(x_1**2 + x_2**2 - 2*x_1*x_2*cos(x_3 - x_4))",
    "composition": "sin(exp(x_1) + x_2**2)",
    "constant": "5*exp(-x_1**2)/2 + x_2 + 3/4",
}


def formula(function: str):
    """The sympy expression of a named function, in real symbols ``x_1, x_2, ...``."""
    import sympy  # here, not at import: sympy is slow to import

    if function not in FORMULAS:
        raise ValueError(f"formula: function={function!r} is not known; valid: {', '.join(FORMULAS)}")
    n = len(FUNCTIONS[function][1])
    symbols = sympy.symbols(f"x_1:{n + 1}", real=True)
    return sympy.sympify(FORMULAS[function], locals={s.name: s for s in symbols})


def make_symbolic(function: str = "exp_sin", n_train: int = 1000, n_val: int = 200, n_test: int = 1000,
                        noise: float = 0.0, seed: int = 0, name: str = "symbolic") -> DataBundle:
    """``(n, variables)`` inputs and ``(n, 1)`` targets of a named function (see the module docstring)."""
    if function not in FUNCTIONS:
        raise ValueError(f"{name}: data.function={function!r} is not known; valid: {', '.join(FUNCTIONS)}")
    fn, ranges = FUNCTIONS[function]
    low = torch.tensor([r[0] for r in ranges], dtype=torch.float64)
    high = torch.tensor([r[1] for r in ranges], dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)

    def sample(n: int) -> TensorDataset:
        x = low + (high - low) * torch.rand(n, len(ranges), generator=gen, dtype=torch.float64)
        y = fn(x) + noise * torch.randn(n, generator=gen, dtype=torch.float64)
        return TensorDataset(x.float(), y[:, None].float())

    train, val, test = sample(n_train), sample(n_val), sample(n_test)
    return DataBundle(name=name, task="regression", train=train, val=val if n_val else None, tests={"test": test},
                      in_channels=len(ranges), out_channels=1, dim=0,
                      info={"function": function, "ranges": ranges})
