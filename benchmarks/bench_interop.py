"""from_neuralop round trip: neuraloperator 2.x FNO / TFNO models against their kernelnn conversions.

Each row builds a neuraloperator model (random weights, seed 0), converts it with
:func:`kernelnn.interop.from_neuralop` and reports the relative L2 difference of the outputs on random inputs at the
training resolution and at twice it (the issue's bound: 1e-5), and the time of one forward pass of each.

    python benchmarks/bench_interop.py
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_OUT, describe, pick_device, write_results  # noqa: E402

CASES = {
    "defaults, n_modes=N (every mode)": dict(n_modes=(16, 16), hidden_channels=32),
    "n_modes (8, 8)": dict(n_modes=(8, 8), hidden_channels=32),
    "padding 0.25, group norm": dict(n_modes=(8, 6), hidden_channels=32, domain_padding=0.25, norm="group_norm"),
    "odd modes, no channel MLP, instance norm, linear lifting": dict(
        n_modes=(7, 9), hidden_channels=32, use_channel_mlp=False, fno_skip="soft-gating", norm="instance_norm",
        lifting_channel_ratio=0),
    "linear channel-MLP skip, no grid embedding": dict(n_modes=(8, 8), hidden_channels=32, channel_mlp_skip="linear",
                                                       positional_embedding=None),
    "1-D, 2 in / 3 out channels": dict(n_modes=(10,), hidden_channels=32, in_channels=2, out_channels=3),
    "3-D": dict(n_modes=(6, 6, 4), hidden_channels=16),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=16, help="training resolution per dim (outputs compared at it "
                        "and at twice it)")
    parser.add_argument("--batch", type=int, default=4, help="inputs per comparison")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for the .md/.json tables")
    args = describe(parser).parse_args()
    device = pick_device(args.device)
    try:
        import neuralop
        from neuralop.models import FNO, TFNO
    except ImportError:
        raise SystemExit("bench_interop needs neuraloperator: pip install -e \".[bench]\"") from None
    from kernelnn.interop import from_neuralop
    from kernelnn.layers.spectral import FullModesWarning

    rows = []
    for label, case in CASES.items():
        kwargs = {"in_channels": 1, "out_channels": 1, **case}
        for cls in (FNO, TFNO):
            torch.manual_seed(0)
            theirs = cls(**kwargs).to(device).eval()
            ours = from_neuralop(theirs)
            row = {"model": cls.__name__, "case": label}
            for n in (args.size, 2 * args.size):
                x = torch.randn(args.batch, kwargs["in_channels"], *[n] * len(case["n_modes"]), device=device)
                with torch.no_grad(), warnings.catch_warnings():
                    warnings.simplefilter("ignore", FullModesWarning)
                    times = {}
                    for name, model in (("neuralop", theirs), ("kernelnn", ours)):
                        model(x)  # warm-up
                        start = time.perf_counter()
                        out = model(x)
                        times[name] = time.perf_counter() - start
                        if name == "neuralop":
                            expected = out
                row[f"rel. diff {n}"] = ((out - expected).norm() / expected.norm()).item()
            row["kernelnn / neuralop forward time"] = times["kernelnn"] / times["neuralop"]
            rows.append(row)
            print(row, flush=True)
    worst = max(max(r[f"rel. diff {args.size}"], r[f"rel. diff {2 * args.size}"]) for r in rows)
    text = write_results(
        rows, list(rows[0]), "from_neuralop: neuraloperator models against their kernelnn conversions",
        Path(args.out) / f"interop_{device.type}",
        [f"`python benchmarks/bench_interop.py --device {args.device}`; neuraloperator {neuralop.__version__}",
         f"rel. diff: ||kernelnn - neuraloperator|| / ||neuraloperator|| on {args.batch} random inputs at "
         f"{args.size} and {2 * args.size} points per dim (float32); worst {worst:.2g}",
         "TFNO: neuraloperator's default Tucker factorization (rank 0.1), factors carried over as they are",
         "forward time: one call at the larger size after a warm-up call (single measurement, noisy)"])
    print(text)


if __name__ == "__main__":
    main()
