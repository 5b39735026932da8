"""PNG plots a person would rather look at than read: loss curves and input / truth / prediction / error.

matplotlib is imported inside the functions (``import kernelnn`` stays fast) and only through its object-oriented
API: figures are :class:`matplotlib.figure.Figure` objects drawn by the Agg canvas, never registered with pyplot, so
nothing is left open and no global backend is switched.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_CHANNELS = 4  # output channels shown per sample in plot_fields
_SKIP = {"epoch", "step", "lr"}


# ---------------------------------------------------------------------------------------------------- helpers
def new_figure(**kwargs) -> Figure:
    """A constrained-layout figure on its own Agg canvas (never registered with pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: Path | str, dpi: int) -> Path:
    """Write ``fig`` to ``path`` and release its artists; returns the path."""
    path = Path(path)
    try:
        fig.savefig(path, dpi=dpi)
    finally:
        fig.clear()  # not registered with pyplot: clearing releases the artists, nothing else holds the figure
    return path


def _number(value) -> float | None:
    """A float for plotting, or None for what is not a number (strings, None, tensors with several entries)."""
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def _is_accuracy(name: str) -> bool:
    name = name.lower()
    return "accuracy" in name or name in {"acc", "top1", "top5", "top1_acc", "top5_acc"}


def _finite(values: Iterable[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _log_helps(values: list[float], min_ratio: float = 10.0) -> bool:
    """Log scale: every value positive and (with ``min_ratio`` > 1) the values spanning more than that ratio."""
    finite = _finite(values)
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > min_ratio


def _log_axis(ax: Axes) -> None:
    """Log y axis whose tick labels read as plain numbers (0.03, not 3 x 10^-2)."""
    from matplotlib.ticker import LogFormatterSciNotation

    class Plain(LogFormatterSciNotation):
        def __call__(self, x, pos=None):
            return f"{x:g}" if super().__call__(x, pos) else ""

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(Plain())
    ax.yaxis.set_minor_formatter(Plain(labelOnlyBase=False))
    ax.grid(True, which="minor", alpha=0.12)


# ------------------------------------------------------------------------------------------------ history
class _Panel:
    """One axis of the history figure: a title, a y label, a scale rule and named ``(x, y)`` series."""

    def __init__(self, title: str, ylabel: str, kind: str) -> None:
        self.title, self.ylabel, self.kind = title, ylabel, kind  # kind: loss | metric | fraction | other
        self.series: dict[str, list[tuple[float, float]]] = {}

    def add(self, label: str, x: float, y: float) -> None:
        self.series.setdefault(label, []).append((x, y))

    def values(self) -> list[float]:
        return [y for points in self.series.values() for _, y in points]


def _history_panels(history: list[dict]) -> dict[str, _Panel]:
    """Group the keys of the history rows into panels: training loss, one per metric, one per ``train/<group>``."""
    panels: dict[str, _Panel] = {"loss": _Panel("training loss", "train loss", "loss")}
    for row in history:
        epoch = _number(row.get("epoch"))
        if epoch is None:
            continue
        for key, raw in row.items():
            value = _number(raw)
            if value is None or key in _SKIP or key.startswith("time/"):
                continue
            if key == "train/loss":
                panels["loss"].add("per-epoch mean", epoch, value)
                continue
            parts = key.split("/")
            if len(parts) == 1:  # an unknown top-level number: a panel of its own
                panels.setdefault(key, _Panel(key, key, "other")).add(key, epoch, value)
            elif parts[0] == "train" and len(parts) > 2:  # train/delta_sparsity/<layer>: grouped, linear
                group = "/".join(parts[:2])
                kind = "fraction" if "sparsity" in group or "fraction" in group else "other"
                panels.setdefault(group, _Panel(group, parts[1], kind)).add("/".join(parts[2:]), epoch, value)
            else:  # <set>/<metric>: every evaluation set (and train/<metric>) shares the metric's panel
                metric = "/".join(parts[1:])
                name = f"metric:{metric}"
                title = f"{metric} (evaluation)" if metric == "loss" else metric
                panels.setdefault(name, _Panel(title, metric, "metric")).add(parts[0], epoch, value)
    return panels


def _plot_series(ax: Axes, points: list[tuple[float, float]], label: str, many: bool, accuracy: bool,
                 dodge: float = 0.0, text_left: bool = False, **style) -> None:
    """One series: markers while there are few points, a big annotated marker when there is only one (moved
    ``dodge`` along x so that the sets of a one-epoch run stand side by side; its value written left of it with
    ``text_left``, for a point at the right edge)."""
    xs, ys = zip(*points, strict=True)
    last = ys[-1]
    shown = f"{last:.2%}" if accuracy and math.isfinite(last) else _fmt(last)
    text = f"{label} (last {shown})" if len(points) > 1 else f"{label}: {shown}"
    if len(points) == 1:
        (line,) = ax.plot([xs[0] + dodge], ys, marker="o", ms=9, ls="none", label=text, **style)
        ax.annotate(shown, (xs[0] + dodge, ys[0]), xytext=(-9 if text_left else 9, 0), textcoords="offset points",
                    fontsize=9, va="center", ha="right" if text_left else "left", color=line.get_color())
        return
    marker = "o" if len(points) <= 40 else None
    ax.plot(xs, ys, marker=marker, ms=4 if not many else 3, lw=1.6, label=text, **style)


def _style_axis(ax: Axes, panel: _Panel, values: list[float], single: bool = False) -> None:
    ax.set_title(panel.title, fontsize=10)
    ax.set_ylabel(panel.ylabel)
    ax.set_xlabel("epoch")
    ax.grid(True, which="major", alpha=0.35)
    accuracy = _is_accuracy(panel.ylabel)
    finite = _finite(values)
    if panel.kind == "loss":
        log = len(finite) > 1 and min(finite) > 0
    elif panel.kind == "metric" and not accuracy:
        log = _log_helps(values)
    else:
        log = False
    if log:
        _log_axis(ax)
    elif panel.kind in ("metric", "loss") and not accuracy and finite and min(finite) >= 0 and single:
        ax.set_ylim(0, 1.2 * max(finite) if max(finite) > 0 else 1)  # one epoch: no zoom onto a tiny gap
    if accuracy and finite and min(finite) >= 0 and max(finite) <= 1:
        ax.set_ylim(-0.02, 1.02)
    elif panel.kind == "fraction" and finite and min(finite) >= 0 and max(finite) <= 1:
        ax.set_ylim(-0.02, 1.02)


def _history_figure(history: list[dict], steps: list[dict] | None = None) -> Figure:
    """The figure behind :func:`plot_history` (tests inspect its axes: titles, y labels, scales)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    panels = _history_panels(history)
    loss = panels["loss"]
    step_points = [(float(s["epoch"]), float(s["loss"])) for s in steps or []
                   if _number(s.get("epoch")) is not None and _number(s.get("loss")) is not None]
    step_lr = [(float(s["epoch"]), float(s["lr"])) for s in steps or []
               if _number(s.get("epoch")) is not None and _number(s.get("lr")) is not None]
    if not loss.series and not step_points:
        del panels["loss"]
    shown = [p for p in panels.values() if p.series or p is loss]
    lr = [(float(row["epoch"]), float(row["lr"])) for row in history
          if _number(row.get("epoch")) is not None and _number(row.get("lr")) is not None]

    n = max(len(shown), 1)
    ncols = 1 if n == 1 else 2 if n in (2, 4) else 3
    nrows = math.ceil(n / ncols)
    has_lr = bool(lr or step_lr)
    fig = new_figure(figsize=(4.8 * ncols + 0.4, 3.3 * nrows + (1.7 if has_lr else 0) + 0.4))
    grid = fig.add_gridspec(nrows + has_lr, ncols, height_ratios=[1] * nrows + ([0.45] if has_lr else []))

    epochs = [e for e in (_number(row.get("epoch")) for row in history) if e is not None]
    xs = epochs + [x for x, _ in step_points] + [x for x, _ in step_lr]
    lo, hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if step_points:
        lo = min(lo, 0.0)
    pad = 0.5 if hi - lo < 1e-9 else 0.03 * (hi - lo)
    integer_ticks = hi - lo >= 2
    single_epoch = len(set(epochs)) == 1

    def frame(ax: Axes, with_steps: bool = False) -> None:
        if single_epoch and not with_steps:  # one epoch: the sets side by side around it
            ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
            ax.set_xticks([epochs[0]])
            return
        ax.set_xlim(lo - pad, hi + pad)
        if hi - lo < 1e-9:
            ax.set_xticks([lo])
        elif integer_ticks:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))

    for k, panel in enumerate(shown):
        ax = fig.add_subplot(grid[k // ncols, k % ncols])
        values = panel.values()
        many = len(panel.series) > 10
        accuracy = _is_accuracy(panel.ylabel)
        if panel is loss and step_points:
            sx, sy = zip(*step_points, strict=True)
            ax.plot(sx, sy, lw=0.8, alpha=0.75, color="C0", label=f"every few steps ({len(step_points)} points)")
            values = values + list(sy)
            for label, points in panel.series.items():
                _plot_series(ax, points, label, many, accuracy, text_left=True, color="C3", zorder=3)
        elif not panel.series:
            ax.text(0.5, 0.5, "no training loss recorded", ha="center", va="center", transform=ax.transAxes)
        else:
            palette = _palette(len(panel.series)) if many else None
            count = len(panel.series)
            for j, (label, points) in enumerate(panel.series.items()):
                style = {"color": palette[j]} if palette else {}
                dodge = 0.4 * (j / (count - 1) - 0.5) if single_epoch and count > 1 else 0.0
                right = not single_epoch and points[-1][0] >= hi - 1e-9
                _plot_series(ax, points, label, many, accuracy, dodge=dodge, text_left=right, **style)
        _style_axis(ax, panel, values, single=len(values) == 1 or all(len(p) == 1 for p in panel.series.values()))
        frame(ax, with_steps=panel is loss and bool(step_points))
        ax.margins(y=0.12)
        if panel.series or step_points:
            if many:
                ax.set_title(f"{panel.title} ({len(panel.series)} series, dark to light)", fontsize=10)
            else:
                ax.legend(fontsize=7.5, loc="best", framealpha=0.8)
    if not shown:
        ax = fig.add_subplot(grid[0, 0])
        ax.text(0.5, 0.5, "empty history", ha="center", va="center", transform=ax.transAxes)

    if has_lr:
        ax = fig.add_subplot(grid[-1, :])
        points = step_lr or lr
        px, py = zip(*points, strict=True)
        constant = max(py) == min(py)
        if constant:
            ax.axhline(py[0], color="C2", lw=1.4)
            ax.set_yticks([py[0]])
        if len(points) == 1:
            ax.plot(px, py, marker="o", ms=8, ls="none", color="C2")
        else:
            ax.plot(px, py, color="C2", lw=1.4, marker="o" if len(points) <= 40 and not step_lr else None, ms=3)
        ax.set_title(f"learning rate (constant {_fmt(py[0])})" if constant else "learning rate", fontsize=10)
        ax.set_ylabel("lr")
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.35)
        if _log_helps(list(py), 100.0):
            _log_axis(ax)
        else:
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        frame(ax, with_steps=bool(step_points or step_lr))

    count = len(epochs)
    fig.suptitle(f"training history: {count} epoch{'s' if count != 1 else ''}", fontsize=12)
    return fig


def _palette(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.9 * j / max(n - 1, 1)) for j in range(n)]


def plot_history(history: list[dict], path: Path, steps: list[dict] | None = None) -> Path:
    """Loss curves as a PNG: one panel for the training loss, one per metric (every evaluation set in it), one
    per ``train/<group>/*`` family and a small learning-rate strip; all against the epoch.

    ``steps``: optional rows ``{"step", "epoch" (fractional), "loss"}`` recorded every few optimizer steps; the
    training-loss panel then draws them as a thin curve under the per-epoch means, so one epoch still shows a curve.
    """
    return save_figure(_history_figure(history, steps), path, dpi=110)


# ------------------------------------------------------------------------------------------------- fields
def _slice(t: torch.Tensor) -> torch.Tensor:
    """At most 2-D: middle slices along the last axis while there are more than two."""
    while t.dim() > 2:
        t = t[..., t.shape[-1] // 2]
    return t


def _range(*tensors: torch.Tensor) -> tuple[float, float] | tuple[None, None]:
    values = torch.cat([t.flatten() for t in tensors])
    values = values[torch.isfinite(values)]
    if values.numel() == 0:
        return None, None
    lo, hi = float(values.min()), float(values.max())
    pad = 0.5 * abs(lo) if lo != 0 else 1.0  # a constant field: a range around it (colour bars need one)
    return (lo, hi) if hi > lo else (lo - pad, hi + pad)


def _image(fig: Figure, ax: Axes, img: torch.Tensor, label: str, cmap: str = "viridis",
           vmin: float | None = None, vmax: float | None = None, extend: str = "neither") -> None:
    """A 2-D field as a picture (first spatial axis down the rows) with its colour bar; 1-D ones as a curve."""
    from matplotlib.ticker import FormatStrFormatter

    if img.dim() == 1:
        ax.plot(torch.linspace(0, 1, img.shape[0] + 1)[:-1], img, color="0.3")
        ax.set_title(label, fontsize=9)
        return
    if vmin is None:
        vmin, vmax = _range(img)
    im = ax.imshow(img.numpy(), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(label, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    bar = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.03, extend=extend, extendfrac=0.04)
    bar.ax.tick_params(labelsize=7)
    bar.ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))  # no offset text crowding the next title


def _rel_error(guess: torch.Tensor, truth: torch.Tensor) -> str:
    norm = float(truth.norm())
    if norm == 0 or not math.isfinite(norm):
        return f"abs. L2 error {_fmt(float((guess - truth).norm()))}"
    return f"rel. L2 error {float((guess - truth).norm()) / norm:.2%}"


def _fields_figure(x: torch.Tensor, y: torch.Tensor, pred: torch.Tensor, title: str) -> Figure:
    """The figure behind :func:`plot_fields` (tests inspect its axes)."""
    x, y, pred = (t.detach().cpu() for t in (x, y, pred))
    x, y, pred = (t.real if t.is_complex() else t for t in (x, y, pred))
    x, y, pred = (t.float() for t in (x, y, pred))
    if y.dim() < 3 or pred.shape != y.shape:
        raise ValueError(f"plot_fields: y and pred must both be (n, channels, *spatial) with 1 to 3 spatial axes, "
                         f"got {tuple(y.shape)} and {tuple(pred.shape)}")
    if x.dim() == y.dim() - 1:  # no channel axis on the input
        x = x.unsqueeze(1)
    n, channels = y.shape[:2]
    c_in = x.shape[1] if x.dim() >= 3 else 1
    shown = min(channels, MAX_CHANNELS)
    spatial = y.dim() - 2
    rows = [(i, c) for i in range(n) for c in range(shown)]

    notes = []
    if channels > 1:
        left = channels - shown
        notes.append(f"output channels 0-{shown - 1} of {channels} shown ({left} left out)" if left
                     else f"all {channels} output channels shown")
        if c_in == channels:
            notes.append("input: the matching channel")
    if spatial >= 3:
        size = y.shape[-1]
        notes.append(f"{spatial}-D fields: middle slice along the last axis (index {size // 2} of {size})")
    if c_in > 1 and c_in != channels:
        notes.append(f"input: channel 0 of {c_in}")

    one_d = spatial == 1
    if one_d:
        width, row_h = 13.0, 2.3
        ratios = [1, 1.5, 1]
    else:
        h, w = _slice(y[0, 0]).shape
        width = 14.0
        row_h = min(max((width / 4 - 1.2) * h / w + 0.45, 1.6), 3.6)  # image width: the column less its bar
        ratios = [1, 1, 1, 1]
    fig = new_figure(figsize=(width, row_h * len(rows) + 0.9))
    axes = fig.subplots(len(rows), len(ratios), squeeze=False, gridspec_kw={"width_ratios": ratios})

    for r, (i, c) in enumerate(rows):
        ci = c if c_in == channels else 0
        inp = x[i, ci] if x.dim() >= 3 else x[i]
        truth, guess = y[i, c], pred[i, c]
        in_label = f"input (channel {ci} of {c_in})" if c_in > 1 else "input"
        row_label = f"sample {i}" + (f"\nchannel {c} of {channels}" if channels > 1 else "")
        err = (_slice(guess) - _slice(truth)).abs()  # what is drawn (3-D: the slice)
        max_err = _fmt(float(err[torch.isfinite(err)].max())) if torch.isfinite(err).any() else "nan"
        if one_d:
            a_in, a_tp, a_err = axes[r]
            grid_y = torch.linspace(0, 1, truth.shape[-1] + 1)[:-1]
            _slice_in = _slice(inp)
            if _slice_in.dim() == 1:
                a_in.plot(torch.linspace(0, 1, _slice_in.shape[-1] + 1)[:-1], _slice_in, color="0.35")
                a_in.set_title(in_label, fontsize=9)
            else:
                _image(fig, a_in, _slice_in, in_label)
            a_tp.plot(grid_y, truth, color="k", lw=1.6, label="truth")
            a_tp.plot(grid_y, guess, color="C1", lw=1.4, ls="--", label="prediction")
            a_tp.set_title(f"truth vs prediction ({_rel_error(guess, truth)})", fontsize=9)
            a_err.plot(grid_y, err, color="C3", lw=1.0)
            a_err.fill_between(grid_y, err, color="C3", alpha=0.2, lw=0)
            a_err.set_title(f"|error| (max {max_err})", fontsize=9)
            for ax in axes[r]:
                ax.grid(True, alpha=0.3)
                ax.tick_params(labelsize=7.5)
                ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
            if r == 0:
                a_tp.legend(fontsize=8, loc="best")
            if r == len(rows) - 1:
                for ax in axes[r]:
                    ax.set_xlabel("x")
            a_in.set_ylabel(row_label, fontsize=9)
        else:
            a_in, a_t, a_p, a_e = axes[r]
            t2, g2 = _slice(truth), _slice(guess)
            lo, hi = _range(t2)
            g_lo, g_hi = _range(g2)
            extend = "neither"
            if lo is not None and g_lo is not None:
                below, above = g_lo < lo - 1e-6 * (hi - lo), g_hi > hi + 1e-6 * (hi - lo)
                extend = "both" if below and above else "min" if below else "max" if above else "neither"
            _image(fig, a_in, _slice(inp), in_label)
            _image(fig, a_t, t2, "truth", vmin=lo, vmax=hi, extend=extend)
            _image(fig, a_p, g2, f"prediction ({_rel_error(guess, truth)})", vmin=lo, vmax=hi, extend=extend)
            e_hi = _range(err)[1]
            _image(fig, a_e, err, f"|error| (max {max_err})", cmap="magma", vmin=0.0,
                   vmax=e_hi if e_hi is not None and e_hi > 0 else 1.0)
            a_in.set_ylabel(row_label, fontsize=9)
    fig.suptitle(title + ("\n" + "; ".join(notes) if notes else ""), fontsize=11)
    return fig


def plot_fields(x: torch.Tensor, y: torch.Tensor, pred: torch.Tensor, path: Path, title: str) -> Path:
    """Samples of an operator task as a PNG: one row per sample and output channel (at most ``MAX_CHANNELS``).

    ``x`` ``(n, C_in, *spatial)``, ``y`` and ``pred`` ``(n, C_out, *spatial)`` with 1 to 3 spatial axes. 1-D: input
    (own axis), truth vs prediction, |error|. 2-D: input, truth, prediction (sharing the truth's colour range) and
    |error|, each with a colour bar. 3-D: the same for the middle slice along the last axis.
    """
    return save_figure(_fields_figure(x, y, pred, title), path, dpi=100)


# ---------------------------------------------------------------------------------------------------- fields
def plot_image_fit(truth: torch.Tensor, prediction: torch.Tensor, path: Path, title: str) -> Path:
    """An image field: truth, reconstruction and |error| (mean over channels), images ``(channels, H, W)`` in
    ``[0, 1]``."""
    fig = new_figure(figsize=(13, 4.2))
    axes = fig.subplots(1, 3)

    def show(t: torch.Tensor) -> torch.Tensor:
        t = t.clamp(0, 1).permute(1, 2, 0)
        return t[..., 0] if t.shape[-1] == 1 else t[..., :3]

    for ax, img, label in ((axes[0], truth, "truth"), (axes[1], prediction, "reconstruction")):
        ax.imshow(show(img).numpy(), cmap="gray" if img.shape[0] == 1 else None, vmin=0, vmax=1)
        ax.set_title(label)
        ax.set_axis_off()
    error = (prediction - truth).abs().mean(0)
    im = axes[2].imshow(error.numpy(), cmap="magma")
    axes[2].set_title(f"|error| (max {_fmt(error.max().item())})")
    axes[2].set_axis_off()
    fig.colorbar(im, ax=axes[2], shrink=0.8)
    fig.suptitle(title)
    return save_figure(fig, path, dpi=100)


def plot_sdf_slices(truth: torch.Tensor, prediction: torch.Tensor, path: Path, title: str) -> Path:
    """A signed distance field on a grid ``(R, R, R)`` over ``[-1, 1]^3``: the middle slice across each axis, truth
    and prediction with their zero contours (the surface) and the truth's contour dashed on the prediction."""
    fig = new_figure(figsize=(12, 8))
    axes = fig.subplots(2, 3)
    r = truth.shape[0]
    limit = max(truth.abs().max().item(), 1e-12)
    for col, axis in enumerate(range(3)):
        t, p = truth.select(axis, r // 2), prediction.select(axis, r // 2)
        for row, (field, label) in enumerate(((t, "truth"), (p, "prediction"))):
            ax = axes[row, col]
            im = ax.imshow(field.T.numpy(), origin="lower", extent=(-1, 1, -1, 1), cmap="RdBu", vmin=-limit,
                           vmax=limit)
            ax.contour(field.T.numpy(), levels=[0], colors="k", extent=(-1, 1, -1, 1), linewidths=1.2)
            if row == 1:
                ax.contour(t.T.numpy(), levels=[0], colors="gold", extent=(-1, 1, -1, 1), linewidths=1,
                           linestyles="dashed")
            names = [n for i, n in enumerate("xyz") if i != axis]
            ax.set_title(f"{label}, {'xyz'[axis]} = 0")
            ax.set_xlabel(names[0])
            ax.set_ylabel(names[1])
            fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(title)
    return save_figure(fig, path, dpi=100)


def plot_world_map(classes: torch.Tensor, lonlat: torch.Tensor, correct: torch.Tensor, path: Path,
                   title: str) -> Path:
    """Classification on the sphere: the predicted class on a lon/lat grid ``classes (n_lat, n_lon)`` (north up),
    with the test points the model got wrong in red, on an equirectangular map."""
    fig = new_figure(figsize=(12, 6.5))
    ax = fig.subplots()
    n_classes = int(classes.max().item()) + 1
    ax.imshow(classes.numpy(), origin="lower", extent=(-180, 180, -90, 90), interpolation="nearest",
              cmap="Greys" if n_classes <= 2 else "tab20", alpha=0.75)
    wrong = ~correct
    ax.scatter(lonlat[wrong, 0].numpy(), lonlat[wrong, 1].numpy(), s=3, c="red", label="misclassified test points")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.legend(loc="lower left")
    accuracy = correct.float().mean().item()
    ax.set_title(f"{title}: test accuracy {accuracy:.4f}")
    return save_figure(fig, path, dpi=100)
