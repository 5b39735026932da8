"""What a run tells a person: the start line, the summary (dict and log), and the plots."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kernelnn.data.bundle import DataBundle, first_batch
from kernelnn.training import distributed as D

log = logging.getLogger("kernelnn.training")


def log_start(bundle: DataBundle, model_target: str, sizes: dict, device, info: D.DistInfo, out: Path) -> None:
    if not info.is_main:
        return
    log.info("data %s: %d train, %s; model %s with %s parameters on %s%s; output %s", bundle.name,
             len(bundle.train), ", ".join(f"{k} {len(v)}" for k, v in bundle.eval_sets().items()), model_target,
             f"{sizes['n_parameters']:,}", device, f" x {info.world_size} processes" if info.enabled else "", out)
    if "spectral_stored" in sizes:
        log.info("spectral weights: %s parameters stored for %s dense (%.1fx compression)",
                 f"{sizes['spectral_stored']:,}", f"{sizes['spectral_dense']:,}", sizes["spectral_compression"])


def format_metric(metrics: dict[str, float], metric: str) -> str:
    """``"test_32 0.0237, test_64 0.0442"``: one metric over the sets of ``{"<set>/<metric>": value}``."""
    return ", ".join(f"{k.split('/')[0]} {v:.4g}" for k, v in metrics.items() if k.endswith("/" + metric))


def summarize(trainer, bundle: DataBundle, sizes: dict, train_seconds: float, epochs_run: int) -> dict[str, Any]:
    """Test the best weights, draw the plots (rank 0, ``trainer.plots``), log and return the summary."""
    out, ckpt_dir, opts = trainer.output_dir, trainer.checkpoint_dir, trainer.options
    best = ckpt_dir / "best.pt"
    tested = "best weights" if best.exists() else "final weights: no best.pt was written"
    test_metrics = trainer.test_best()
    summary: dict[str, Any] = {
        "output_dir": str(out),
        "best_checkpoint": str(best) if best.exists() else None,
        "last_checkpoint": str(ckpt_dir / "last.pt"),
        "metrics_csv": str(out / "metrics.csv"),
        "best": trainer.state.best,
        "best_epoch": trainer.state.best_epoch,
        "monitor": trainer.monitor,
        "epochs": trainer.state.epoch,
        "epochs_run": epochs_run,
        "resumes": trainer.state.resumes,  # each resume that changed optimizer or schedule settings, and how
        "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / epochs_run if epochs_run else None,
        **sizes,
        "test": test_metrics,
        "tested_weights": "best" if best.exists() else "final",
        "plots": plot_run(trainer, bundle) if trainer.dist.is_main and opts.plots else [],
    }
    if trainer.dist.is_main:
        main = trainer.task.main_metric
        ran = (f"Finished {epochs_run} epoch(s) in {train_seconds:.1f} s ({summary['seconds_per_epoch']:.2f} s/epoch)"
               if epochs_run else f"No epochs to run (the checkpoint had reached trainer.epochs={opts.epochs})")
        written = [name for name in ("best.pt", "last.pt") if (ckpt_dir / name).exists()]
        lines = [
            f"{ran}; best {trainer.monitor} at epoch {trainer.state.best_epoch}.",
            f"Test {main} ({tested}): {format_metric(test_metrics, main) or '(no test sets)'}",
        ]
        for resumed in trainer.state.resumes:
            lines.append(f"Resumed at epoch {resumed['epoch']} with changed settings: {'; '.join(resumed['changes'])}")
        if written:
            lines.append(f"Checkpoints: {ckpt_dir} ({', '.join(written)})")
        if (out / "metrics.csv").exists():
            lines.append(f"Metrics:     {summary['metrics_csv']}")
        if summary["plots"]:
            lines.append(f"Plots:       {Path(summary['plots'][0]).parent}")
        log.info("\n".join(lines))
    return summary


def plot_run(trainer, bundle: DataBundle) -> list[str]:
    """Loss curves, and for field tasks input / truth / prediction / error of the first test samples."""
    from kernelnn.training.plots import plot_fields, plot_history

    history = trainer.state.history
    if not history:
        return []
    plot_dir = trainer.output_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    paths = [plot_history(history, plot_dir / "loss_curves.png", steps=trainer.state.steps)]
    n = trainer.options.plot_samples
    if bundle.task == "operator" and n > 0:
        for name, ds in bundle.tests.items():
            x, y = first_batch(ds, n)
            paths.append(plot_fields(x, y, trainer.predict(x).cpu(), plot_dir / f"samples_{name}.png",
                                     f"{bundle.name} {name}: input / truth / prediction / error"))
    return [str(p) for p in paths]
