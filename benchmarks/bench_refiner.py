"""Spectral-Refiner at test time: errors against the solver before and after refining, and the cost.

A :class:`~kernelnn.models.BochnerFNO` trained by ``experiment=navier_stokes_refiner`` (10 vorticity frames -> the
next 20, 0.1 time units apart, nu = 1e-3, 32 x 32) predicts every test trajectory; each prediction is then refined
on its own by :func:`kernelnn.spectral_refiner.refine_trajectories`, reading no target. Rows:

- each ``parameterization`` (``output``: the layer's output coefficients, preconditioned; ``weights``: the raw
  weights, as the authors' code) at each number of L-BFGS ``iterations``;
- ``persistence``: the same refinement started from the last input frame repeated (the trained output layer
  zeroed), which says how much the trained prediction itself is worth to the refinement.

Errors are relative L2 and ``H^-1`` against the solver's frames (means over trajectories); ``residual`` is the
estimator; ``solver s`` the data's solver (its time step) producing the same trajectories on the same grid from their
last input frames.

    python benchmarks/bench_refiner.py                        # trains the model first (~10 min on 2 CPU cores)
    python benchmarks/bench_refiner.py --checkpoint outputs/.../checkpoints/best.pt
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DEFAULT_OUT,
    compose_experiment,
    describe,
    pick_device,
    train_experiment,
    write_results,
)

EXPERIMENT = "navier_stokes_refiner"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="best.pt of `python train.py experiment="
                        f"{EXPERIMENT}` (default: train one first)")
    parser.add_argument("--iterations", nargs="+", type=int, default=[50, 200], help="L-BFGS iterations per row")
    parser.add_argument("--parameterizations", nargs="+", default=["output", "weights"],
                        choices=["output", "weights"], help="coordinates the layer is refined in")
    parser.add_argument("--samples", type=int, default=None, help="refine the first N test trajectories (all)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for the .md/.json tables")
    args = describe(parser).parse_args()
    device = pick_device(args.device)

    from hydra.utils import instantiate

    from kernelnn.data.navier_stokes import fno_forcing, solve_navier_stokes
    from kernelnn.losses import LpLoss, NegativeSobolevLoss
    from kernelnn.navier_stokes_residual import NavierStokesResidual
    from kernelnn.spectral_refiner import refine_trajectories
    from kernelnn.training import load_model

    checkpoint = args.checkpoint or train_experiment(EXPERIMENT, device.type, ["plugins.spectral_refiner.iterations=0"])
    model = load_model(checkpoint).to(device).eval()
    bundle = instantiate(compose_experiment(EXPERIMENT, []).data)
    (name, test), = bundle.tests.items()
    x, y = (t[: args.samples] for t in test.tensors)
    y = y.double()
    estimator = NavierStokesResidual.for_bundle(bundle, reduction="none").to(device)
    l2, h_minus_1 = LpLoss(reduction="none"), NegativeSobolevLoss(1.0, reduction="none")
    info = bundle.info
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    solve_navier_stokes(x[:, -1].double().to(device), fno_forcing(x.shape[-1]).to(device), info["viscosity"],
                        info["frame_dt"] * model.out_steps, model.out_steps, info["dt"])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    solver_seconds = time.perf_counter() - start

    persistence = copy.deepcopy(model)
    with torch.no_grad():
        persistence.output.weight.weight.zero_()
    runs = [("trained", p, n, model) for p in args.parameterizations for n in args.iterations]
    runs += [("persistence", "output", n, persistence) for n in args.iterations]
    rows = []
    for start_from, parameterization, iterations, net in runs:
        result = refine_trajectories(net, x, estimator, iterations=iterations, parameterization=parameterization)
        rows.append({
            "start": start_from, "parameterization": parameterization, "iterations": iterations,
            "L2 before": l2(result.initial, y).mean().item(), "L2 after": l2(result.predictions, y).mean().item(),
            "H^-1 before": h_minus_1(result.initial, y).mean().item(),
            "H^-1 after": h_minus_1(result.predictions, y).mean().item(),
            "residual before": result.residual_before.mean().item(),
            "residual after": result.residual_after.mean().item(),
            "refine s": result.seconds, "solver s": solver_seconds,
        })
        print(rows[-1], flush=True)
    with torch.no_grad():
        floor = estimator.per_trajectory(torch.cat([x[:, -1:].double(), y], 1).to(device)).mean().item()
    text = write_results(
        rows, list(rows[0]), f"Spectral-Refiner at test time ({len(x)} test trajectories of {name})",
        Path(args.out) / f"refiner_{device.type}",
        [f"`python benchmarks/bench_refiner.py --device {args.device}`"
         + (f" with `--checkpoint` from `python train.py experiment={EXPERIMENT}`" if args.checkpoint else
            f" (trains `experiment={EXPERIMENT}` first)"),
         "each trajectory refined on its own, L-BFGS with strong-Wolfe line search, float64; no target is read",
         f"the estimator of the solver's own frames: {floor:.3g} (the time-discretisation floor at 0.1 time units)",
         "solver s: the data's pseudo-spectral solver (dt 5e-3) for the same trajectories, same grid and device"])
    print(text)


if __name__ == "__main__":
    main()
