"""Equivariant tensor products: Gaunt, the full Clebsch-Gordan product (ours and e3nn's) and its CP decomposition.

    python benchmarks/bench_equivariant.py                      # CPU (or CUDA when present), L = 2..8
    python benchmarks/bench_equivariant.py --degrees 2 3 4 --cp-max-L 4 --device cuda
    python benchmarks/bench_equivariant.py --curve              # CP error against rank (issue #19, part 2)
    python benchmarks/bench_equivariant.py --setting convolution --degrees 2 3 4 5 6 --cp-max-L 4

Settings (issue #19): batch 1024, 32 channels, channel-wise products ("uuu") of two features
``32 x (0e + 1o + 2e + ...)`` up to degree L into ``32 x (0e + 0o + 1o + 1e + ...)`` up to L: every path
inside the triangle (the even ones land in the first parity class, the odd ones in the second). Forward + backward
of ``out.sum()``, median of ``--repeats``.

- cg (ours) and e3nn: ``TensorProduct`` with one "uuu" instruction per path, a weight per path and channel.
- cp@tol: ``CPTensorProduct`` (TDN, shared path weights) at the smallest rank whose ALS fit error is at most tol
  (``cp_rank_for``); its equivariance error (``kernelnn.testing.equivariance_error``, 20 rotations and
  rotoinversions, float64) is measured and printed next to it. Fitting is the slow part (ALS on a
  ``(L+1)^2 x (L+1)^2 x 2(L+1)^2`` tensor): CP rows stop at ``--cp-max-L``.
- gaunt: ``gaunt_tensor_product(method="grid")``: the even paths only (half the work; not the same product).

``--setting convolution``: a point convolution's product instead (NequIP's and TDN's): the 32-channel feature
times the edge harmonics ``1 x (0e + 1o + ...)`` up to L, mode "uvu" (a weight per path and channel; CP: one
weight per channel), into 32 channels of both parities; no Gaunt column.

Ratios come from the same run. ``--curve``: for L = 2, 3, 4, the CP fit error, the equivariance error and the
relative distance to the exact product against rank.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_OUT, describe, pick_device, time_forward_backward, write_results  # noqa: E402

from kernelnn import gaunt_tensor_product  # noqa: E402
from kernelnn.layers import CPTensorProduct, TensorProduct  # noqa: E402
from kernelnn.layers.cp_tensor_product import cp_rank_for  # noqa: E402
from kernelnn.o3 import Irreps  # noqa: E402
from kernelnn.testing import equivariance_error  # noqa: E402

try:
    from e3nn import o3
except ImportError:  # the [bench] extra is not installed
    o3 = None


def irreps(L: int, channels: int) -> tuple[Irreps, Irreps]:
    """Inputs with the harmonics' parities; outputs with both parities of every degree."""
    features = Irreps([(channels, (l, (-1) ** l)) for l in range(L + 1)])
    out = Irreps([(channels, (l, p)) for l in range(L + 1) for p in ((-1) ** l, -(-1) ** l)])
    return features, out


def instructions(in1: Irreps, in2: Irreps, out: Irreps, mode: str) -> list[tuple]:
    return [(i1, i2, io, mode, True) for i1, (_, a) in enumerate(in1) for i2, (_, b) in enumerate(in2)
            for io, (_, c) in enumerate(out) if c in a * b]


def measured_equivariance(tp: CPTensorProduct) -> float:
    g = torch.Generator().manual_seed(0)
    probe = CPTensorProduct(*(Irreps([(1, ir) for _, ir in irreps])
                              for irreps in (tp.irreps_in1, tp.irreps_in2, tp.irreps_out)),
                            rank=tp.rank, mode=tp.mode).double()
    x1 = torch.randn(64, probe.irreps_in1.dim, generator=g, dtype=torch.float64)
    x2 = torch.randn(64, probe.irreps_in2.dim, generator=g, dtype=torch.float64)
    return equivariance_error(probe, [probe.irreps_in1, probe.irreps_in2], probe.irreps_out, [x1, x2])


def curve(rows: list[dict], ranks_per_L: dict[int, list[int]]) -> None:
    for L, ranks in ranks_per_L.items():
        features, out = irreps(L, 1)
        g = torch.Generator().manual_seed(L)
        for rank in ranks:
            tp = CPTensorProduct(features, features, out, rank=rank, mode="uuu").double()
            x1 = torch.randn(256, features.dim, generator=g, dtype=torch.float64)
            x2 = torch.randn(256, features.dim, generator=g, dtype=torch.float64)
            exact = tp.forward_exact(x1, x2).detach()
            distance = float((tp(x1, x2).detach() - exact).norm() / exact.norm())
            eps = equivariance_error(tp, [features, features], out, [x1, x2])
            rows.append({"L": L, "rank": rank, "rank / (L+1)^2": round(rank / (L + 1) ** 2, 2),
                         "cp fit error": f"{tp.cp_error:.2e}", "equivariance error": f"{eps:.2e}",
                         "distance to exact": f"{distance:.2e}"})
            print(rows[-1], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--degrees", type=int, nargs="+", default=list(range(2, 9)), help="maximum degrees L to time")
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--tolerances", type=float, nargs="+", default=[1e-2, 1e-3, 1e-4],
                        help="CP fit errors whose smallest ranks are timed")
    parser.add_argument("--cp-max-L", type=int, default=5,
                        help="largest L with CP rows (the rank search grows fast with L)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--curve", action="store_true", help="only the CP error-against-rank curve")
    parser.add_argument("--setting", choices=["channelwise", "convolution"], default="channelwise",
                        help="channelwise products, or a point convolution's product with edge harmonics")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = describe(parser).parse_args()
    device = pick_device(args.device)
    command = "python benchmarks/bench_equivariant.py " + " ".join(sys.argv[1:])

    if args.curve:
        rows: list[dict] = []
        curve(rows, {2: [9, 18, 27, 36, 45, 54, 63], 3: [32, 64, 96, 112, 128, 144, 160],
                     4: [100, 150, 200, 250, 300, 350, 400]})
        notes = [f"`{command}`", "channel-wise ('uuu') product of 0e + 1o + ... up to L into both parities up to L; "
                 "ALS fit, 1500 sweeps at most; float64", "equivariance error: max over 20 rotations and "
                 "rotoinversions of |f(Dx, Dy) - D f(x, y)| / |f(x, y)|; distance: |cp - exact| / |exact| on 256 "
                 "Gaussian inputs"]
        print(write_results(rows, list(rows[0]), "CP tensor product: error against rank",
                            Path(args.out) / f"equivariant_cp_curve_{device.type}", notes))
        return

    rows = []
    convolution = args.setting == "convolution"
    mode = "uvu" if convolution else "uuu"
    for L in args.degrees:
        features, out = irreps(L, args.channels)
        second = Irreps.spherical_harmonics(L) if convolution else features
        paths = instructions(features, second, out, mode)
        g = torch.Generator().manual_seed(L)
        x1 = torch.randn(args.batch, features.dim, generator=g).to(device).requires_grad_()
        x2 = torch.randn(args.batch, second.dim, generator=g).to(device).requires_grad_()
        row: dict = {"L": L, "paths": len(paths)}
        ours = TensorProduct(features, second, out, paths).to(device)
        row["cg ms"] = 1e3 * time_forward_backward(lambda: ours(x1, x2), device, args.warmup, args.repeats)  # noqa: B023
        if o3 is not None:
            theirs = o3.TensorProduct(str(features), str(second), str(out), paths).to(device)
            row["e3nn ms"] = 1e3 * time_forward_backward(lambda: theirs(x1, x2), device, args.warmup,  # noqa: B023
                                                         args.repeats)
            row["e3nn / cg"] = f"{row['e3nn ms'] / row['cg ms']:.2f}x"
        if not convolution:
            xs = x1.detach().reshape(args.batch, args.channels, -1)  # any (channels, (L+1)^2) layout: same cost
            xg = xs.clone().requires_grad_()
            yg = xs.flip(0).clone().requires_grad_()
            row["gaunt ms"] = 1e3 * time_forward_backward(lambda: gaunt_tensor_product(xg, yg, L, method="grid"),  # noqa: B023
                                                          device, args.warmup, args.repeats)
        if L <= args.cp_max_L:
            one, one_out = irreps(L, 1)
            one_second = Irreps.spherical_harmonics(L) if convolution else one
            for tol in args.tolerances:
                start = time.perf_counter()
                rank = cp_rank_for(one, one_second, one_out, tolerance=tol, mode=mode)
                fit_s = time.perf_counter() - start
                cp = CPTensorProduct(features, second, out, rank=rank, mode=mode).to(device)
                key = f"cp@{tol:g}"
                row[f"{key} rank"] = rank
                row[f"{key} equiv. err"] = f"{measured_equivariance(cp):.1e}"
                row[f"{key} ms"] = 1e3 * time_forward_backward(lambda: cp(x1, x2), device, args.warmup,  # noqa: B023
                                                               args.repeats)
                if "e3nn ms" in row:
                    row[f"e3nn / {key}"] = f"{row['e3nn ms'] / row[f'{key} ms']:.2f}x"
                row[f"{key} fit s"] = round(fit_s, 1)
        rows.append(row)
        print(row, flush=True)
    what = ("a point convolution ('uvu': the features times 1 x (0e + 1o + ...) edge harmonics)" if convolution
            else "channel-wise ('uuu') products")
    notes = [f"`{command}`", f"batch {args.batch}, {args.channels} channels, {what}, every path with l3 <= L, into "
             f"both parities, forward + backward, median of {args.repeats}",
             "cp@tol: smallest rank (within 3%) with ALS fit error <= tol; 'equiv. err': measured, max over 20 "
             "rotations and rotoinversions; 'fit s': the rank search and fits (once per process, cached)"]
    if not convolution:
        notes.append("gaunt: even paths only (the Gaunt product), grid method")
    for name in ("cg", "e3nn", "gaunt"):
        points = [(r["L"], r[f"{name} ms"]) for r in rows if f"{name} ms" in r]
        if len(points) > 1:
            notes.append(f"exponent of time in L ({name}): {slope(points):.2f}")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    print(write_results(rows, columns, f"Equivariant tensor products ({device.type})",
                        Path(args.out) / f"equivariant{'_conv' if convolution else ''}_{device.type}", notes))


def slope(points: list[tuple[int, float]]) -> float:
    xs = [math.log(L) for L, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True)) / sum((a - mx) ** 2 for a in xs)


if __name__ == "__main__":
    main()
