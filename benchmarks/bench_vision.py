"""KAN layers and Kolmogorov-Arnold attention on images, side by side at matched parameter counts (issue #18).

    python benchmarks/bench_vision.py                          # digits and the MNIST subset, 3 seeds
    python benchmarks/bench_vision.py --datasets digits --seeds 0 --epochs 5

Every model is trained with All-KAN's recipe (AdamW lr 1e-3, weight decay 1e-4, batch 64, learning rate x 0.8
each epoch, pixels scaled to [-1, 1]) for ``--epochs`` epochs; the test accuracy after the last epoch is reported
as mean +- std over the seeds, with the seconds per epoch and the parameters. Flat models see the flattened image
and have one hidden layer, whose width is chosen so their parameters come closest to the budget: AF-KAN's with 64
hidden units (its paper's setting: ``in-64-10``, grid 3, order 3). B-spline KAN, ReLU-KAN and AF-KAN use grid 3 and
order 3; TruKAN order 3 with 2 learned knots (the same 6-dimensional cubic-spline space) and LayerNorm before each
layer. The ViTs train 3x as many epochs with weight decay 0.05 and a cosine learning rate (DeiT-like; All-KAN's
schedule leaves a transformer far from converged). The two ViTs have the same shape (patches of 2 px on digits,
7 px on MNIST: 16 patches + a class token; 3 blocks, 2 heads, width chosen to the budget); Fourier-KArAt
(blockwise, G = 3, r = 12) adds its operators' parameters, so a wider softmax ViT with Fourier-KArAt's count is
trained too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_OUT, describe, write_results  # noqa: E402

from kernelnn.data import load_digits, load_mnist  # noqa: E402
from kernelnn.models import KAN, MLP, ViT  # noqa: E402

DATASETS = {"digits": (load_digits, 2), "mnist": (load_mnist, 7)}
VIT_EPOCHS = 3  # transformers trained from scratch need longer than All-KAN's 25 epochs with lr x 0.8 per epoch


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flat_models(n_in: int, n_out: int) -> dict:
    """name -> width -> model (one hidden layer of that width)."""
    kan = {"grid_size": 3, "spline_order": 3}
    bumps = {"grid_size": 3, "order": 3}
    return {
        "MLP (ReLU)": lambda h: MLP(n_in, n_out, hidden=[h]),
        "KAN (B-spline)": lambda h: KAN([n_in, h, n_out], layer_options=kan),
        "TruKAN shared knots": lambda h: KAN([n_in, h, n_out], layer="trukan", layer_norm=True,
                                             layer_options={"order": 3, "n_knots": 2, "learn_knots": True}),
        "TruKAN individual knots": lambda h: KAN([n_in, h, n_out], layer="trukan", layer_norm=True,
                                                 layer_options={"order": 3, "n_knots": 2, "knots": "individual",
                                                                "learn_knots": True}),
        "ReLU-KAN": lambda h: KAN([n_in, h, n_out], layer="relu_kan", layer_options=bumps),
        "AF-KAN": lambda h: KAN([n_in, h, n_out], layer="af_kan", layer_options=bumps),
    }


def matched(build, budget: int, limit: int = 1024) -> int:
    """The width whose model has the parameter count closest to ``budget`` (counts grow with the width)."""
    best, best_gap = 1, float("inf")
    for width in range(1, limit + 1):
        gap = count(build(width)) - budget
        if abs(gap) < best_gap:
            best, best_gap = width, abs(gap)
        if gap > 0:
            break
    return best


def vit(channels: int, n_out: int, resolution, patch: int, width: int, attention: str) -> ViT:
    return ViT(channels, n_out, resolution, patch_size=patch, width=width, depth=3, heads=2, attention=attention)


def train(model: nn.Module, data, flat: bool, epochs: int, seed: int) -> tuple[float, float]:
    """(test accuracy after the last epoch, seconds per epoch). Flat models: All-KAN's recipe; ViTs: a DeiT-like
    one (weight decay 0.05, cosine learning rate, ``VIT_EPOCHS`` times the epochs)."""
    x, y = data.train.tensors
    x_test, y_test = data.tests["test"].tensors
    prepare = (lambda t: (2 * t - 1).flatten(1)) if flat else (lambda t: 2 * t - 1)
    x, x_test = prepare(x), prepare(x_test)
    generator = torch.Generator().manual_seed(seed)
    if flat:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.8)
    else:
        epochs *= VIT_EPOCHS
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(x), generator=generator).split(64):
            if len(batch) < 2:  # BatchNorm-style layers cannot train on one sample
                continue
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
        schedule.step()
    seconds = (time.perf_counter() - start) / epochs
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return accuracy, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS), help="image data sets")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--models", nargs="+", default=None, help="only these rows (names as in the table)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT / "vision_cpu",
                        help="stem of the result files (.md and .json)")
    args = describe(parser).parse_args()
    torch.set_num_threads(2)
    rows = []
    for name in args.datasets:
        loader, patch = DATASETS[name]
        data = loader()
        channels, *resolution = data.train.tensors[0].shape[1:]
        n_in, n_out = channels * resolution[0] * resolution[1], data.out_channels
        flat = flat_models(n_in, n_out)
        budget = count(flat["AF-KAN"](64))
        builds = {}  # name -> (model factory, flat input?, shape)
        for model, build in flat.items():
            width = 64 if model == "AF-KAN" else matched(build, budget)
            builds[model] = (partial(build, width), True, f"{n_in}-{width}-{n_out}")
        vit_of = partial(vit, channels, n_out, resolution, patch)
        dim = 2 * matched(lambda half, v=vit_of: v(2 * half, "softmax"), budget, 128)
        for attention, label in (("softmax", "ViT softmax attention"), ("fourier_karat", "ViT Fourier-KArAt G3B")):
            builds[label] = (partial(vit_of, dim, attention), False, f"ViT width {dim}, 3 blocks, 2 heads")
        # Fourier-KArAt's operators add parameters; a wider softmax ViT spends the same count
        karat = count(vit_of(dim, "fourier_karat"))
        wide = 2 * matched(lambda half, v=vit_of: v(2 * half, "softmax"), karat, 128)
        builds["ViT softmax, KArAt's parameters"] = (partial(vit_of, wide, "softmax"), False,
                                                      f"ViT width {wide}, 3 blocks, 2 heads")
        builds = {k: v for k, v in builds.items() if not args.models or k in args.models}
        for model_name, (build, is_flat, shape) in builds.items():
            accuracies, seconds = [], []
            for seed in args.seeds:
                torch.manual_seed(seed)
                model = build()
                accuracy, per_epoch = train(model, data, is_flat, args.epochs, seed)
                accuracies.append(accuracy)
                seconds.append(per_epoch)
            spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
            rows.append({"data": name, "model": model_name, "shape": shape, "params": count(model),
                         "test accuracy %": f"{100 * statistics.mean(accuracies):.2f} +- {100 * spread:.2f}",
                         "s / epoch": statistics.mean(seconds)})
            print(rows[-1], flush=True)
    only = f" --models {' '.join(repr(m) for m in args.models)}" if args.models else ""
    notes = [f"Command: python benchmarks/bench_vision.py --datasets {' '.join(args.datasets)} --seeds "
             f"{' '.join(map(str, args.seeds))} --epochs {args.epochs}{only}",
             "digits: 1,258 train / 359 test 8x8 images; mnist: the 5,000-image subset, 3,500 train / 1,000 test.",
             "Parameter budget per dataset: AF-KAN in-64-10; the other flat models' hidden width is matched to it."]
    print(write_results(rows, list(rows[0]), "Vision: KAN layers and Kolmogorov-Arnold attention at matched "
                        "parameters", args.out, notes))


if __name__ == "__main__":
    main()
