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
from common import DEFAULT_OUT, describe, write_results  # noqa: E402

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


def projection_floors() -> list[dict]:
    """The relative L2 error of projecting each dataset's test targets onto the frequencies a T1 keeps: the lowest
    error any model whose output lies in their span can reach (FFT, |k| < modes on all axes but the last)."""
    import torch
    from hydra.utils import instantiate

    from kernelnn.layers.dct import dctn, idctn

    rows = []
    for data, modes_list in (("burgers", (8, 16, 32)), ("navier_stokes", (8, 12, 16)), ("darcy", (12, 16, 24))):
        bundle = instantiate(compose(RECIPES[data][0]).data)
        y = next(iter(bundle.tests.values())).tensors[1].double()
        for m in modes_list:
            if data == "darcy":  # the DCT of T1 on the non-periodic Darcy data: the lowest m x m coefficients
                c = dctn(y, 2)
                c[..., m:, :] = 0
                c[..., :, m:] = 0
                p = idctn(c, 2)
            elif y.dim() == 3:
                c = torch.fft.rfft(y, dim=-1)
                c[..., m:] = 0
                p = torch.fft.irfft(c, n=y.shape[-1], dim=-1)
            else:
                c = torch.fft.rfft2(y)
                keep = torch.zeros(c.shape[-2:], dtype=torch.bool)
                keep[:m, :m] = True
                keep[-(m - 1):, :m] = True
                p = torch.fft.irfft2(c * keep, s=y.shape[-2:])
            error = ((p - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)).mean().item()
            rows.append({"data": data, "modes": m, "projection error": error})
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS), help="which variants to train")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder of the table")
    parser.add_argument("--floors", action="store_true",
                        help="only the error of projecting the test targets onto the kept modes (seconds)")
    args = describe(parser).parse_args()
    if args.floors:
        print(write_results(projection_floors(), ["data", "modes", "projection error"],
                            "Projection of the test targets onto T1's kept frequencies",
                            Path(args.out) / "t1_projection_floors",
                            ["`python benchmarks/bench_t1_tuning.py --floors`"]))
        return
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
