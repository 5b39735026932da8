"""Transform Once against the FNO's error: T1 variants, each at the FNO's parameter count, on the FNO's recipe.

    python benchmarks/bench_t1_tuning.py                  # the session-9 sweep, ~20 minutes on 2 CPU cores
    python benchmarks/bench_t1_tuning.py --runs ns_m12_L8 darcy_m24

Each run is ``bench_operators``' recipe for its dataset with ``model=t1`` (DCT, Darcy) or ``t1_fft`` and the
overrides below; the width is chosen so that the parameters reach the FNO's. The table goes to
``benchmarks/results/t1_tuning_cpu.md``. (Navier-Stokes uses the recipe's data; the session-9 rows in RESULTS.md
were run before that recipe solved at 128 x 128.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_operators import RECIPES, TEST, compose, matched_width, parameters  # noqa: E402
from common import write_results  # noqa: E402

RUNS = {  # name -> (data, overrides)
    "ns_m12": ("navier_stokes", "model=t1_fft model.n_modes=12 optim.lr=3e-3 optim.weight_decay=0"),
    "ns_m16": ("navier_stokes", "model=t1_fft model.n_modes=16 optim.lr=3e-3 optim.weight_decay=0"),
    "ns_m12_L8": ("navier_stokes", "model=t1_fft model.n_modes=12 model.n_layers=8 optim.lr=3e-3 "
                                   "optim.weight_decay=0"),
    "ns_m12_cosine": ("navier_stokes", "model=t1_fft model.n_modes=12 optim.weight_decay=0 scheduler=cosine"),
    "darcy_m24": ("darcy", "model=t1 model.n_modes=24 optim.lr=3e-3 optim.weight_decay=0"),
    "darcy_m16": ("darcy", "model=t1 model.n_modes=16 optim.lr=3e-3 optim.weight_decay=0"),
    "burgers_m16": ("burgers", "model=t1_fft model.n_modes=16 optim.lr=3e-3 optim.weight_decay=0"),
    "burgers_m32": ("burgers", "model=t1_fft model.n_modes=32 optim.lr=3e-3 optim.weight_decay=0"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS), help="which variants to train")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder of the table")
    args = parser.parse_args()
    from kernelnn.training import run

    rows = []
    for name in args.runs:
        data, extra = RUNS[name]
        recipe, fno = RECIPES[data]
        base = [*recipe, f"trainer.device={args.device}", "trainer.progress_bar=false", "trainer.tensorboard=false",
                "trainer.plots=false"]
        target = parameters(base + ["model=fno", *fno])
        model = extra.split()
        width = matched_width(base, [*model, "model.hidden_channels={width}"], target)
        with tempfile.TemporaryDirectory() as out:
            summary = run(compose([*base, *model, f"model.hidden_channels={width}"]), output_dir=out)
        test, fine = TEST[data]
        row = {"run": name, "data": data, "overrides": extra, "width": width, "parameters": summary["n_parameters"],
               "s/epoch": summary["seconds_per_epoch"], "test": summary["test"][test],
               "zero-shot 2x": summary["test"][fine] if fine else "—"}
        rows.append(row)
        print(row, flush=True)
    print(write_results(rows, ["run", "data", "overrides", "width", "parameters", "s/epoch", "test", "zero-shot 2x"],
                        "Transform Once variants at the FNO's parameters", Path(args.out) / f"t1_tuning_{args.device}",
                        ["`python benchmarks/bench_t1_tuning.py`: bench_operators' recipe per dataset, T1's width "
                         "matched to the FNO's parameter count"]))


if __name__ == "__main__":
    main()
