"""Kolmogorov-Arnold attention against softmax attention: forward + backward time and memory (issue #18).

    python benchmarks/bench_attention.py                    # CPU (or CUDA when present)
    python benchmarks/bench_attention.py --tokens 64 197 --device cuda

A whole multi-head self-attention layer (:class:`kernelnn.layers.SelfAttention`: qkv and output projections
included) at ViT-Tiny's width (192, 3 heads), batch ``--batch``, with the score function swapped: softmax (fused
``scaled_dot_product_attention``), softmax on explicit logits (the same path Fourier-KArAt takes), and
Fourier-KArAt (G = 3, r = 12, the paper's defaults). Issue #18's target: Fourier-KArAt at most 3x softmax at 64
tokens. Ratios are against the fused softmax layer measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_OUT, describe, memory_bytes, pick_device, time_forward_backward, write_results  # noqa: E402

from kernelnn.layers import SelfAttention  # noqa: E402

FUSED = "softmax (fused SDPA)"


def cases(width: int, heads: int, tokens: int) -> dict:
    return {
        FUSED: lambda: SelfAttention(width, heads, tokens, "softmax"),
        "softmax on explicit logits": lambda: SelfAttention(width, heads, tokens, nn.Softmax(dim=-1)),
        "Fourier-KArAt (G 3, r 12)": lambda: SelfAttention(width, heads, tokens, "fourier_karat"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tokens", type=int, nargs="+", default=[64], help="sequence lengths (tokens) to time")
    parser.add_argument("--width", type=int, default=192, help="embedding width")
    parser.add_argument("--heads", type=int, default=3, help="attention heads")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = describe(parser).parse_args()
    device = pick_device(args.device)
    rows = []
    for n in args.tokens:
        reference = None
        for case, build in cases(args.width, args.heads, n).items():
            torch.manual_seed(0)
            module = build().to(device)
            x = torch.randn(args.batch, n, args.width, device=device)
            seconds = time_forward_backward(lambda m=module, x=x: m(x), device, args.warmup, args.repeats)
            memory = memory_bytes(lambda m=module, x=x: m(x), device)
            row = {"tokens": n, "case": case, "ms": seconds * 1e3, "memory_MiB": memory / 2**20,
                   "params": sum(p.numel() for p in module.parameters())}
            reference = reference or row
            row["time vs softmax"] = f"{row['ms'] / reference['ms']:.2f}x"
            row["memory vs softmax"] = f"{row['memory_MiB'] / reference['memory_MiB']:.2f}x"
            rows.append(row)
            print(row, flush=True)
    notes = [f"Command: python benchmarks/bench_attention.py --tokens {' '.join(map(str, args.tokens))} --device "
             f"{device.type}",
             f"width {args.width}, {args.heads} heads, batch {args.batch}; forward + backward, median of "
             f"{args.repeats} after {args.warmup} warm-up runs.",
             "memory: CUDA peak allocated, or on CPU the bytes autograd saves for backward."]
    print(write_results(rows, list(rows[0]), f"Attention benchmark ({device.type})",
                        Path(args.out) / f"attention_{device.type}", notes))


if __name__ == "__main__":
    main()
