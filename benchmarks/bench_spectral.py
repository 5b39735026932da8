"""Spectral convolution and FNO: kernelnn against neuraloperator, forward + backward time and memory.

    python benchmarks/bench_spectral.py                 # CPU (or CUDA when present)
    python benchmarks/bench_spectral.py --device cuda --repeats 50
    python benchmarks/bench_spectral.py --paths        # factorized / reconstructed / auto at several ranks
    python benchmarks/bench_spectral.py --accuracy     # Darcy test error, both libraries, one recipe, 3 seeds

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
    parser.add_argument("--accuracy", action="store_true",
                        help="instead: train FNOs of both libraries on kernelnn's Darcy with one recipe (AdamW, "
                             "cosine, relative L2) and compare test errors and training time")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds for --accuracy")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs for --accuracy")
    parser.add_argument("--lr", type=float, default=8e-3, help="AdamW learning rate for --accuracy")
    parser.add_argument("--resolution", type=int, default=16,
                        help="--accuracy: training grid; tests at it and zero-shot at twice it")
    parser.add_argument("--width", type=int, default=32, help="hidden channels of the --accuracy FNOs")
    parser.add_argument("--modes", type=int, default=8,
                        help="--accuracy: neuraloperator's n_modes per dim (kernelnn's paper FNO keeps the band "
                             "|k| <= modes / 2, n_modes = modes // 2 + 1)")
    parser.add_argument("--variants", nargs="+", default=list(ACCURACY_VARIANTS), choices=list(ACCURACY_VARIANTS),
                        help="--accuracy: models to train")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = describe(parser).parse_args()
    device = pick_device(args.device)
    if args.paths:
        return contraction_paths(args, device)
    if args.accuracy:
        return accuracy(args, device)
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



ACCURACY_VARIANTS = {
    "neuraloperator": "neuraloperator's FNO, its defaults (channel MLPs, soft-gating, lifting MLP)",
    "kernelnn-paper": "kernelnn's FNO as the paper has it (linear lifting, no channel MLP), band |k| <= modes / 2",
    "kernelnn-neuralop-block": "kernelnn's FNO with neuraloperator's architecture (neuralop_fno_kwargs), kernelnn's "
                               "initialisation",
    "kernelnn-from-neuralop": "kernelnn's FNO converted by from_neuralop from the neuraloperator model of the same "
                              "seed: the same function at step 0, trained by the same loop",
}


def accuracy(args, device: torch.device) -> None:
    """Issue #15 part 7: the FNO's accuracy against neuraloperator's, one recipe, several seeds, on our Darcy."""
    import time

    from kernelnn.data import make_darcy
    from kernelnn.interop import from_neuralop, neuralop_fno_kwargs
    from kernelnn.losses import LpLoss

    if neuralop is None:
        raise SystemExit("--accuracy compares with neuraloperator: pip install -e \".[bench]\"")
    r = args.resolution
    bundle = make_darcy(resolution=r, test_resolutions=[r, 2 * r], n_train=1000, n_val=0, n_test=200, seed=0)
    x, y = bundle.train.tensors
    mean_x, std_x, mean_y, std_y = x.mean(), x.std(), y.mean(), y.std()
    loss_fn = LpLoss()

    def neuralop_model(seed: int):
        torch.manual_seed(seed)
        return NOFNO(n_modes=(args.modes, args.modes), in_channels=1, out_channels=1, hidden_channels=args.width)

    def build(variant: str, seed: int) -> torch.nn.Module:
        if variant == "neuraloperator":
            return neuralop_model(seed)
        if variant == "kernelnn-from-neuralop":
            return from_neuralop(neuralop_model(seed))
        kwargs = neuralop_fno_kwargs(neuralop_model(seed))
        torch.manual_seed(seed)
        if variant == "kernelnn-neuralop-block":
            return FNO(**kwargs)
        return FNO(1, 1, n_modes=(args.modes // 2 + 1,) * 2, hidden_channels=args.width,
                   projection_channels=2 * args.width)

    def predict(model, inputs):  # the same scalar normalisation of input and output for every model
        return model((inputs - mean_x) / std_x) * std_y + mean_y

    rows = []
    for variant in args.variants:
        for seed in args.seeds:
            model = build(variant, seed).to(device)
            params = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
            steps = args.epochs * -(-len(x) // 32)
            optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
            order = torch.Generator().manual_seed(seed)
            start = time.perf_counter()
            model.train()
            for _ in range(args.epochs):
                for batch in torch.randperm(len(x), generator=order).split(32):
                    loss = loss_fn(predict(model, x[batch].to(device)), y[batch].to(device))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
            seconds = time.perf_counter() - start
            model.eval()
            errors = {}
            with torch.no_grad():
                for name, test in bundle.tests.items():
                    tx, ty = (t.to(device) for t in test.tensors)
                    errors[f"test {name.removeprefix('test_')}"] = LpLoss(reduction="none")(predict(model, tx),
                                                                                           ty).mean().item()
            rows.append({"model": variant, "seed": seed, "params": params, **errors, "train s": seconds})
            print(rows[-1], flush=True)
    summary = []
    columns = [c for c in rows[0] if c.startswith("test ")] + ["train s"]
    means = {v: {c: sum(row[c] for row in rows if row["model"] == v) / len(args.seeds) for c in columns}
             for v in args.variants}
    for variant in args.variants:
        entry = {"model": variant, "seed": "mean", "params": next(r["params"] for r in rows if r["model"] == variant),
                 **means[variant]}
        if "neuraloperator" in means:
            entry["vs neuraloperator"] = " / ".join(f"{means[variant][c] / means['neuraloperator'][c]:.3f}x"
                                                    for c in columns)
        summary.append(entry)
    notes = [
        f"`python benchmarks/bench_spectral.py --accuracy --device {device.type}`",
        f"kernelnn's Darcy (kernelnn.data.make_darcy, seed 0): 1000 training samples at {r}x{r}, 200 test samples at "
        f"{r}x{r} and zero-shot at {2 * r}x{2 * r}; input and output scaled by their training mean and std",
        f"recipe for every model: AdamW lr {args.lr:g}, weight decay 1e-4, cosine to 0 over {args.epochs} epochs, "
        "batch 32, relative L2 loss; errors are relative L2, mean over test samples",
        f"neuraloperator FNO(n_modes=({args.modes}, {args.modes}), hidden_channels={args.width}); kernelnn-paper "
        f"n_modes={args.modes // 2 + 1} (|k| <= {args.modes // 2}), projection {2 * args.width}",
        "vs neuraloperator: ratio of the seed means (test errors / training time); below 1: kernelnn lower",
        *[f"{name}: {text}" for name, text in ACCURACY_VARIANTS.items() if name in args.variants],
    ]
    text = write_results(summary + rows, ["model", "seed", "params", *columns, "vs neuraloperator"],
                         f"FNO accuracy against neuraloperator on Darcy ({device.type})",
                         Path(args.out) / f"spectral_accuracy_{device.type}", notes)
    print("\n" + text)


if __name__ == "__main__":
    main()
