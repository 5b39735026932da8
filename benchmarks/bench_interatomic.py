"""Interatomic potential on neighbour lists: time and memory against the number of atoms at fixed density.

    python benchmarks/bench_interatomic.py                               # 512, 4,096, 32,768 atoms
    python benchmarks/bench_interatomic.py --atoms 512 4096 --products cg gaunt cp --device cuda
    python benchmarks/bench_interatomic.py --edge-chunks 32768 0       # edges in chunks against all at once

Systems: a simple cubic lattice at number density 0.8 (a Lennard-Jones liquid's, sigma = 1) with Gaussian
displacements (0.1), in a periodic cubic box. ``InteratomicPotential(species=1, L=2, channels=8, layers=2,
cutoff=2.0)``, float32. Per size: the neighbour list alone, energy (forward), and energy + forces (forward +
one backward), median of ``--repeats`` after a warm-up, with the default allocator; memory: on CPU the growth of the
resident set's high-water mark over one energy + forces call, in a child process whose glibc maps large blocks (so
freed memory leaves it; this slows allocation, so nothing is timed there), on CUDA the peak allocated. Linear
scaling shows as a constant time and memory per atom.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_OUT, describe, pick_device, write_results  # noqa: E402

from kernelnn.layers import neighbor_list  # noqa: E402
from kernelnn.models import InteratomicPotential  # noqa: E402


def lattice(n_atoms: int, density: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    per_side = round(n_atoms ** (1 / 3))
    if per_side ** 3 != n_atoms:
        raise SystemExit(f"--atoms {n_atoms}: use cubes (512, 4096, 32768, ...)")
    side = (n_atoms / density) ** (1 / 3)
    grid = torch.stack(torch.meshgrid(*[torch.arange(per_side, dtype=torch.float64)] * 3, indexing="ij"), -1)
    x = (grid.reshape(-1, 3) + 0.5) * (side / per_side)
    x = (x + 0.1 * torch.randn(x.shape, generator=generator, dtype=torch.float64)) % side
    return x.float(), torch.eye(3) * side


def timed(fn, device: torch.device, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_bytes(fn, warmup, device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    warmup()
    status = Path("/proc/self/status")

    def kib(field: str) -> int:
        return next(int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith(field + ":"))

    before = kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak resident set to the current one
    fn()
    return (kib("VmHWM") - before) * 1024


def build(product: str, chunk: int, args, device: torch.device) -> InteratomicPotential:
    torch.manual_seed(0)
    return InteratomicPotential(1, L=2, channels=args.channels, layers=2, cutoff=args.cutoff, tensor_product=product,
                                edge_chunk=chunk or None).to(device)


def system(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x, cell = lattice(n, 0.8, torch.Generator().manual_seed(n))  # the same system in every row
    return x.to(device), cell.to(device), torch.zeros(n, dtype=torch.long, device=device)


def memory(product: str, chunk: int, n: int, args, device: torch.device) -> int:
    """Peak memory of one energy + forces call. On CPU in a child process whose glibc maps every large block (so
    freed memory leaves the resident set and the peak is honest), which would slow the timed runs down."""
    if device.type == "cpu" and os.environ.get("MALLOC_MMAP_THRESHOLD_") != "65536":
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
        command = [sys.executable, __file__, "--memory-of", product, str(chunk), str(n), "--channels",
                   str(args.channels), "--cutoff", str(args.cutoff), "--device", "cpu"]
        return int(subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout.split()[-1])
    model = build(product, chunk, args, device)
    x, cell, z = system(n, device)
    small_x, small_cell, small_z = system(216, device)
    with torch.no_grad():
        return peak_bytes(lambda: model(x, z, cell=cell), lambda: model(small_x, small_z, cell=small_cell), device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--atoms", type=int, nargs="+", default=[512, 4096, 32768],
                        help="system sizes (cubes: 512, 4096, 32768, ...)")
    parser.add_argument("--products", nargs="+", default=["cg"], choices=["cg", "gaunt", "cp"],
                        help="tensor products of the potential")
    parser.add_argument("--edge-chunks", type=int, nargs="+", default=[32768],
                        help="the model's edge_chunk; 0: all edges at once")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cutoff", type=float, default=2.0, help="interaction cutoff (neighbour list)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-of", nargs=3, metavar=("PRODUCT", "CHUNK", "ATOMS"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = describe(parser).parse_args()
    device = pick_device(args.device)
    if args.memory_of:  # the child process of memory()
        product, chunk, n = args.memory_of
        print(memory(product, int(chunk), int(n), args, device))
        return
    rows = []
    for product, chunk in ((p, c) for p in args.products for c in args.edge_chunks):
        model = build(product, chunk, args, device)
        for n in args.atoms:
            x, cell, z = system(n, device)
            nb = neighbor_list(x, args.cutoff, cell=cell)
            row = {"product": product, "edge chunk": chunk or "all", "atoms": n,
                   "pairs per atom": round(nb.i.numel() / n, 1)}
            row["neighbour list ms"] = 1e3 * timed(lambda: neighbor_list(x, args.cutoff, cell=cell), device,  # noqa: B023
                                                   args.repeats)
            with torch.no_grad():
                row["energy ms"] = 1e3 * timed(lambda: model(x, z, cell=cell, forces=False), device,  # noqa: B023
                                               args.repeats)
                row["energy + forces ms"] = 1e3 * timed(lambda: model(x, z, cell=cell), device,  # noqa: B023
                                                        args.repeats)
            used = memory(product, chunk, n, args, device)
            row["us per atom (E + F)"] = round(1e3 * row["energy + forces ms"] / n, 1)
            row["MiB (E + F)"] = round(used / 2**20, 1)
            row["KiB per atom"] = round(used / 1024 / n, 2)
            rows.append(row)
            print(row, flush=True)
    command = "python benchmarks/bench_interatomic.py " + " ".join(sys.argv[1:])
    notes = [f"`{command}`", f"periodic cubic box, density 0.8, cutoff {args.cutoff}, L = 2, {args.channels} "
             "channels, 2 layers, float32, median of " f"{args.repeats}; times with the default allocator",
             "memory: growth of the process's peak resident set over one energy + forces call, in a separate process "
             "whose glibc maps large blocks (CPU) / peak allocated (CUDA)"]
    print(write_results(rows, list(rows[0]), f"Interatomic potential: scaling in atoms ({device.type})",
                        Path(args.out) / f"interatomic_scaling_{device.type}", notes))


if __name__ == "__main__":
    main()
