"""Neural operators side by side on the same data, trained by the same loop: parameters, time per epoch, test
error at the training resolution and zero-shot at twice it.

    python benchmarks/bench_operators.py                                  # Darcy and Burgers, CPU, ~15 minutes
    python benchmarks/bench_operators.py --data darcy --models fno deeponet

Every model trains with its dataset's FNO recipe (``experiment=<data>_fno``: epochs, batch, optimizer, schedule,
loss); only the model changes. TFNO and MgNO, which have recipes of their own, are in benchmarks/RESULTS.md. The
widths of DeepONet and T1 are chosen so that their parameter counts match the FNO's on that dataset (within a few
percent). The zero-shot column evaluates the model trained at the base resolution on the same test functions
sampled twice as finely (DeepONet reads its sensors off the finer grid; POD-DeepONet interpolates its modes; T1
rescales its coefficients to the training grid).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

RECIPES = {  # each dataset's FNO recipe (configs/experiment/<data>_fno.yaml) without its model, and its FNO
    "darcy": (["data=darcy", "scheduler=cosine", "trainer.epochs=20", "trainer.batch_size=20", "trainer.loss=l2"],
              ["model.n_modes=12", "model.hidden_channels=32"]),
    "burgers": (["data=burgers", "trainer.epochs=30", "trainer.batch_size=20"],
                ["model.n_modes=16", "model.hidden_channels=64", "model.positional_embedding=true"]),
}
MODELS = {  # name -> model overrides ("{width}" is matched to the FNO's parameter count; "{t1}": t1 or t1_fft)
    "fno": ["model=fno", "{fno}"],
    "deeponet": ["model=deeponet", "model.width={width}"],
    "pod_deeponet": ["model=pod_deeponet", "model.width=64", "model.branch_depth=3"],
    "t1": ["model={t1}", "model.n_modes={modes}", "model.hidden_channels={width}"],
}
T1 = {"darcy": ("t1", 12), "burgers": ("t1_fft", 16)}  # the DCT for Darcy's non-periodic domain, the FFT on the torus
TEST = {"darcy": ("test_32/l2", "test_64/l2"), "burgers": ("test_256/l2", "test_512/l2")}


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from kernelnn.training.launch import register_resolvers

    register_resolvers()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "configs")):
        return hydra_compose("train", overrides=overrides)


def parameters(overrides: list[str]) -> int:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from kernelnn.training.assemble import build_model, model_config

    cfg = compose(overrides)
    bundle = instantiate(cfg.data)
    container = OmegaConf.to_container(cfg, resolve=True)
    model = build_model(model_config(container, bundle))
    return sum(p.numel() for p in model.parameters())


def matched_width(base: list[str], model: list[str], target: int) -> int:
    """The smallest width whose parameter count reaches ``target`` (counts grow with the width)."""
    low, high = 1, 2048
    while low < high:
        mid = (low + high) // 2
        if parameters(base + [m.format(width=mid) for m in model]) < target:
            low = mid + 1
        else:
            high = mid
    return low


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["darcy", "burgers"], choices=sorted(RECIPES))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    args = parser.parse_args()

    from kernelnn.training import run

    rows = []
    for data in args.data:
        recipe, fno = RECIPES[data]
        base = [*recipe, f"trainer.device={args.device}", "trainer.progress_bar=false", "trainer.tensorboard=false",
                "trainer.plots=false"]
        if args.epochs:
            base.append(f"trainer.epochs={args.epochs}")
        target = parameters(base + ["model=fno", *fno])
        for name in args.models:
            kind, modes = T1[data]
            model = []
            for m in MODELS[name]:
                model.extend(fno if m == "{fno}" else [m.replace("{t1}", kind).replace("{modes}", str(modes))])
            width = matched_width(base, model, target) if any("{width}" in m for m in model) else None
            overrides = base + [m.format(width=width) for m in model]
            with tempfile.TemporaryDirectory() as out:
                summary = run(compose(overrides), output_dir=out)
            base_key, fine_key = TEST[data]
            row = {"data": data, "model": name + (f" (width {width})" if width else ""),
                   "parameters": summary["n_parameters"],
                   "s/epoch": summary["seconds_per_epoch"], "test": summary["test"][base_key],
                   "zero-shot 2x": summary["test"][fine_key]}
            rows.append(row)
            print(row, flush=True)
    stem = ROOT / "benchmarks" / "results" / f"operators_{args.device}"
    text = write_results(
        rows, ["data", "model", "parameters", "s/epoch", "test", "zero-shot 2x"],
        "Neural operators on the same data and training recipe", stem,
        [f"`python benchmarks/bench_operators.py --device {args.device}`; each dataset's `experiment=<data>_fno` "
         "recipe for every model (Darcy 32x32: 1,000 training samples, 20 epochs; Burgers 256: 1,000, 30 epochs)",
         "test / zero-shot 2x: relative L2 error on the test functions at the training resolution / at twice it",
         "DeepONet's and T1's widths are matched to the FNO's parameter count; POD-DeepONet keeps 64 modes; T1 keeps "
         "the FNO's modes (DCT on Darcy, FFT on Burgers)"])
    print(text)


if __name__ == "__main__":
    main()
