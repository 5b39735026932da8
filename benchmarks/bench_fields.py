"""Neural fields side by side (issue #17): image fitting, signed distance fields and location encoding, each model
trained by the one loop under the same budget, plus the speed and memory of the field layers.

    python benchmarks/bench_fields.py --part image     # china.jpg, 5 models x 60 s of CPU training (~7 min)
    python benchmarks/bench_fields.py --part sdf       # the blended shape, 3 models x 60 s (~5 min)
    python benchmarks/bench_fields.py --part sphere    # {SH, DFS, lon/lat} x {SIREN, MLP, linear}, 2 tasks (~20 min)
    python benchmarks/bench_fields.py --part speed     # SH encoding at L = 20, RBF memory at 10^6 points (~2 min)

Images and SDFs: every model gets the same wall-clock budget (``trainer.time_limit``, training only) and at most
``--params`` trainable parameters (default: the size of the authors' Gaussian RBFNet image model, which runs as
configured; every other model gets the largest width that fits; NeuRBF's kernel positions and shapes are fixed
after their k-means placement, as the authors', and not counted). Each model's learning rate decays along a cosine
to 1/100 over the epochs that fit in the budget on this machine, counted by a short timed run of the same model
first (a schedule needs its length in advance; the budget stays the hard limit). The recipes are
``configs/experiment/{image,sdf}_*.yaml``. Location encoding: the authors' tuned SIREN sizes for SH and DFS, the
same network for every encoding of a row, early stopping on the validation loss; accuracy on the uniform test set
and on the polar caps (``test_polar``, beyond 60 degrees).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_operators import compose, parameters  # noqa: E402
from common import DEFAULT_OUT, cpu_peak_growth, describe, run_child, write_results  # noqa: E402

IMAGE = {  # name -> (experiment, the override its size is matched through, with {width}; None: as configured)
    "NeuRBF": ("image_neurbf", "model.n_kernels={width}"),
    "Gaussian RBFNet": ("image_rbf", None),  # the authors' image model: the parameter budget
    "SIREN": ("image_siren", "model.hidden_features={width}"),
    "Fourier-feature MLP": ("image_fourier_mlp", "model.hidden_features={width}"),
    "ReLU MLP": ("image_mlp", "model.hidden_features={width}"),
}
SDF = {
    "NeuRBF": ("sdf_neurbf", "model.n_kernels={width}"),
    "Gaussian RBFNet": ("sdf_rbf", None),
    "SIREN": ("sdf_siren", "model.hidden_features={width}"),
}
# The recipe's encoding_options are replaced, not merged (Hydra merges a dict into a dict): deleted, then added.
ENCODINGS = {
    "spherical harmonics": ["model.encoding=spherical_harmonics", "~model.encoding_options",
                            "+model.encoding_options={L:9}"],
    "double Fourier sphere (sphereC+)": ["model.encoding=double_fourier_sphere", "~model.encoding_options",
                                         "+model.encoding_options={n_scales:16,min_period:10.0,max_period:360.0,"
                                         "variant:spherec+}"],
    "lon/lat (radians)": ["model.encoding=lonlat", "~model.encoding_options", "+model.encoding_options={}"],
}
NETWORKS = {"SIREN": ["model.network=siren", "model.hidden_features=64", "model.n_layers=2",
                      "model.hidden_omega_0=1.0"],
            "MLP": ["model.network=mlp", "model.hidden_features=64", "model.n_layers=2"],
            "linear": ["model.network=linear"]}
SCHEDULE = ("each model's recipe, its learning rate along a cosine to 1/100 over the epochs a timed calibration run "
            "says fit in the budget (epochs: run of scheduled)")
QUIET = ["trainer.progress_bar=false", "trainer.tensorboard=false"]


def fit(overrides: list[str]) -> dict:
    from kernelnn.training import run
    from kernelnn.training.checkpoint import load_checkpoint

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = run(compose(overrides), output_dir=out)
        summary["wall_seconds"] = time.perf_counter() - start
        summary["history"] = load_checkpoint(summary["last_checkpoint"])["history"]
    return summary


def widest_below(base: list[str], sized: str, target: int) -> int:
    """The largest width whose trainable parameter count stays at or below ``target`` (counts grow with it):
    doubling until a width passes it, then bisection, so no model much larger than ``target`` is ever built."""
    def fits(width: int) -> bool:
        return parameters([*base, sized.format(width=width)]) <= target

    low, high = 8, 16  # NeuRBF needs at least its 4 or 8 neighbours' worth of kernels
    while fits(high):
        low, high = high, 2 * high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def epochs_within(overrides: list[str], budget: float, calibration_epochs: int = 3) -> int:
    """How many epochs of this model fit in ``budget`` seconds of training here: the slowest training epoch of a
    run of ``calibration_epochs`` after the first (which pays for warm-up), plus 5% for noise."""
    summary = fit([*overrides, f"trainer.epochs={calibration_epochs}", "trainer.time_limit=null",
                   "trainer.test_every=1000000"])
    seconds = max(row["time/train_s"] for row in summary["history"][1:])
    return max(1, int(budget / (1.05 * seconds)))


def fields_part(models: dict, budget: float, target: int, device: str, part: str) -> list[dict]:
    rows = []
    for name, (experiment, sized) in models.items():
        base = [f"experiment={experiment}", f"trainer.device={device}", *QUIET, "trainer.plots=false"]
        overrides = base if sized is None else [*base, sized.format(width=widest_below(base, sized, target))]
        epochs = epochs_within(overrides, budget)
        summary = fit([*overrides, "scheduler=cosine", "scheduler.min_lr_ratio=0.01", f"trainer.epochs={epochs}",
                       f"trainer.time_limit={budget}"])
        report = summary["plugins"].get("field_report", {})
        row = {"model": name, "parameters": summary["n_parameters"], "steps": None,
               "epochs": f"{summary['epochs']} of {epochs}", "train s": summary["train_seconds"]}
        if part == "image":
            row.update({"PSNR (dB)": report.get("psnr"), "SSIM": report.get("ssim")})
        else:
            row.update({"test MAE": summary["test"]["test/mae"], "IoU": report.get("iou"),
                        "Chamfer": report.get("chamfer")})
        row.pop("steps")
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


SPHERE_TASKS = {"land_ocean": "land_ocean_sh_siren", "sphere_checkerboard": "checkerboard_sh_siren"}
ACCURACIES = ("test accuracy", "polar accuracy (|lat| > 60)", "accuracy [70, 90]")


def measured_rows(path: str | None) -> dict[tuple, dict]:
    """Rows an earlier run of ``--part sphere`` printed (its JSON lines, in a log or a file), by (data, network,
    encoding): kept, not run again, when a long run was cut short. Lines that are not JSON objects are skipped (a
    log's other output); an object that names a row of this table but is not one as this script prints it stops
    the run, so nothing unmeasured reaches the table."""
    if path is None:
        return {}
    rows = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict) or not {"data", "network", "encoding"} <= row.keys():
            continue
        key = (row["data"], row["network"], row["encoding"])
        problems = []
        if not (all(isinstance(k, str) for k in key) and key[0] in SPHERE_TASKS and key[1] in NETWORKS
                and key[2] in ENCODINGS):
            problems.append(f"(data, network, encoding) = {key} is not a row of this table")
        for name in ("parameters", "epochs"):
            if not (type(row.get(name)) is int and row[name] > 0):
                problems.append(f"{name}={row.get(name)!r} is not a positive int")
        for name in ACCURACIES:
            value = row.get(name)
            if not (isinstance(value, float | int) and not isinstance(value, bool) and 0 <= value <= 1):
                problems.append(f"{name!r}={value!r} is not an accuracy in [0, 1]")
        if problems:
            sys.exit(f"--reuse {path}, line {number}: {'; '.join(problems)}")
        rows[key] = {**row, "source": "reused"}
    return rows


def sphere_part(device: str, reuse: str | None = None) -> list[dict]:
    rows, done = [], measured_rows(reuse)
    for data, recipe in SPHERE_TASKS.items():
        for network, net in NETWORKS.items():
            for encoding, enc in ENCODINGS.items():
                if (data, network, encoding) in done:
                    rows.append(done[data, network, encoding])
                    continue
                overrides = [f"experiment={recipe}", f"trainer.device={device}", *QUIET, "trainer.plots=false",
                             *net, *enc]
                summary = fit(overrides)
                report = summary["plugins"].get("field_report", {})
                polar_bands = report.get("test/accuracy_by_latitude", {})
                row = {"data": data, "network": network, "encoding": encoding,
                       "parameters": summary["n_parameters"], "epochs": summary["epochs"],
                       "test accuracy": summary["test"]["test/accuracy"],
                       "polar accuracy (|lat| > 60)": summary["test"]["test_polar/accuracy"],
                       "accuracy [70, 90]": polar_bands.get("[70, 90]"), "source": "this run"}
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


# ------------------------------------------------------------------------------------------------ speed / memory
def speed_child(case: str) -> dict:
    from kernelnn.layers import AdaptiveRBF, RBFField

    torch.manual_seed(0)
    n = 10**6
    x = torch.rand(n, 2) * 2 - 1
    if case == "rbf_field":
        model = RBFField(2, 3, n_kernels=10**4, chunk_size=2**14)
    else:
        model = AdaptiveRBF(2, 3, n_kernels=10**4, chunk_size=2**16)
    start = time.perf_counter()
    growth = cpu_peak_growth(lambda: model(x), lambda: model(x[:1000]))
    return {"case": case, "peak_growth_bytes": growth, "seconds": time.perf_counter() - start}


def speed_part() -> list[dict]:
    from kernelnn.layers import SphericalHarmonicsEncoding

    rows = []
    points = torch.stack([torch.rand(10**6) * 360 - 180, torch.rad2deg(torch.asin(torch.rand(10**6) * 2 - 1))], -1)
    encoding = SphericalHarmonicsEncoding(20)
    encoding(points[:1000])
    times = []
    for _ in range(5):
        start = time.perf_counter()
        encoding(points)
        times.append(time.perf_counter() - start)
    rows.append({"measurement": "SphericalHarmonicsEncoding(20), 10^6 points, forward (median of 5)",
                 "value": f"{sorted(times)[2]:.3f} s", "target": "< 1 s"})
    for case, dims in (("rbf_field", 18), ("neurbf", 2)):
        result = run_child([__file__, "--child", case])
        dense = 10**6 * 10**4 * dims * 4
        rows.append({"measurement": f"{case}: forward + backward, 10^6 points, 10^4 kernels, peak memory growth",
                     "value": f"{result['peak_growth_bytes'] / 2**30:.2f} GiB ({result['seconds']:.1f} s)",
                     "target": f"bounded (a (points, kernels, dims) tensor: {dense / 2**30:,.0f} GiB)"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["image", "sdf", "sphere", "speed"], required=False,
                        help="which comparison to run")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of training per image / SDF model")
    parser.add_argument("--params", type=int, default=108_537,
                        help="trainable parameters per image / SDF model (default: the Gaussian RBFNet image model's)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--reuse", help="sphere: the log of an earlier, cut-short run; its measured rows are kept")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder of the tables")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = describe(parser).parse_args()
    if args.child:
        print(json.dumps(speed_child(args.child)))
        return
    if args.part is None:
        parser.error("--part is required")
    if args.reuse and args.part != "sphere":
        parser.error("--reuse is for --part sphere (the others run in minutes)")
    out = Path(args.out) / f"fields_{args.part}_{args.device}"
    if args.part == "image":
        rows = fields_part(IMAGE, args.budget, args.params, args.device, "image")
        columns = ["model", "parameters", "epochs", "train s", "PSNR (dB)", "SSIM"]
        notes = [f"`python benchmarks/bench_fields.py --part image`: china.jpg (427 x 640), {args.budget:g} s of "
                 f"training each, at most {args.params:,} trainable parameters each, random batches of 2^12 pixels",
                 "PSNR and SSIM of the reconstruction of every pixel (prediction clipped to [0, 1])", SCHEDULE]
    elif args.part == "sdf":
        rows = fields_part(SDF, args.budget, args.params, args.device, "sdf")
        columns = ["model", "parameters", "epochs", "train s", "test MAE", "IoU", "Chamfer"]
        notes = [f"`python benchmarks/bench_fields.py --part sdf`: the blended shape, {args.budget:g} s of training "
                 f"each, at most {args.params:,} trainable parameters each",
                 "IoU of the insides and Chamfer distance between the surfaces on a 96^3 grid over [-1, 1]^3", SCHEDULE]
    elif args.part == "sphere":
        rows = sphere_part(args.device, args.reuse)
        columns = ["data", "network", "encoding", "parameters", "epochs", *ACCURACIES]
        columns += ["source"] if args.reuse else []
        notes = ["`python benchmarks/bench_fields.py --part sphere`: the land_ocean_sh_siren / checkerboard_sh_siren "
                 "recipes (Adam, batch 2000, early stopping on the validation loss) with the network and encoding "
                 "of each row; SIREN and MLP 64 x 2"]
        if args.reuse:
            notes.append(f"source: reused rows were measured by an earlier run of this script, read from {args.reuse}")
    else:
        rows = speed_part()
        columns = ["measurement", "value", "target"]
        notes = ["`python benchmarks/bench_fields.py --part speed`"]
    print(write_results(rows, columns, f"Neural fields: {args.part}", out, notes))


if __name__ == "__main__":
    main()
