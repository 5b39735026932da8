"""Gaunt tensor products: each method against e3nn's TensorProduct on the same (Gaunt) paths.

    python benchmarks/bench_gaunt.py                         # CPU (or CUDA when present), L = 1..10
    python benchmarks/bench_gaunt.py --degrees 2 4 6 8 --channels 1 32 --device cuda
    python benchmarks/bench_gaunt.py --degrees 8 12 16 24 32 --methods grid sht --channels 1 32 --no-e3nn \
        --name gaunt_scaling                                 # the exponent in L of the grid routes (issue #19)

Settings (issue #6): batch 1024, L1 = L2 = L_out = L, 1 and 32 channels (channel-wise products), forward +
backward of ``out.sum()``. e3nn (the ``[bench]`` extra) runs ``o3.TensorProduct`` with irreps
``C x (0e + 1o + ... )`` and one ``uuu`` instruction per path with l1 + l2 + l3 even inside the triangle and
l3 <= L (the paths a Gaunt product has; e3nn weighs them with Clebsch-Gordan coefficients, so the numbers differ,
the work is the same kind). Ratios are e3nn time / kernelnn time from the same run. "dense" is skipped where its
coefficient tensor gets large (L > 6). The scaling exponent is the slope of log(time) against log(L) over the
degrees measured, per method and channel count.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_OUT, describe, memory_bytes, pick_device, time_forward_backward, write_results  # noqa: E402

from kernelnn import gaunt_tensor_product  # noqa: E402

try:
    from e3nn import o3
except ImportError:  # the [bench] extra is not installed
    o3 = None

METHODS = ("dense", "grid", "sht", "fourier")


def e3nn_case(L: int, channels: int, batch: int, device):
    irreps = o3.Irreps([(channels, (l, (-1) ** l)) for l in range(L + 1)])
    paths = [(a, b, c, "uuu", False) for a in range(L + 1) for b in range(L + 1) for c in range(L + 1)
             if (a + b + c) % 2 == 0 and abs(a - b) <= c <= a + b]
    tp = o3.TensorProduct(irreps, irreps, irreps, paths).to(device)
    x = torch.randn(batch, irreps.dim, device=device, requires_grad=True)
    y = torch.randn(batch, irreps.dim, device=device, requires_grad=True)
    return lambda: tp(x, y)


def product(x: torch.Tensor, y: torch.Tensor, L: int, method: str):
    return lambda: gaunt_tensor_product(x, y, L, method=method)


def slope(points: list[tuple[int, float]]) -> float:
    xs = [math.log(L) for L, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True)) / sum((a - mx) ** 2 for a in xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--degrees", type=int, nargs="+", default=list(range(1, 11)), help="maximum degrees L to time")
    parser.add_argument("--channels", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dense-max", type=int, default=6, help="largest L for the dense (per-path) reference")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                        help="Gaunt product methods to time")
    parser.add_argument("--no-e3nn", action="store_true", help="skip e3nn (slow at high L)")
    parser.add_argument("--name", default="gaunt", help="stem of the results files")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = describe(parser).parse_args()
    device = pick_device(args.device)
    rows, timings = [], {}
    for channels in args.channels:
        for L in args.degrees:
            gen = torch.Generator(device="cpu").manual_seed(L)
            shape = (args.batch, channels, (L + 1) ** 2)
            x = torch.randn(shape, generator=gen).to(device).requires_grad_()
            y = torch.randn(shape, generator=gen).to(device).requires_grad_()
            row = {"channels": channels, "L": L}
            for method in args.methods:
                if method == "dense" and L > args.dense_max:
                    continue
                fn = product(x, y, L, method)
                seconds = time_forward_backward(fn, device, args.warmup, args.repeats)
                row[f"{method} ms"] = seconds * 1e3
                row[f"{method} MiB"] = memory_bytes(fn, device) / 2**20
                timings.setdefault((method, channels), []).append((L, seconds))
            if o3 is not None and not args.no_e3nn:
                fn = e3nn_case(L, channels, args.batch, device)
                seconds = time_forward_backward(fn, device, 1, max(2, args.repeats // 2))
                row["e3nn ms"] = seconds * 1e3
                timings.setdefault(("e3nn", channels), []).append((L, seconds))
                best = min((m for m in args.methods if f"{m} ms" in row), key=lambda m: row[f"{m} ms"])
                row["best"] = best
                row["e3nn / best"] = f"{seconds * 1e3 / row[f'{best} ms']:.1f}x"
            rows.append(row)
            print(row, flush=True)
    exponents = {f"{m}, {c} ch": round(slope(p), 2) for (m, c), p in timings.items() if len(p) > 2}
    print("scaling exponents (time ~ L^p):", exponents)
    columns = ["channels", "L", *(f"{m} ms" for m in args.methods), "e3nn ms", "best", "e3nn / best",
               *(f"{m} MiB" for m in args.methods)]
    notes = [f"`python benchmarks/bench_gaunt.py {' '.join(sys.argv[1:])}`".replace(" `", "`"),
             f"batch {args.batch}, L1 = L2 = L_out = L, forward + backward, median of {args.repeats}",
             "MiB: bytes autograd saves for backward",
             "scaling exponents (slope of log time vs log L): "
             + ", ".join(f"{k} {v}" for k, v in exponents.items())]
    print(write_results(rows, columns, f"Gaunt tensor products ({device.type})",
                        Path(args.out) / f"{args.name}_{device.type}", notes))


if __name__ == "__main__":
    main()
