"""DeepONet on the paper's first experiment: test error of the antiderivative operator against training-set size.

    python benchmarks/bench_deeponet.py                       # CPU, about 6 minutes on 2 cores
    python benchmarks/bench_deeponet.py --sizes 50 200 1000   # other sizes

Lu et al. (2021) report that DeepONet's test error falls polynomially, and in some cases exponentially, with the
number of training functions. Each size here trains ``experiment=antiderivative_deeponet`` (branch [100, 40, 40],
trunk [1, 40, 40], ReLU, Adam 1e-3) for the same number of optimizer steps on a cosine schedule, so only the data
changes (no validation set: the weights of the lowest training loss are tested, and that loss is reported); the
test set is the same 1,000 functions at the 100 sensors and at twice the resolution. The table gives the relative L2
error and the slope of log(error) against log(n) between neighbouring sizes.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_OUT, describe, write_results  # noqa: E402


def train(n_train: int, steps: int, batch: int, device: str, seed: int) -> dict:
    from hydra import compose, initialize_config_dir

    from kernelnn.training import run
    from kernelnn.training.launch import register_resolvers

    register_resolvers()
    batch = min(batch, n_train)
    epochs = math.ceil(steps / math.ceil(n_train / batch))
    overrides = ["experiment=antiderivative_deeponet", f"data.n_train={n_train}", f"trainer.batch_size={batch}",
                 f"trainer.epochs={epochs}", f"trainer.test_every={epochs}", f"trainer.device={device}",
                 "data.n_val=0", "scheduler=cosine", "trainer.monitor=train/loss",
                 f"seed={seed}", "trainer.progress_bar=false", "trainer.tensorboard=false", "trainer.plots=false"]
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "configs")):
        cfg = compose("train", overrides=overrides)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = run(cfg, output_dir=out)
        seconds = time.perf_counter() - start
    return {"n_train": n_train, "epochs": epochs, "steps": epochs * math.ceil(n_train / batch),
            "train": summary["best"], "test_100": summary["test"]["test_100/l2"],
            "test_200": summary["test"]["test_200/l2"], "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 500, 1000, 2000, 4000],
                        help="training-set sizes (antiderivative functions)")
    parser.add_argument("--steps", type=int, default=6000, help="optimizer steps per training")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = describe(parser).parse_args()
    rows = []
    for n in args.sizes:
        row = train(n, args.steps, args.batch, args.device, args.seed)
        if rows:
            prev = rows[-1]
            row["slope"] = math.log(row["test_100"] / prev["test_100"]) / math.log(n / prev["n_train"])
        rows.append(row)
        print(row, flush=True)
    text = write_results(
        rows, ["n_train", "steps", "train", "test_100", "test_200", "slope", "seconds"],
        "DeepONet: antiderivative test error against training-set size",
        Path(args.out) / f"deeponet_convergence_{args.device}_{args.steps}steps",
        [f"`python benchmarks/bench_deeponet.py --device {args.device}`: experiment=antiderivative_deeponet, "
         f"{args.steps} optimizer steps of batch {args.batch} (or n) per size, cosine schedule, no validation "
         f"set (the weights of the lowest training loss are tested), seed {args.seed}",
         "train: the lowest training loss (relative L2 over the training functions, one epoch's mean); test_100 / "
         "test_200: relative L2 error on 1,000 test functions at the 100 sensors / at 200 points (the same trained "
         "model); slope: d log(test_100) / d log(n) from the previous size"])
    print(text)


if __name__ == "__main__":
    main()
