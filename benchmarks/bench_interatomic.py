"""Interatomic potential on neighbour lists: time and memory against the number of atoms at fixed density.

    python benchmarks/bench_interatomic.py                               # 512, 4,096, 32,768 atoms
    python benchmarks/bench_interatomic.py --atoms 512 4096 --products cg gaunt cp --device cuda

Systems: a simple cubic lattice at number density 0.8 (a Lennard-Jones liquid's, sigma = 1) with Gaussian
displacements (0.1), in a periodic cubic box. ``InteratomicPotential(species=1, L=2, channels=8, layers=2,
cutoff=2.0)``, float32. Per size: the neighbour list alone, energy (forward), and energy + forces (forward +
one backward), median of ``--repeats`` after a warm-up; memory: on CPU the growth of the resident set's high-water
mark over one energy + forces call (glibc told to map large blocks, so freed memory leaves it), on CUDA the peak
allocated. Linear scaling shows as a constant time and memory per atom.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pick_device, write_results  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--atoms", type=int, nargs="+", default=[512, 4096, 32768])
    parser.add_argument("--products", nargs="+", default=["cg"], choices=["cg", "gaunt", "cp"])
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cutoff", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = parser.parse_args()
    device = pick_device(args.device)
    if device.type == "cpu" and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        # Large blocks straight from mmap, so freed memory leaves the resident set and the peak is honest.
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    g = torch.Generator().manual_seed(0)
    rows = []
    small_x, small_cell = lattice(216, 0.8, g)
    for product in args.products:
        torch.manual_seed(0)
        model = InteratomicPotential(1, L=2, channels=args.channels, layers=2, cutoff=args.cutoff,
                                     tensor_product=product).to(device)
        small_z = torch.zeros(216, dtype=torch.long, device=device)
        for n in args.atoms:
            x, cell = lattice(n, 0.8, g)
            x, cell, z = x.to(device), cell.to(device), torch.zeros(n, dtype=torch.long, device=device)
            nb = neighbor_list(x, args.cutoff, cell=cell)
            row = {"product": product, "atoms": n, "pairs per atom": round(nb.i.numel() / n, 1)}
            row["neighbour list ms"] = 1e3 * timed(lambda: neighbor_list(x, args.cutoff, cell=cell), device,  # noqa: B023
                                                   args.repeats)
            with torch.no_grad():
                row["energy ms"] = 1e3 * timed(lambda: model(x, z, cell=cell, forces=False), device,  # noqa: B023
                                               args.repeats)
                row["energy + forces ms"] = 1e3 * timed(lambda: model(x, z, cell=cell), device,  # noqa: B023
                                                        args.repeats)
                memory = peak_bytes(lambda: model(x, z, cell=cell),  # noqa: B023
                                    lambda: model(small_x.to(device), small_z, cell=small_cell.to(device)),  # noqa: B023
                                    device)
            row["us per atom (E + F)"] = round(1e3 * row["energy + forces ms"] / n, 1)
            row["MiB (E + F)"] = round(memory / 2**20, 1)
            row["KiB per atom"] = round(memory / 1024 / n, 2)
            rows.append(row)
            print(row, flush=True)
    command = "python benchmarks/bench_interatomic.py " + " ".join(sys.argv[1:])
    notes = [f"`{command}`", f"periodic cubic box, density 0.8, cutoff {args.cutoff}, L = 2, {args.channels} "
             "channels, 2 layers, float32, median of " f"{args.repeats}",
             "memory: growth of the process's peak resident set over one energy + forces call (CPU) / peak "
             "allocated (CUDA)"]
    print(write_results(rows, list(rows[0]), f"Interatomic potential: scaling in atoms ({device.type})",
                        Path(args.out) / f"interatomic_scaling_{device.type}", notes))


if __name__ == "__main__":
    main()
