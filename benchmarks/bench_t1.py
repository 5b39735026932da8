"""Transform Once against the FNO at equal parameters: forward + backward time at 64x64, 128x128 and 256x256.

    python benchmarks/bench_t1.py                       # CPU (or CUDA when present)
    python benchmarks/bench_t1.py --device cuda --batch 16

The FNO is the Darcy recipe's (12 modes, width 32, 4 layers, projection 128, ~2.27M parameters); T1 keeps the same
12 x 12 lowest DCT frequencies with 4 layers and the width that matches the FNO's parameter count. Poli et al.
report 3-10x speed-ups over FNO-style models, growing with resolution: the FNO transforms forward and back in every
layer, T1 once. Times are medians of ``--repeats`` forward + backward passes on a batch, measured side by side.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_OUT, describe, pick_device, time_forward_backward, write_results  # noqa: E402

from kernelnn.models import FNO, TransformOnce  # noqa: E402


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matched_t1(target: int, modes: int, resolution: int) -> TransformOnce:
    """The T1 whose width gives the parameter count nearest ``target``."""
    best = None
    for width in range(8, 257):
        model = TransformOnce(1, 1, modes, hidden_channels=width, n_layers=4, resolution=[resolution] * 2)
        if best is None or abs(parameters(model) - target) < abs(parameters(best) - target):
            best = model
        if parameters(model) > target:
            break
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256], help="grid resolutions to time")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = describe(parser).parse_args()
    device = pick_device(args.device)
    torch.manual_seed(0)
    fno = FNO(1, 1, n_modes=12, dim=2, hidden_channels=32, n_layers=4, projection_channels=128).to(device)
    rows = []
    for res in args.resolutions:
        t1 = matched_t1(parameters(fno), 12, res).to(device)
        x = torch.randn(args.batch, 1, res, res, device=device)
        times = {}
        for name, model in (("FNO", fno), ("T1 (DCT)", t1)):
            times[name] = time_forward_backward(lambda m=model, x=x: m(x), device, warmup=2, repeats=args.repeats)
        rows.append({"resolution": f"{res}x{res}", "FNO params": parameters(fno), "T1 params": parameters(t1),
                     "T1 width": t1.hidden_channels, "FNO ms": times["FNO"] * 1e3, "T1 ms": times["T1 (DCT)"] * 1e3,
                     "speed-up": times["FNO"] / times["T1 (DCT)"]})
        print(rows[-1], flush=True)
    text = write_results(
        rows, ["resolution", "FNO params", "T1 params", "T1 width", "FNO ms", "T1 ms", "speed-up"],
        "Transform Once vs FNO: forward + backward at equal parameters",
        Path(args.out) / f"t1_{device.type}",
        [f"`python benchmarks/bench_t1.py --device {args.device}`: batch {args.batch}, 1 channel in and out, "
         f"median of {args.repeats} forward + backward passes after 2 warm-up passes",
         "FNO: 12 modes (|k| < 12), width 32, 4 layers, projection 128; T1: the 12 x 12 lowest DCT frequencies, "
         "4 layers, head 128, width matched to the FNO's parameter count"])
    print(text)


if __name__ == "__main__":
    main()
