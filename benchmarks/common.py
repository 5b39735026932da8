"""Shared measurement code for the benchmark scripts: timing, memory, and Markdown / JSON output.

Timing: forward + backward, warm-up first, then the median of ``repeats`` runs (CUDA events on GPU,
``perf_counter`` on CPU). Memory: on CUDA the peak allocated during one forward + backward; on CPU the
bytes of the tensors autograd saves for backward (what grows with the batch), counted once per storage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

_USED_DEVICE: torch.device | None = None  # what pick_device chose: the machine label names it


# Where tables go unless --out says otherwise: outside the repository, so that a run never rewrites the committed
# tables (benchmarks/results) by accident; those are rewritten on purpose with --out benchmarks/results.
DEFAULT_OUT = Path(os.environ.get("KERNELNN_BENCH_OUT") or Path.home() / ".cache" / "kernelnn" / "benchmark-results")

# Help text for the options the benchmark scripts share; each script's own options say their meaning in place.
SHARED_HELP = {
    "device": "where to run: auto (CUDA when present, else CPU), cpu, cuda or cuda:N",
    "warmup": "untimed runs before timing (compilation, caches, allocator)",
    "repeats": "timed runs; the median is reported",
    "out": "folder of the result tables (.md and .json); default outside the repository ($KERNELNN_BENCH_OUT or "
           "~/.cache/kernelnn/benchmark-results); --out benchmarks/results rewrites the committed tables",
    "batch": "batch size",
    "channels": "channels (features) of the layers",
    "size": "grid points per spatial axis",
    "seed": "random seed",
    "seeds": "random seeds; results averaged over them",
    "epochs": "training epochs",
}


def describe(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give every option of ``parser`` without help text its shared description (``SHARED_HELP``), with the
    default shown, so that ``--help`` explains every option."""
    for action in parser._actions:  # argparse exposes no public iterator over its options
        if action.help is None and action.dest in SHARED_HELP:
            action.help = SHARED_HELP[action.dest]
        if action.help and action.default not in (None, argparse.SUPPRESS) and "%(default)" not in action.help \
                and action.option_strings and action.dest != "help":
            action.help += " (default: %(default)s)"
    missing = [a.option_strings[0] for a in parser._actions if a.help is None and a.option_strings]
    if missing:
        raise RuntimeError(f"benchmark options without help text: {missing}")
    return parser


def pick_device(name: str) -> torch.device:
    global _USED_DEVICE
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    _USED_DEVICE = torch.device(name)
    return _USED_DEVICE


def time_forward_backward(fn: Callable[[], torch.Tensor], device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds of ``fn().sum().backward()``."""
    for _ in range(warmup):
        fn().sum().backward()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn().sum().backward()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        else:
            t0 = time.perf_counter()
            fn().sum().backward()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def memory_bytes(fn: Callable[[], torch.Tensor], device: torch.device) -> int:
    """CUDA: peak allocated over one forward + backward. CPU: bytes saved for backward."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn().sum().backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    out.sum().backward()
    return sum(seen.values())


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def cpu_peak_growth(fn: Callable[[], torch.Tensor], warmup: Callable[[], torch.Tensor]) -> int:
    """Bytes by which one forward + backward of ``fn`` raises the resident set (Linux: the high-water mark
    VmHWM is reset through /proc/self/clear_refs first). ``warmup`` (a small batch) allocates parameter
    gradients and one-off buffers first. Run it in a fresh process started by :func:`run_child`."""
    warmup().sum().backward()
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
    fn().sum().backward()
    return (_status_kib("VmHWM") - before) * 1024


def run_child(argv: list[str]) -> dict:
    """Run a benchmark script's child mode in a fresh process; its last stdout line is JSON.

    Large blocks come straight from mmap, so freed memory leaves the resident set at once: otherwise glibc reuses
    the warm-up's freed blocks and a case whose working set the warm-up already touched shows no growth."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def machine() -> str:
    """The device the benchmark ran on: the one :func:`pick_device` chose (a GPU's name only when it ran there,
    not merely because one is present), else the GPU when there is one."""
    on_gpu = _USED_DEVICE.type == "cuda" if _USED_DEVICE is not None else torch.cuda.is_available()
    if on_gpu:
        return torch.cuda.get_device_name(_USED_DEVICE if _USED_DEVICE is not None else None)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def write_results(rows: list[dict], columns: list[str], title: str, out_stem: Path, notes: list[str]) -> str:
    """Write ``<out_stem>.md`` (a table) and ``<out_stem>.json``; returns the Markdown."""
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"## {title}", "", f"Machine: {machine()}; torch {torch.__version__}.", ""]
    lines += [f"- {n}" for n in notes] + [""]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for row in rows:
        cells = [row.get(c, "") for c in columns]
        lines.append("| " + " | ".join(f"{c:.3g}" if isinstance(c, float) else str(c) for c in cells) + " |")
    text = "\n".join(lines) + "\n"
    out_stem.with_suffix(".md").write_text(text)
    out_stem.with_suffix(".json").write_text(json.dumps({"machine": machine(), "torch": torch.__version__,
                                                          "rows": rows}, indent=2))
    return text


def compose_experiment(experiment: str, overrides: list[str]):
    """The Hydra config of ``python train.py experiment=<experiment> <overrides>``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from kernelnn.training.launch import register_resolvers

    register_resolvers()
    config_dir = Path(__file__).resolve().parent.parent / "configs"
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir)):
        return hydra_compose("train", overrides=[f"experiment={experiment}", *overrides])


def train_experiment(experiment: str, device: str, overrides: list[str] = ()) -> str:
    """Train ``experiment`` quietly into a temporary folder; returns its best checkpoint."""
    import tempfile

    from kernelnn.training import run

    cfg = compose_experiment(experiment, [f"trainer.device={device}", "trainer.progress_bar=false",
                                          "trainer.tensorboard=false", "trainer.plots=false", *overrides])
    summary = run(cfg, output_dir=tempfile.mkdtemp(prefix=f"bench-{experiment}-"))
    print("trained: test", summary["test"], flush=True)
    return str(summary["best_checkpoint"])
