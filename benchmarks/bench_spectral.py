"""Spectral convolution and FNO: kernelnn against neuraloperator, forward + backward time and memory.

    python benchmarks/bench_spectral.py                 # CPU (or CUDA when present)
    python benchmarks/bench_spectral.py --device cuda --repeats 50
    python benchmarks/bench_spectral.py --paths        # factorized / reconstructed / auto at several ranks

Settings (issue #3): batch 16, 64 channels, 64x64 grid, "16x16 modes" in neuraloperator's convention, i.e.
frequencies -8..7 on the first dim and 0..8 on the last (16 x 9 coefficients). kernelnn keeps |k| < m and
never the Nyquist row, so the same band is ``n_modes=(8, 9)`` here: frequencies -7..7 and 0..8 (15 x 9).
neuraloperator runs only when it is installed (``pip install -e ".[bench]"``); ratios are kernelnn time
divided by neuraloperator time from the same run (below 1: kernelnn is faster).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_OUT, describe, memory_bytes, pick_device, time_forward_backward, write_results  # noqa: E402

from kernelnn import FNO, SpectralConv  # noqa: E402

try:
    import neuralop
    from neuralop.layers.spectral_convolution import SpectralConv as NOSpectralConv
    from neuralop.models import FNO as NOFNO
except ImportError:  # the [bench] extra is not installed
    neuralop = None


def measure(name: str, module: torch.nn.Module, x: torch.Tensor, device, args) -> dict:
    module = module.to(device)
    x = x.to(device)

    def fn():
        return module(x)

    seconds = time_forward_backward(fn, device, args.warmup, args.repeats)
    mem = memory_bytes(fn, device)
    # Real degrees of freedom: neuraloperator stores complex parameters, kernelnn real (..., 2) pairs.
    params = sum(p.numel() * (2 if p.is_complex() else 1) for p in module.parameters())
    print(f"{name:42s} {seconds * 1e3:9.2f} ms  {mem / 2**20:8.1f} MiB  {params:>10,} params", flush=True)
    return {"case": name, "ms": seconds * 1e3, "memory_MiB": mem / 2**20, "params": params}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rank", type=float, default=0.1, help="factorization rank (fraction of dense)")
    parser.add_argument("--paths", action="store_true",
                        help="instead: the contraction paths (factorized, reconstructed, auto) of each factorization "
                             "at --ranks, with and without an input gradient")
    parser.add_argument("--ranks", type=float, nargs="+", default=[0.02, 0.1, 0.3], help="ranks for --paths")
    parser.add_argument("--name", default=None, help="file name of the --paths table (default spectral_paths_<device>)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = describe(parser).parse_args()
    device = pick_device(args.device)
    if args.paths:
        return contraction_paths(args, device)
    torch.manual_seed(0)
    b, c, n = args.batch, args.channels, args.size
    if n < 4:
        raise SystemExit(f"--size {n}: the grid needs at least 4 points per axis")
    # 16x16 modes in neuraloperator's convention, fewer on grids too small for them (|k| < m <= (n + 1) // 2)
    m = min(8, (n + 1) // 2)
    ours_modes, their_modes = (m, min(9, (n + 1) // 2)), (2 * m, 2 * m)
    x = torch.randn(b, c, n, n)
    rows = []
    print(f"device {device}, batch {b}, {c} channels, {n}x{n}; forward+backward median of {args.repeats}")

    def pair(label: str, ours: dict, theirs: dict | None) -> None:
        ours["vs neuraloperator"] = f"{ours['ms'] / theirs['ms']:.2f}x time" if theirs else "n/a"
        rows.append(ours)
        # a missing peer library is said in its row, not dropped
        rows.append(theirs or {"case": f"neuraloperator {label}", "ms": "not installed (pip install -e \".[bench]\")"})

    for fact in ("dense", "cp", "tucker", "tt"):
        rank = args.rank
        ours = measure(f"kernelnn SpectralConv {fact}", SpectralConv(c, c, ours_modes, factorization=fact, rank=rank),
                       x, device, args)
        theirs = None
        if neuralop is not None:
            kw = {} if fact == "dense" else {"factorization": fact, "rank": rank, "implementation": "factorized"}
            theirs = measure(f"neuraloperator SpectralConv {fact}", NOSpectralConv(c, c, their_modes, **kw), x,
                             device, args)
        pair(f"SpectralConv {fact}", ours, theirs)
        if fact != "dense":
            recon = measure(f"kernelnn SpectralConv {fact} (reconstructed)",
                            SpectralConv(c, c, ours_modes, factorization=fact, rank=rank,
                                         implementation="reconstructed"), x, device, args)
            rows.append(recon)

    x_in = torch.randn(b, 1, n, n)
    ours = measure(f"kernelnn FNO (4 layers, width {c})",
                   FNO(1, 1, n_modes=ours_modes, hidden_channels=c, n_layers=4), x_in, device, args)
    theirs = None
    if neuralop is not None:
        theirs = measure(f"neuraloperator FNO (4 layers, width {c})",
                         NOFNO(n_modes=their_modes, in_channels=1, out_channels=1, hidden_channels=c, n_layers=4),
                         x_in, device, args)
    pair(f"FNO (4 layers, width {c})", ours, theirs)

    notes = [
        f"batch {b}, {c} channels, {n}x{n}; kernelnn n_modes={ours_modes} ({2 * ours_modes[0] - 1}x{ours_modes[1]} "
        f"coefficients), neuraloperator n_modes={their_modes}; factorized ranks {args.rank} of the dense weight.",
        "Time: forward + backward, median of " f"{args.repeats} after {args.warmup} warm-up runs.",
        "Memory: CUDA peak allocated during forward + backward; on CPU the bytes saved for backward.",
        "params: real degrees of freedom (a complex parameter counts twice).",
        "The two FNOs differ beyond the spectral layers: neuraloperator's blocks add channel MLPs and its lifting "
        "is an MLP; the row compares the models users would instantiate with these settings.",
        "neuraloperator: " + (f"{neuralop.__version__}" if neuralop is not None and hasattr(neuralop, "__version__")
                              else "installed" if neuralop is not None else "not installed (ratios n/a)"),
    ]
    text = write_results(rows, ["case", "ms", "memory_MiB", "params", "vs neuraloperator"],
                         f"Spectral convolution benchmark ({device.type})", Path(args.out) / f"spectral_{device.type}",
                         notes)
    print("\n" + text)


def contraction_paths(args, device: torch.device) -> None:
    """Each factorization at each rank through the three paths, timed interleaved (repeat by repeat, so this
    machine's drift hits all three alike), for a first layer (input without gradient) and an inner one."""
    b, c, n = args.batch, args.channels, args.size
    impls = ("factorized", "reconstructed", "auto")
    rows = []
    for fact in ("cp", "tucker", "tt"):
        for rank in args.ranks:
            for input_grad in (False, True):
                torch.manual_seed(0)
                convs = {impl: SpectralConv(c, c, (8, 9), factorization=fact, rank=rank,
                                            implementation=impl).to(device) for impl in impls}
                for conv in convs.values():
                    conv.load_state_dict(convs["factorized"].state_dict())
                x = torch.randn(b, c, n, n, device=device, requires_grad=input_grad)
                times = {impl: [] for impl in impls}
                for _ in range(args.warmup + args.repeats):
                    for impl, conv in convs.items():
                        times[impl].append(time_forward_backward(lambda m=conv, x=x: m(x), device, 0, 1))
                row = {"factorization": fact, "rank": rank, "input grad": "yes" if input_grad else "no",
                       "auto picks": convs["auto"]._path(torch.zeros(b, c, 15, 9, dtype=torch.complex64,
                                                                     device=device, requires_grad=input_grad))}
                for impl, conv in convs.items():
                    row[f"{impl} ms"] = 1e3 * sorted(times[impl][args.warmup:])[args.repeats // 2]
                    row[f"{impl} MiB"] = memory_bytes(lambda m=conv, x=x: m(x), device) / 2**20
                fastest = min(row["factorized ms"], row["reconstructed ms"])
                row["auto vs faster"] = f"{row['auto ms'] / fastest:.2f}x"
                row["auto vs reconstructed memory"] = f"{row['auto MiB'] / row['reconstructed MiB']:.2f}x"
                rows.append(row)
                print(row, flush=True)
    columns = ["factorization", "rank", "input grad", "auto picks", *(f"{i} {u}" for u in ("ms", "MiB") for i in impls),
               "auto vs faster", "auto vs reconstructed memory"]
    notes = [f"`python benchmarks/bench_spectral.py {' '.join(sys.argv[1:])}`",
             f"SpectralConv({c}, {c}, n_modes=(8, 9)), batch {b}, {n}x{n}; forward + backward, median of "
             f"{args.repeats} after {args.warmup} warm-up rounds, the three paths interleaved",
             "MiB: bytes saved for backward (CPU) / peak allocated (CUDA); input grad: whether the input needs a "
             "gradient (every layer but the first), so that the reconstructed path keeps the dense weight too"]
    print(write_results(rows, columns, f"Spectral contraction paths ({device.type})",
                        Path(args.out) / (args.name or f"spectral_paths_{device.type}"), notes))


if __name__ == "__main__":
    main()
