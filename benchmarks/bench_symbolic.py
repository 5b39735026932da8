"""Symbolic regression with KANs: does ``symbolic_formula()`` after pruning recover each formula of ``data=symbolic``?

    python benchmarks/bench_symbolic.py                       # every formula
    python benchmarks/bench_symbolic.py --functions exp_sin product

Issue #18's target: the formula is symbolically equal to the truth (sympy ``simplify(found - truth) == 0``) or
within 1e-6 relative L2 of it on 1,000 test points. Each formula runs :func:`kernelnn.interpret.symbolic_regression`
(pykan's workflow: sparse L-BFGS training, prune, grid refinement 5 -> 10 -> 20, auto_symbolic over the default
library, fit_symbolic, symbolic_formula) on 1,000 noiseless training points, from a KAN ``[in, 5, 1]`` (two
inputs) or ``[in, 5, 5, 1]``. The verdict is ``symbolic``, ``numeric`` or ``fail``; a failure shows its error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import sympy
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_OUT, describe, write_results  # noqa: E402

from kernelnn.data.symbolic import FUNCTIONS, formula, make_symbolic  # noqa: E402
from kernelnn.interpret import symbolic_regression  # noqa: E402


def verdict(found: sympy.Expr, truth: sympy.Expr, x: torch.Tensor) -> tuple[str, float]:
    """(``symbolic`` | ``numeric`` | ``fail``, relative L2 error of ``found`` against ``truth`` on ``x``)."""
    symbols = sorted(truth.free_symbols | found.free_symbols, key=lambda s: s.name)
    names = [f"x_{i + 1}" for i in range(x.shape[1])]
    lookup = {s.name: s for s in symbols}
    variables = [lookup.get(n, sympy.Symbol(n, real=True)) for n in names]
    f_found = sympy.lambdify(variables, found, "numpy")
    f_truth = sympy.lambdify(variables, truth, "numpy")
    columns = x.double().numpy().T
    a = torch.as_tensor(f_found(*columns), dtype=torch.float64).expand(x.shape[0])
    b = torch.as_tensor(f_truth(*columns), dtype=torch.float64).expand(x.shape[0])
    error = ((a - b).norm() / b.norm()).item()
    try:
        equal = sympy.simplify(found - truth) == 0
    except Exception:  # noqa: BLE001 - a simplify that fails is no proof either way
        equal = False
    if equal:
        return "symbolic", error
    return ("numeric" if error <= 1e-6 else "fail"), error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--functions", nargs="+", default=list(FUNCTIONS), choices=list(FUNCTIONS),
                        help="formulas of data=symbolic to fit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT / "symbolic_cpu",
                        help="stem of the result files (.md and .json)")
    args = describe(parser).parse_args()
    torch.set_default_dtype(torch.float32)
    rows = []
    for name in args.functions:
        data = make_symbolic(name, n_train=1000, n_val=0, n_test=1000, seed=args.seed)
        x, y = data.train.tensors
        x_test = data.tests["test"].tensors[0]
        widths = [x.shape[1], 5, 1] if x.shape[1] == 2 else [x.shape[1], 5, 5, 1]
        start = time.perf_counter()
        try:
            result = symbolic_regression(x, y, widths, seed=args.seed)
            found, error_text = result["formula"], ""
        except (RuntimeError, ValueError) as error:  # a formula the network cannot be read as, reported as such
            result, found, error_text = None, None, str(error)
        seconds = time.perf_counter() - start
        truth = formula(name)
        if found is None:
            kind, error = "fail", float("nan")
        else:
            kind, error = verdict(found, truth, x_test)
        rows.append({"function": name, "truth": f"`{sympy.sstr(truth)}`", "widths (pruned)":
                     str(result["widths"]) if result else "", "found": f"`{sympy.sstr(found)}`" if found is not None
                     else error_text, "verdict": kind, "test rel. L2": error, "KAN rel. RMS":
                     result["numeric_error"] if result else float("nan"), "seconds": round(seconds, 1)})
        print(rows[-1], flush=True)
    text = write_results(rows, list(rows[0]), "Symbolic regression: formulas recovered by KAN interpretation",
                         args.out, [f"Command: python benchmarks/bench_symbolic.py --seed {args.seed}",
                                    "1,000 training and 1,000 test points per formula, no noise; float64.",
                                    "verdict: symbolic = sympy proves found == truth; numeric = within 1e-6 "
                                    "relative L2 on the test points; fail = neither."])
    print(text)


if __name__ == "__main__":
    main()
