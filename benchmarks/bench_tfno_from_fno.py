"""tfno_from_fno on the Darcy recipe: test error of a trained dense FNO compressed to Tucker at several ranks.

The dense FNO is ``experiment=darcy_fno`` (the default run: 32 x 32, 12 modes, width 32, 20 epochs); each row
compresses all four spectral weights with :func:`kernelnn.tucker_compression.tfno_from_fno` at one rank (fraction of
each layer's dense spectral parameters) by HOSVD alone or HOSVD then ALS sweeps, with no retraining. Columns: the
spectral compression (dense spectral parameters / stored), the weights' relative Frobenius error (mean over layers),
and the test relative L2 error at 32 x 32 and zero-shot at 64 x 64.

    python benchmarks/bench_tfno_from_fno.py                 # trains the dense FNO first (~2 min on 2 CPU cores)
    python benchmarks/bench_tfno_from_fno.py --checkpoint outputs/.../checkpoints/best.pt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DEFAULT_OUT,
    compose_experiment,
    describe,
    pick_device,
    train_experiment,
    write_results,
)

EXPERIMENT = "darcy_fno"


@torch.no_grad()
def test_errors(model: torch.nn.Module, tests: dict, device: torch.device, batch: int = 50) -> dict[str, float]:
    from kernelnn.losses import LpLoss

    l2 = LpLoss(reduction="none")
    errors = {}
    for name, dataset in tests.items():
        x, y = dataset.tensors
        per_sample = [l2(model(x[i:i + batch].to(device)), y[i:i + batch].to(device)) for i in range(0, len(x), batch)]
        errors[name] = torch.cat(per_sample).mean().item()
    return errors


def weight_error(dense: torch.nn.Module, compressed: torch.nn.Module) -> float:
    from kernelnn.layers import SpectralConv

    pairs = zip((m for m in dense.modules() if isinstance(m, SpectralConv)),
                (m for m in compressed.modules() if isinstance(m, SpectralConv)), strict=True)
    errors = [((b.weight.reconstruct(torch.float64) - a.weight.reconstruct(torch.float64)).norm()
               / a.weight.reconstruct(torch.float64).norm()).item() for a, b in pairs]
    return sum(errors) / len(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help=f"best.pt of `python train.py experiment={EXPERIMENT}` "
                        "(default: train one first)")
    parser.add_argument("--ranks", nargs="+", type=float, default=[0.01, 0.02, 0.05, 0.1, 0.2, 0.4],
                        help="Tucker ranks: fractions of each layer's dense spectral parameters")
    parser.add_argument("--als", nargs="+", type=int, default=[0, 10], help="ALS sweeps after the HOSVD, per row")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for the .md/.json tables")
    args = describe(parser).parse_args()
    device = pick_device(args.device)

    from hydra.utils import instantiate

    from kernelnn.layers.spectral import spectral_parameter_counts
    from kernelnn.training import load_model
    from kernelnn.tucker_compression import tfno_from_fno

    checkpoint = args.checkpoint or train_experiment(EXPERIMENT, device.type)
    model = load_model(checkpoint).to(device).eval()
    tests = instantiate(compose_experiment(EXPERIMENT, []).data).tests
    dense_errors = test_errors(model, tests, device)
    rows = [{"rank": "dense", "ALS sweeps": "", "compression": 1.0, "weight error": 0.0,
             **{f"test {k}": v for k, v in dense_errors.items()}, "compress s": 0.0}]
    print(rows[-1], flush=True)
    for rank in args.ranks:
        for sweeps in args.als:
            start = time.perf_counter()
            compressed = tfno_from_fno(model, rank=rank, als_iterations=sweeps).eval()
            seconds = time.perf_counter() - start
            rows.append({"rank": rank, "ALS sweeps": sweeps,
                         "compression": spectral_parameter_counts(compressed)["spectral_compression"],
                         "weight error": weight_error(model, compressed),
                         **{f"test {k}": v for k, v in test_errors(compressed, tests, device).items()},
                         "compress s": seconds})
            print(rows[-1], flush=True)
    text = write_results(
        rows, list(rows[0]), "tfno_from_fno: a trained dense FNO (Darcy) Tucker-compressed without retraining",
        Path(args.out) / f"tfno_from_fno_{device.type}",
        [f"`python benchmarks/bench_tfno_from_fno.py --device {args.device}`"
         + (" with `--checkpoint` from `python train.py`" if args.checkpoint else f" (trains `experiment={EXPERIMENT}`"
                                                                                  " first)"),
         "compression: dense spectral parameters / stored Tucker parameters (core + factors), all four layers",
         "weight error: relative Frobenius error of each layer's reconstructed weight, mean over layers",
         "test errors: relative L2, mean over the 200 test samples; 64 is zero-shot super-resolution"])
    print(text)


if __name__ == "__main__":
    main()
