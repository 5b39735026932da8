"""Kolmogorov-Arnold layers against the Linear + SiLU floor and pykan: forward + backward time and memory.

    python benchmarks/bench_kan.py                  # CPU (or CUDA when present)
    python benchmarks/bench_kan.py --widths 64 256 --device cuda

Settings (issue #5): batch 1024, in = out = 64 and 256, grid 5, spline order 3. TruKAN uses 4 shared knots,
the same 8-dimensional cubic-spline space per edge as the B-spline layer with 5 intervals; ReLU-KAN and AF-KAN
(issue #18) their 5 + 3 = 8 basis functions per input. pykan's ``KANLayer``
is timed when pykan is installed (``pip install -e ".[bench]"``). Ratios are taken against the floor measured
in the same run. Memory: saved for backward (bytes of the tensors autograd keeps, once per storage; what grows
with the batch) and, on CPU, the growth of the peak resident set over one forward + backward in a fresh
subprocess (on CUDA the peak allocated).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DEFAULT_OUT,
    cpu_peak_growth,
    describe,
    memory_bytes,
    pick_device,
    run_child,
    time_forward_backward,
    write_results,
)

from kernelnn.layers import AFKANLinear, KANLinear, ReLUKANLinear, TruKANLinear  # noqa: E402

FLOOR = "Linear + SiLU (floor)"


def pykan_layer(d: int):
    from kan.KANLayer import KANLayer

    layer = KANLayer(d, d, num=5, k=3, save_plot_data=False)
    return lambda x: layer(x)[0], layer


def cases(d: int) -> dict:
    """name -> () -> (callable on x, module)."""
    def module(m: nn.Module):
        return m, m

    found = {
        FLOOR: lambda: module(nn.Sequential(nn.Linear(d, d), nn.SiLU())),
        "KANLinear (B-spline, grid 5, order 3)": lambda: module(KANLinear(d, d, grid_size=5, spline_order=3)),
        "TruKANLinear shared knots": lambda: module(TruKANLinear(d, d, order=3, n_knots=4)),
        "TruKANLinear individual knots": lambda: module(TruKANLinear(d, d, order=3, n_knots=4, knots="individual")),
        "ReLUKANLinear (grid 5, order 3)": lambda: module(ReLUKANLinear(d, d, grid_size=5, order=3)),
        "AFKANLinear (grid 5, order 3; SiLU, quad1, global attention)":
            lambda: module(AFKANLinear(d, d, grid_size=5, order=3)),
    }
    try:
        import kan  # noqa: F401

        found["pykan KANLayer"] = lambda: pykan_layer(d)
    except ImportError:
        pass
    return found


def build(case: str, d: int, batch: int):
    torch.manual_seed(0)
    fn, module = cases(d)[case]()
    return fn, module, torch.rand(batch, d) * 2 - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 256], help="layer widths to time")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = describe(parser).parse_args()
    if args.child:  # peak resident-set growth of one case, in this fresh process
        case, d = args.child[0], int(args.child[1])
        fn, _, x = build(case, d, args.batch)
        # warm-up on a quarter batch: large enough that size-gated compiled kernels (AF-KAN) compile there
        print(f'{{"bytes": {cpu_peak_growth(lambda: fn(x), lambda: fn(x[: len(x) // 4]))}}}')
        return
    device = pick_device(args.device)
    rows = []
    for d in args.widths:
        floor = None
        for case in cases(d):
            fn, module, x = build(case, d, args.batch)
            module.to(device)
            x = x.to(device)
            if "pykan" in case:
                module.device = device  # pykan keeps its own device attribute
            seconds = time_forward_backward(lambda fn=fn, x=x: fn(x), device, args.warmup, args.repeats)
            saved = memory_bytes(lambda fn=fn, x=x: fn(x), device)
            peak = saved if device.type == "cuda" else run_child([__file__, "--child", case, str(d),
                                                                 "--batch", str(args.batch)])["bytes"]
            row = {"width": d, "case": case, "ms": seconds * 1e3, "saved_MiB": saved / 2**20,
                   "peak_MiB": peak / 2**20}
            if case == FLOOR:
                floor = row
            row["time vs floor"] = f"{row['ms'] / floor['ms']:.1f}x"
            row["saved vs floor"] = f"{row['saved_MiB'] / floor['saved_MiB']:.1f}x"
            row["peak vs floor"] = f"{row['peak_MiB'] / max(floor['peak_MiB'], 1e-9):.1f}x"
            rows.append(row)
            print(f"{d:4d} {case:42s} {row['ms']:9.2f} ms  saved {row['saved_MiB']:7.1f} MiB  peak "
                  f"{row['peak_MiB']:7.1f} MiB  {row['time vs floor']} {row['saved vs floor']}", flush=True)
        pykan = next((r for r in rows if r["width"] == d and "pykan" in r["case"]), None)
        if pykan is not None:
            for r in rows:
                if r["width"] == d and r["case"].startswith("KANLinear"):
                    r["note"] = f"{pykan['ms'] / r['ms']:.1f}x faster than pykan"
    notes = [
        f"batch {args.batch}, in = out = width, inputs uniform in [-1, 1]; grid 5, order 3; TruKAN 4 knots (the same "
        "8-dimensional spline space per edge); ReLU-KAN and AF-KAN 8 basis functions per input (grid 5 + order 3).",
        f"Time: forward + backward, median of {args.repeats} after {args.warmup} warm-up runs.",
        "saved: bytes autograd keeps for backward (once per storage); peak: CUDA peak allocated, or on CPU the "
        "growth of the peak resident set over one forward + backward in a fresh process.",
    ]
    columns = ["width", "case", "ms", "saved_MiB", "peak_MiB", "time vs floor", "saved vs floor", "peak vs floor",
               "note"]
    text = write_results(rows, columns, f"KAN layers benchmark ({device.type})", Path(args.out) / f"kan_{device.type}",
                         notes)
    print("\n" + text)


if __name__ == "__main__":
    main()
