"""PNG plots a person would rather look at than read: loss curves and input / truth / prediction / error."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def plot_history(history: list[dict], path: Path) -> Path:
    """Training loss and every evaluation metric against the epoch (log scale where positive)."""
    epochs = [row["epoch"] for row in history]
    keys = [k for k in history[-1] if "/" in k and not k.startswith("time/")]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key in keys:
        points = [(row["epoch"], row[key]) for row in history if key in row]  # test sets: every test_every
        ax.plot(*zip(*points, strict=True), label=key, marker="o" if len(epochs) < 30 else None, ms=3)
    if all(row[k] > 0 for row in history for k in keys if k in row):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title("training loss and evaluation metrics")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _field_2d(t: torch.Tensor) -> torch.Tensor:
    """One 2-D picture of a field ``(channels, *spatial)``: the last channel, a middle slice for 3-D."""
    t = t[-1]
    while t.dim() > 2:
        t = t[..., t.shape[-1] // 2]
    return t


def plot_fields(x: torch.Tensor, y: torch.Tensor, pred: torch.Tensor, path: Path, title: str) -> Path:
    """Rows of samples; columns input, truth, prediction, |error| (1-D fields as curves on shared axes)."""
    x, y, pred = (t.detach().float().cpu() for t in (x, y, pred))
    n = x.shape[0]
    if y.dim() == 3:  # (n, channels, N): 1-D fields
        fig, axes = plt.subplots(n, 2, figsize=(10, 2.6 * n), squeeze=False)
        grid_x = torch.arange(y.shape[-1]) / y.shape[-1]
        for i in range(n):
            axes[i, 0].plot(torch.arange(x.shape[-1]) / x.shape[-1], x[i, -1], color="0.5", label="input")
            axes[i, 0].plot(grid_x, y[i, -1], label="truth")
            axes[i, 0].plot(grid_x, pred[i, -1], "--", label="prediction")
            axes[i, 1].plot(grid_x, (pred[i, -1] - y[i, -1]).abs(), color="C3")
            axes[i, 1].set_title("|error|", fontsize=9)
        axes[0, 0].legend(fontsize=8)
    else:
        fig, axes = plt.subplots(n, 4, figsize=(12, 3 * n), squeeze=False)
        for i in range(n):
            truth, guess = _field_2d(y[i]), _field_2d(pred[i])
            lo, hi = float(truth.min()), float(truth.max())
            panels = [(_field_2d(x[i]), "input", None, None), (truth, "truth", lo, hi),
                      (guess, "prediction", lo, hi), ((guess - truth).abs(), "|error|", None, None)]
            for ax, (img, label, vmin, vmax) in zip(axes[i], panels, strict=True):
                im = ax.imshow(img.T, origin="lower", cmap="magma" if label == "|error|" else "viridis",
                               vmin=vmin, vmax=vmax)
                ax.set_title(label, fontsize=9)
                ax.set_xticks([])
                ax.set_yticks([])
                fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
