"""Resolution convergence of trained U-Nets: the operator U-Net (model=uno) against the pixel U-Net (model=unet).

Berner et al.'s defining property of a neural operator: one trained model, one smooth input sampled at 32, 64, 128
and 256 points per side; its outputs, compared at the points the grids share (the 32 x 32 grid's), converge as
the resolution grows. This script trains both U-Nets with their recipes (``experiment=<data>_uno`` / ``_unet``),
or loads given checkpoints, and measures for each resolution ``n``

- ``vs finest``: the relative difference from the output at 512 points per side (the limit's stand-in);
- ``vs training grid``: the relative difference from the output on the training grid (what the model was fitted
  to compute), at the same common points.

    python benchmarks/bench_unet.py                               # trains both on Darcy and Navier-Stokes (~20 min)
    python benchmarks/bench_unet.py --checkpoints darcy_uno=outputs/.../best.pt darcy_unet=...

Inputs: for Darcy, a smooth coefficient ``a(x, y) = 7.5 + 4.5 sin(2 pi x) cos(2 pi y)`` within the data's range
[3, 12] (the data's coefficients are piecewise constant: not smooth, so not usable for a convergence test); for
Navier-Stokes, five smooth periodic vorticity frames ``sin(2 pi (x + t / 10)) cos(2 pi y) + 0.5 cos(4 pi (x + y))``
at t = 0..4, of the data's size.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_OUT, describe, write_results  # noqa: E402

RESOLUTIONS = (32, 64, 128, 256)
FINEST = 512
TRAINING_GRID = {"darcy": 32, "navier_stokes": 64}


def smooth_input(data: str, n: int) -> torch.Tensor:
    x = torch.arange(n, dtype=torch.float64) / n
    x, y = torch.meshgrid(x, x, indexing="ij")
    if data == "darcy":
        return (7.5 + 4.5 * torch.sin(2 * math.pi * x) * torch.cos(2 * math.pi * y))[None, None]
    frames = [torch.sin(2 * math.pi * (x + t / 10)) * torch.cos(2 * math.pi * y)
              + 0.5 * torch.cos(4 * math.pi * (x + y)) for t in range(5)]
    return torch.stack(frames)[None]


def train(experiment: str, device: str) -> str:
    from hydra import compose, initialize_config_dir

    from kernelnn.training import run
    from kernelnn.training.launch import register_resolvers

    register_resolvers()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "configs")):
        cfg = compose("train", overrides=[f"experiment={experiment}", f"trainer.device={device}",
                                          "trainer.progress_bar=false", "trainer.tensorboard=false",
                                          "trainer.plots=false"])
    out = tempfile.mkdtemp(prefix=f"bench-unet-{experiment}-")
    summary = run(cfg, output_dir=out)
    print(experiment, "test", summary["test"], flush=True)
    return str(summary["best_checkpoint"])


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def curves(checkpoint: str, data: str, device: torch.device) -> list[dict]:
    from kernelnn.training import load_model

    model = load_model(checkpoint).to(device).eval()
    outputs = {}
    with torch.no_grad():
        for n in (*RESOLUTIONS, FINEST):
            out = model(smooth_input(data, n).float().to(device)).double().cpu()
            outputs[n] = out[..., :: n // 32, :: n // 32]
    base = TRAINING_GRID[data]
    return [{"n": n, "vs finest": relative(outputs[n], outputs[FINEST]),
             "vs training grid": relative(outputs[n], outputs[base])} for n in RESOLUTIONS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["darcy", "navier_stokes"], choices=sorted(TRAINING_GRID),
                        help="data sets to train on")
    parser.add_argument("--checkpoints", nargs="*", default=[], help="experiment=path pairs (e.g. darcy_uno=...)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = describe(parser).parse_args()
    given = dict(item.split("=", 1) for item in args.checkpoints)
    device = torch.device(args.device)
    rows = []
    for data in args.data:
        for model in ("uno", "unet"):
            experiment = f"{data}_{model}"
            checkpoint = given.get(experiment) or train(experiment, args.device)
            for row in curves(checkpoint, data, device):
                rows.append({"data": data, "model": model, **row})
                print(rows[-1], flush=True)
    stem = Path(args.out) / f"unet_convergence_{args.device}"
    text = write_results(
        rows, ["data", "model", "n", "vs finest", "vs training grid"],
        "Resolution convergence: the operator U-Net against the pixel U-Net (trained)", stem,
        [f"`python benchmarks/bench_unet.py --device {args.device}`: each U-Net trained by its recipe "
         "(`experiment=<data>_uno` / `<data>_unet`), then applied to one smooth input sampled at n points per side",
         f"vs finest: relative L2 difference from the output at {FINEST} points per side, at the 32 x 32 grid's "
         "points; vs training grid: the same, from the output on the training grid (Darcy 32, Navier-Stokes 64)"])
    plot(rows, stem.with_suffix(".png"))
    print(text)


def plot(rows: list[dict], path: Path) -> None:
    """Both differences against n, log-log, one panel per dataset: the figure of the table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r["data"] for r in rows})
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for ax, data in zip(axes[0], datasets, strict=True):
        for model, color in (("uno", "C0"), ("unet", "C3")):
            mine = [r for r in rows if r["data"] == data and r["model"] == model]
            ns = [r["n"] for r in mine]
            ax.loglog(ns, [r["vs finest"] for r in mine], "o-", color=color, label=f"{model}: vs n = {FINEST}")
            kept = [(r["n"], r["vs training grid"]) for r in mine if r["vs training grid"] > 0]
            ax.loglog(*zip(*kept, strict=True), "s--", color=color, label=f"{model}: vs training grid")
        ax.set(title=data, xlabel="points per side n", ylabel="relative L2 difference at common points")
        ax.set_xticks(list(RESOLUTIONS), [str(n) for n in RESOLUTIONS], minor=False)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
