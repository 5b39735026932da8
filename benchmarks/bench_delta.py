"""Delta activations: accuracy against temporal sparsity on moving-digit videos, over a few penalty rates.

    python benchmarks/bench_delta.py                          # dense + delta at rates 0 1e-3 1e-2 ..., seed 0
    python benchmarks/bench_delta.py --rates 0 1e-3 --seeds 0 1 --epochs 10

Trains the same frame-wise CNN (``experiment=moving_digits``: ReLUs, ordinary layers) and its delta version
(``experiment=moving_digits_delta``: delta activations, accumulating DeltaConv2d / DeltaLinear) with
``plugins.delta_sparsity.rate`` set to each rate; same data, epochs, optimizer and seed. Each run is
``python train.py`` in a subprocess (``--jobs`` at a time, one thread each); the checkpoint with the best validation
accuracy is then evaluated on the test videos (eval mode):

* dense: the fraction of non-zero ReLU outputs of each hidden stage;
* delta: per delta layer the fraction of non-zero deltas (the first frame's delta is the frame itself, and is
  counted) and of non-zero quantised activations, and the MACs that DeltaConv2d / DeltaLinear skipped because an
  input delta was zero.

"reduction" = non-zero activations of the dense network / non-zero deltas of the delta network (all hidden stages,
same shapes): the issue asks for >= 3x at <= 2 points of test accuracy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_OUT, describe, pick_device, write_results  # noqa: E402

from kernelnn.data import make_moving_digits  # noqa: E402
from kernelnn.layers import DeltaConv2d, DeltaLinear, delta_layers  # noqa: E402
from kernelnn.training import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def train(name: str, experiment: str, rate: float | None, seed: int, epochs: int, folder: Path,
          device: torch.device) -> Path:
    out = folder / name
    overrides = [f"experiment={experiment}", f"seed={seed}", f"trainer.epochs={epochs}", "trainer.progress_bar=false",
                 "trainer.tensorboard=false", f"trainer.device={device}", f"hydra.run.dir={out}"]
    if rate is not None:
        overrides.append(f"plugins.delta_sparsity.rate={rate}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = (folder / f"{name}.log").open("w")
    subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides], check=True, cwd=ROOT, env=env,
                   stdout=log, stderr=subprocess.STDOUT)
    return out / "checkpoints" / "best.pt"


class NonZeroCounter:
    """Forward hook: non-zero and total output elements."""

    def __init__(self) -> None:
        self.nonzero = self.total = 0

    def __call__(self, module, inputs, output) -> None:
        self.nonzero += torch.count_nonzero(output).item()
        self.total += output.numel()


@torch.no_grad()
def evaluate(checkpoint: Path, test: torch.utils.data.TensorDataset, device: torch.device) -> dict:
    """Test accuracy and sparsity counts of a trained FrameCNN."""
    model = load_model(checkpoint).to(device)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU) and not _inside_delta(model, m)]
    counters = [NonZeroCounter() for _ in relus]
    hooks = [m.register_forward_hook(c) for m, c in zip(relus, counters, strict=True)]
    deltas = delta_layers(model)
    companions = {n: m for n, m in model.named_modules() if isinstance(m, DeltaConv2d | DeltaLinear)}
    for m in [*deltas.values(), *companions.values()]:
        m.reset_statistics()
    x, y = (t.to(device) for t in test.tensors)
    correct = 0
    for start in range(0, len(x), 100):
        correct += (model(x[start:start + 100]).argmax(1) == y[start:start + 100]).sum().item()
    for h in hooks:
        h.remove()
    result = {"accuracy": correct / len(x)}
    if relus:
        result["activations"] = [(c.nonzero, c.total) for c in counters]
    if deltas:
        stats = [m.statistics() for m in deltas.values()]
        result["deltas"] = [(s["delta_density"] * s["elements"], s["elements"]) for s in stats]
        result["quantized"] = [(s["activation_density"] * s["elements"], s["elements"]) for s in stats]
        result["macs"] = {n: m.mac_statistics() for n, m in companions.items()}
        result["thresholds"] = [m.threshold().mean().item() for m in deltas.values()]
    return result


def _inside_delta(model: nn.Module, module: nn.Module) -> bool:
    return any(module is m.activation for m in delta_layers(model).values())


def fraction(pairs: list[tuple[float, int]]) -> float:
    return sum(p[0] for p in pairs) / sum(p[1] for p in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.0, 1e-3, 3e-3, 1e-2, 3e-2],
                        help="delta sparsity penalty rates (plugins.delta_sparsity.rate), one delta model each")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of every model; results averaged")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of every model")
    parser.add_argument("--jobs", type=int, default=2, help="trainings at a time (one CPU thread each)")
    parser.add_argument("--device", default="auto",
                        help="device of the trainings (trainer.device) and of the evaluation: auto, cpu, cuda")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder of the table")
    args = describe(parser).parse_args()
    device = pick_device(args.device)

    folder = Path(tempfile.mkdtemp(prefix="bench-delta-"))
    runs = [("dense", "moving_digits", None, s) for s in args.seeds]
    runs += [(f"delta_{r:g}", "moving_digits_delta", r, s) for r in args.rates for s in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {(name, seed): pool.submit(train, f"{name}_s{seed}", exp, rate, seed, args.epochs, folder, device)
                   for name, exp, rate, seed in runs}
    test = make_moving_digits().tests["test"]
    results = {key: evaluate(f.result(), test, device) for key, f in futures.items()}

    dense = [results[("dense", s)] for s in args.seeds]
    dense_acc = statistics.mean(r["accuracy"] for r in dense)
    dense_density = fraction([p for r in dense for p in r["activations"]])
    rows = [{"model": "dense (ReLU)", "rate": "-", "test accuracy": dense_acc,
             "non-zero activations": dense_density,
             "per layer": " / ".join(f"{fraction([r['activations'][i] for r in dense]):.3f}"
                                     for i in range(len(dense[0]["activations"]))),
             "non-zero deltas": "-", "reduction": "-", "MACs skipped": "-"}]
    for name, _, rate, _ in runs[len(args.seeds)::len(args.seeds)]:
        group = [results[(name, s)] for s in args.seeds]
        delta_density = fraction([p for r in group for p in r["deltas"]])
        macs = [m for r in group for m in r["macs"].values()]
        skipped = sum(m["macs_skipped"] for m in macs) / sum(m["macs_dense"] for m in macs)
        rows.append({
            "model": "delta", "rate": f"{rate:g}", "test accuracy": statistics.mean(r["accuracy"] for r in group),
            "non-zero activations": fraction([p for r in group for p in r["quantized"]]),
            "per layer": " / ".join(f"{fraction([r['deltas'][i] for r in group]):.3f}"
                                    for i in range(len(group[0]["deltas"]))),
            "non-zero deltas": delta_density, "reduction": f"{dense_density / delta_density:.2f}x",
            "MACs skipped": skipped,
            "thresholds": " / ".join(f"{statistics.mean(r['thresholds'][i] for r in group):.3f}"
                                     for i in range(len(group[0]["thresholds"])))})
        print(rows[-1], flush=True)
    columns = ["model", "rate", "test accuracy", "non-zero activations", "non-zero deltas", "per layer",
               "reduction", "MACs skipped", "thresholds"]
    notes = [f"`python benchmarks/bench_delta.py --rates {' '.join(f'{r:g}' for r in args.rates)} --seeds "
             f"{' '.join(map(str, args.seeds))} --epochs {args.epochs} --device {args.device}`; means over seeds; "
             f"test set of {len(test)} videos",
             "non-zero activations: dense = ReLU outputs, delta = quantised activations q(a); per layer: ReLU "
             "outputs (dense) or deltas (delta) of each hidden stage",
             "reduction = dense non-zero activations / delta non-zero deltas (same layers and shapes)",
             "MACs skipped: by DeltaConv2d and DeltaLinear, because an input delta was zero; thresholds: mean step "
             "per delta layer after training (initial 0.1)"]
    text = write_results(rows, columns, "Delta activations on moving digits", Path(args.out) / f"delta_{device.type}",
                         notes)
    print(text)


if __name__ == "__main__":
    main()
