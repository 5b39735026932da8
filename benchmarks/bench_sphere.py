"""The spherical FNO against the plain FNO on the shallow-water equations: one step and autoregressive rollouts.

Both models are trained by the same recipe on ``data=shallow_water`` (6-hour steps on a 32 x 64 equiangular grid,
200 training pairs; the loss is the relative L2 error integrated with the grid's area weights, per channel and
averaged over geopotential, vorticity and divergence, :class:`kernelnn.losses.SphereLpLoss`),
``experiment=shallow_water_sfno`` and the same with ``model=fno``. Then
``--trajectories`` new initial conditions (a seed the data never used) are run by torch-harmonics' solver for
``--steps`` steps of 6 hours, and each model rolls out from the first state, feeding its output back. The table
gives that error against the solver at each step (mean over trajectories), and persistence's (the initial state
kept); Bonev et al.
(2023) report the FNO going unstable in such rollouts and the SFNO staying stable.

    python benchmarks/bench_sphere.py                     # trains both (a few minutes each on 2 CPU cores)
    python benchmarks/bench_sphere.py --checkpoints sfno=.../best.pt fno=.../best.pt
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_OUT, describe, pick_device, write_results  # noqa: E402

MODELS = ("sfno", "fno")


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from kernelnn.training.launch import register_resolvers

    register_resolvers()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "configs")):
        return hydra_compose("train", overrides=["experiment=shallow_water_sfno", *overrides])


def train(model: str, device: str, epochs: int | None) -> tuple[str, dict]:
    from kernelnn.training import run

    overrides = [f"model={model}", f"trainer.device={device}", "trainer.progress_bar=false",
                 "trainer.tensorboard=false", "trainer.plots=false"]
    if epochs is not None:
        overrides.append(f"trainer.epochs={epochs}")
    summary = run(compose(overrides), output_dir=tempfile.mkdtemp(prefix=f"bench-sphere-{model}-"))
    print(model, "test", summary["test"], flush=True)
    return str(summary["best_checkpoint"]), summary["test"]


def solver_trajectories(n: int, steps: int, seed: int) -> torch.Tensor:
    """``(n, steps + 1, 3, nlat, nlon)`` states 6 hours apart from new random initial conditions, as the data's."""
    from torch_harmonics.examples import ShallowWaterSolver

    data = compose([]).data
    per_step = max(1, round(data.hours * 3600 / data.solver_dt))
    solver = ShallowWaterSolver(data.nlat, data.nlon, data.hours * 3600 / per_step, grid=data.grid).to(torch.float64)
    trajectories = []
    with torch.random.fork_rng():  # the solver draws from torch's global RNG
        torch.manual_seed(seed)
        for _ in range(n):
            state = solver.random_initial_condition(mach=data.mach)
            frames = [solver.spec2grid(state)]
            for _ in range(steps):
                state = solver.timestep(state, per_step)
                frames.append(solver.spec2grid(state))
            trajectories.append(torch.stack(frames))
    return torch.stack(trajectories).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", nargs="*", default=[], help="model=path pairs (sfno=..., fno=...)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the recipe's 20)")
    parser.add_argument("--trajectories", type=int, default=10, help="rollouts from new initial conditions")
    parser.add_argument("--steps", type=int, default=12, help="6-hour steps per rollout")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for the .md/.json tables")
    args = describe(parser).parse_args()
    device = pick_device(args.device)

    from kernelnn.losses import SphereLpLoss
    from kernelnn.training import load_model

    given = dict(item.split("=", 1) for item in args.checkpoints)
    truth = solver_trajectories(args.trajectories, args.steps, seed=10_000)
    error = SphereLpLoss(compose([]).data.grid, per_channel=True, reduction="none")
    rows = [{"model": "persistence", "step": step, "hours": 6 * step,
             "rel. L2 (area)": error(truth[:, 0], truth[:, step]).mean().item(), "diverged": 0, "test one step": ""}
            for step in range(1, args.steps + 1)]
    for name in MODELS:
        checkpoint, test = (given[name], None) if name in given else train(name, device.type, args.epochs)
        model = load_model(checkpoint).to(device).eval()
        state = truth[:, 0].to(device)
        with torch.no_grad():
            for step in range(1, args.steps + 1):
                state = model(state)
                values = error(state.cpu(), truth[:, step])
                finite = torch.isfinite(values)
                rows.append({"model": name, "step": step, "hours": 6 * step,
                             "rel. L2 (area)": values[finite].mean().item() if finite.any() else float("nan"),
                             "diverged": int((~finite).sum()),
                             "test one step": test["test/l2"] if test and step == 1 else ""})
                print(rows[-1], flush=True)
    text = write_results(
        rows, ["model", "step", "hours", "rel. L2 (area)", "diverged", "test one step"],
        f"Spherical FNO vs FNO, shallow water, autoregressive rollouts ({args.trajectories} trajectories)",
        Path(args.out) / f"sphere_rollouts_{device.type}",
        [f"`python benchmarks/bench_sphere.py --device {args.device}`"
         + (" with given checkpoints" if given else " (trains both by `experiment=shallow_water_sfno`, "
            "`model=sfno` / `model=fno`)"),
         "rel. L2 (area): relative L2 error against the solver, integrated with the equiangular grid's area weights, "
         "per channel and averaged over the 3 channels, mean over the trajectories that stayed finite; diverged: "
         "trajectories whose rollout is no longer finite",
         "test one step: the trained model's test error on the data's own test pairs (area-weighted)"])
    print(text)


if __name__ == "__main__":
    main()
