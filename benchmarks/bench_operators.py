"""Neural operators side by side on the same data, trained by the same loop: parameters, time per epoch, test
error at the training resolution and zero-shot at twice it.

    python benchmarks/bench_operators.py                      # Darcy, Burgers and Navier-Stokes, CPU, ~45 minutes
    python benchmarks/bench_operators.py --data darcy --models fno deeponet

Every model trains with its dataset's FNO recipe (``experiment=<data>_fno``: epochs, batch, optimizer, schedule,
loss); only the model changes (TFNO and MgNO also have tuned recipes of their own, in benchmarks/RESULTS.md). TFNO
keeps the FNO's modes and width at Tucker rank 0.1; MgNO is its config's (width 24, 5 levels; circular padding on
the periodic data). The widths of DeepONet and T1 are chosen so that their parameter counts match the FNO's on that
dataset (within a few percent). The U-Nets (``uno``: the operator U-Net, ``unet``: its pixel baseline) are width
32 and 3 levels. The zero-shot column evaluates the model trained at the base resolution on the same test functions
sampled twice as finely (DeepONet reads its sensors off the finer grid; POD-DeepONet interpolates its modes; T1
rescales its coefficients to the training grid). For it, Navier-Stokes is solved at 128 x 128 and subsampled to 64
x 64 for training (``data.test_resolutions=[64,128]``), as Darcy and Burgers are solved at their finest test grid.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_OUT, describe, write_results  # noqa: E402

RECIPES = {  # each dataset's FNO recipe (configs/experiment/<data>_fno.yaml) without its model, and its FNO
    "darcy": (["data=darcy", "scheduler=cosine", "trainer.epochs=20", "trainer.batch_size=20", "trainer.loss=l2"],
              ["model.n_modes=12", "model.hidden_channels=32"]),
    "burgers": (["data=burgers", "trainer.epochs=30", "trainer.batch_size=20"],
                ["model.n_modes=16", "model.hidden_channels=64", "model.positional_embedding=true"]),
    "navier_stokes": (["data=navier_stokes", "data.test_resolutions=[64,128]", "trainer.epochs=30",
                       "trainer.batch_size=10"],
                      ["model.n_modes=12", "model.hidden_channels=32"]),
}
MODELS = {  # name -> model overrides ("{width}" is matched to the FNO's parameter count; "{t1}": t1 or t1_fft)
    "fno": ["model=fno", "{fno}"],
    "tfno": ["model=tfno", "{fno}", "model.rank=0.1"],
    "mgno": ["model=mgno", "{mgno}"],
    "deeponet": ["model=deeponet", "model.width={width}"],
    "pod_deeponet": ["model=pod_deeponet", "model.width=64", "model.branch_depth=3"],
    "t1": ["model={t1}", "model.n_modes={modes}", "model.hidden_channels={width}"],
    "uno": ["model=uno"],
    "unet": ["model=unet"],
}
PERIODIC = {"burgers", "navier_stokes"}
# the DCT for Darcy's non-periodic domain, the FFT on the torus
T1 = {"darcy": ("t1", 12), "burgers": ("t1_fft", 16), "navier_stokes": ("t1_fft", 12)}
TEST = {"darcy": ("test_32/l2", "test_64/l2"), "burgers": ("test_256/l2", "test_512/l2"),
        "navier_stokes": ("test_64/l2", "test_128/l2")}


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


def merged_with_earlier(rows: list[dict], path: Path) -> list[dict]:
    """This run's rows, and the earlier results file's rows of the (data, model) pairs this run did not train, in
    the table's order: re-running some models keeps the others' measured rows."""
    import json

    def key(row: dict) -> tuple[str, str]:
        return row["data"], row["model"].split(" (")[0]

    earlier = json.loads(path.read_text())["rows"] if path.exists() else []
    fresh = {key(r) for r in rows}
    order = {k: i for i, k in enumerate((d, m) for d in RECIPES for m in MODELS)}
    return sorted([*rows, *(r for r in earlier if key(r) not in fresh)], key=lambda r: order.get(key(r), len(order)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=list(RECIPES), choices=list(RECIPES),
                        help="data sets (recipes) to train on")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS),
                        help="operator models to train")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = describe(parser).parse_args()

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
            mgno = ["model.padding_mode=circular"] if data in PERIODIC else []
            model = []
            for m in MODELS[name]:
                model.extend(fno if m == "{fno}" else mgno if m == "{mgno}" else
                             [m.replace("{t1}", kind).replace("{modes}", str(modes))])
            width = matched_width(base, model, target) if any("{width}" in m for m in model) else None
            overrides = base + [m.format(width=width) for m in model]
            with tempfile.TemporaryDirectory() as out:
                summary = run(compose(overrides), output_dir=out)
            base_key, fine_key = TEST[data]
            row = {"data": data, "model": name + (f" (width {width})" if width else ""),
                   "parameters": summary["n_parameters"],
                   "s/epoch": summary["seconds_per_epoch"], "test": summary["test"][base_key],
                   "zero-shot 2x": summary["test"][fine_key] if fine_key else "—"}
            rows.append(row)
            print(row, flush=True)
    stem = Path(args.out) / f"operators_{args.device}"
    rows = merged_with_earlier(rows, stem.with_suffix(".json"))
    text = write_results(
        rows, ["data", "model", "parameters", "s/epoch", "test", "zero-shot 2x"],
        "Neural operators on the same data and training recipe", stem,
        [f"`python benchmarks/bench_operators.py --device {args.device}`; each dataset's `experiment=<data>_fno` "
         "recipe for every model (Darcy 32x32: 1,000 training samples, 20 epochs; Burgers 256: 1,000, 30 epochs; "
         "Navier-Stokes 64x64, 5 frames in and the next 5 out: 200, 30 epochs; solved at 128x128)",
         "test / zero-shot 2x: relative L2 error on the test functions at the training resolution / at twice it",
         "DeepONet's and T1's widths are matched to the FNO's parameter count; POD-DeepONet keeps 64 modes; T1 keeps "
         "the FNO's modes (DCT on Darcy, FFT on the torus); TFNO: the FNO at Tucker rank 0.1; MgNO: its config; "
         "uno / unet: the operator U-Net and the pixel U-Net, width 32, 3 levels"])
    print(text)


if __name__ == "__main__":
    main()
