"""Generalized neurons against the ordinary layers they replace: forward + backward time and peak memory.

    python benchmarks/bench_neurons.py                  # CPU (or CUDA when present)
    python benchmarks/bench_neurons.py --repeats 20 --device cuda

The l1 convolution is timed three ways: the chunked PyTorch path, the fused kernels ``torch.compile`` generates
(CPU; compiled in the warm-up, not timed) and, on CUDA, the hand-written fused Triton kernels.

Settings (issue #4): convolutions at batch 32, 64 -> 64 channels, 32x32, 3x3 ("same" padding) against
``nn.Conv2d``; dense layers at batch 1024, 64 inputs, 256 units/centres against ``nn.Linear`` (and the RBF
layer against a Linear + ReLU + Linear of the same width). Ratios are taken against the baseline measured in
the same run. Memory: on CUDA the peak allocated over one forward + backward; on CPU the growth of the peak
resident set size over one forward + backward, each case in a fresh subprocess (so transient buffers count,
not only what autograd saves).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_OUT, cpu_peak_growth, describe, pick_device, run_child, time_forward_backward, write_results  # noqa: E402

from kernelnn.layers import KernelConv2d, QuadraticConv2d, QuadraticLinear, RBFLayer  # noqa: E402


def conv_cases(c: int) -> dict:
    return {
        "nn.Conv2d": lambda: nn.Conv2d(c, c, 3, padding=1),
        "KernelConv2d linear": lambda: KernelConv2d(c, c, 3, padding=1, kernel="linear"),
        "KernelConv2d l2 (weighted)": lambda: KernelConv2d(c, c, 3, padding=1, kernel="l2"),
        "KernelConv2d gaussian": lambda: KernelConv2d(c, c, 3, padding=1, kernel="gaussian"),
        "KernelConv2d cauchy": lambda: KernelConv2d(c, c, 3, padding=1, kernel="cauchy"),
        "KernelConv2d polynomial": lambda: KernelConv2d(c, c, 3, padding=1, kernel="polynomial"),
        "KernelConv2d l1 (weighted, chunked)": lambda: KernelConv2d(c, c, 3, padding=1, kernel="l1",
                                                                    backend="torch"),
        "KernelConv2d l1 (weighted, compiled)": lambda: KernelConv2d(c, c, 3, padding=1, kernel="l1",
                                                                     backend="compiled"),
        "KernelConv2d l1 (weighted, fused Triton)": lambda: KernelConv2d(c, c, 3, padding=1, kernel="l1",
                                                                         backend="triton"),
        "QuadraticConv2d": lambda: QuadraticConv2d(c, c, 3, padding=1),
    }


def dense_cases(d: int, m: int) -> dict:
    return {
        "nn.Linear": lambda: nn.Linear(d, m),
        "Linear + ReLU + Linear": lambda: nn.Sequential(nn.Linear(d, m), nn.ReLU(), nn.Linear(m, d)),
        "RBFLayer shared full P": lambda: RBFLayer(d, m, out_features=d),
        "RBFLayer shared diagonal P": lambda: RBFLayer(d, m, out_features=d, precision="diagonal"),
        "RBFLayer per-centre diagonal P": lambda: RBFLayer(d, m, out_features=d, precision="diagonal", shared=False),
        "RBFLayer per-centre rank-8 P": lambda: RBFLayer(d, m, out_features=d, shared=False, rank=8),
        "QuadraticLinear": lambda: QuadraticLinear(d, m),
    }


def build(case: str, args) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    if case in conv_cases(args.channels):
        return conv_cases(args.channels)[case](), torch.randn(args.batch, args.channels, args.size, args.size)
    return dense_cases(args.features, args.centers)[case](), torch.randn(args.dense_batch, args.features)


def peak_memory_child(case: str, args) -> int:
    module, x = build(case, args)
    # compiled kernels: warm up at the full batch, so that compiling its block shapes is not counted
    return cpu_peak_growth(lambda: module(x), lambda: module(x if "compiled" in case else x[:2]))


def peak_memory(case: str, args, device: torch.device) -> int:
    if device.type == "cuda":
        module, x = build(case, args)
        module, x = module.to(device), x.to(device)
        module(x).sum().backward()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        module(x).sum().backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    return int(run_child([__file__, "--child", case, *sys.argv[1:]])["bytes"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--dense-batch", type=int, default=1024, help="batch size of the dense layers")
    parser.add_argument("--features", type=int, default=64, help="input features of the dense layers")
    parser.add_argument("--centers", type=int, default=256, help="units / centres of the dense layers")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--slow-repeats", type=int, default=3, help="repeats for the broadcast l1 case")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = describe(parser).parse_args()
    if args.child:
        print(json.dumps({"bytes": peak_memory_child(args.child, args)}))
        return
    device = pick_device(args.device)
    rows = []
    for group, cases, baseline in (("conv", conv_cases(args.channels), "nn.Conv2d"),
                                   ("dense", dense_cases(args.features, args.centers), "nn.Linear")):
        base = None
        for case in cases:
            if "Triton" in case and device.type != "cuda":
                continue  # the fused kernels run on CUDA only
            module, x = build(case, args)
            module, x = module.to(device), x.to(device)
            repeats = args.slow_repeats if "l1" in case and device.type == "cpu" else args.repeats
            warmup = 1 if "l1" in case and device.type == "cpu" else args.warmup
            seconds = time_forward_backward(lambda m=module, x=x: m(x), device, warmup, repeats)
            memory = peak_memory(case, args, device)
            row = {"group": group, "case": case, "ms": seconds * 1e3, "peak_MiB": memory / 2**20}
            if case == baseline:
                base = row
            if base is not None:
                row["time vs " + baseline] = f"{row['ms'] / base['ms']:.2f}x"
                row["memory vs " + baseline] = f"{row['peak_MiB'] / max(base['peak_MiB'], 1e-9):.2f}x"
            if case == "RBFLayer shared full P":
                mlp = next(r for r in rows if r["case"] == "Linear + ReLU + Linear")
                row["note"] = f"{row['ms'] / mlp['ms']:.2f}x the time of Linear + ReLU + Linear"
            rows.append(row)
            print(f"{case:40s} {row['ms']:9.2f} ms  {row['peak_MiB']:8.1f} MiB  "
                  f"{row.get('time vs ' + baseline, '')} {row.get('note', '')}", flush=True)
    notes = [
        f"convolutions: batch {args.batch}, {args.channels} -> {args.channels} channels, {args.size}x{args.size}, "
        f"3x3, padding 1; dense: batch {args.dense_batch}, {args.features} inputs, {args.centers} units / centres "
        f"(RBF layers and the MLP output {args.features} features).",
        f"Time: forward + backward, median of {args.repeats} after {args.warmup} warm-up runs (the CPU l1 case: "
        f"{args.slow_repeats} after 1).",
        "Peak memory: CUDA peak allocated over one forward + backward; CPU: growth of the process's peak RSS over "
        "one forward + backward, each case in a fresh subprocess.",
    ]
    columns = ["group", "case", "ms", "peak_MiB", "time vs nn.Conv2d", "memory vs nn.Conv2d", "time vs nn.Linear",
               "memory vs nn.Linear", "note"]
    text = write_results(rows, columns, f"Generalized neurons benchmark ({device.type})",
                         Path(args.out) / f"neurons_{device.type}", notes)
    print("\n" + text)


if __name__ == "__main__":
    main()
