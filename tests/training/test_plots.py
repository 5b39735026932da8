"""The PNG plots: one panel per kind of quantity in the loss curves, every output channel in the sample figures."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from kernelnn.training.plots import _fields_figure, _history_figure, plot_fields, plot_history

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path) -> bool:
    return path.read_bytes()[:8] == PNG and path.stat().st_size > 1000


def realistic_history(epochs: int = 20, test_every: int = 5, sparsity: bool = False) -> list[dict]:
    """val every epoch, two test sets every ``test_every`` epochs and at the last one, a cosine learning rate."""
    rows = []
    for e in range(1, epochs + 1):
        row = {"epoch": e, "step": 50 * e, "lr": 1e-3 * 0.5 * (1 + math.cos(math.pi * e / epochs)),
               "train/loss": 0.5 * math.exp(-e / 4) + 0.01, "val/l2": 0.6 * math.exp(-e / 5) + 0.02,
               "val/h1": 0.9 * math.exp(-e / 6) + 0.05}
        if e % test_every == 0 or e == epochs:
            for name, factor in (("test_32", 1.0), ("test_64", 1.3)):
                row[f"{name}/l2"] = factor * row["val/l2"]
                row[f"{name}/h1"] = factor * row["val/h1"]
        if sparsity:
            row["train/delta_sparsity/conv1"] = min(0.9, 0.04 * e)
            row["train/delta_sparsity/conv2"] = min(0.8, 0.03 * e)
        row["time/train_s"], row["time/eval_s"] = 1.5, 0.2
        rows.append(row)
    return rows


def panels(fig) -> dict:
    """Axes of a history figure by title (colour-bar-free figure: every axis is a panel)."""
    return {ax.get_title(): ax for ax in fig.axes}


def test_history_one_panel_per_quantity(tmp_path):
    history = realistic_history(sparsity=True)
    fig = _history_figure(history)
    by_title = panels(fig)
    assert set(by_title) == {"training loss", "l2", "h1", "train/delta_sparsity", "learning rate"}
    assert by_title["training loss"].get_yscale() == "log"
    assert by_title["l2"].get_yscale() == "log"  # 0.6 -> 0.03: more than a decade
    assert by_title["h1"].get_yscale() == "linear"  # 0.8 -> 0.08: not quite
    assert by_title["train/delta_sparsity"].get_yscale() == "linear"
    for title, ax in by_title.items():
        assert ax.get_xlabel() == "epoch", title
        assert ax.get_ylabel(), title
    assert by_title["l2"].get_ylabel() == "l2"
    # Every evaluation set of a metric in its panel, labelled by set; test sets only where they were evaluated.
    labels = [t.get_text() for t in by_title["l2"].get_legend().get_texts()]
    assert [label.split()[0] for label in labels] == ["val", "test_32", "test_64"]
    lines = {line.get_label().split()[0]: line for line in by_title["l2"].get_lines()}
    assert list(lines["val"].get_xdata()) == list(range(1, 21))
    assert list(lines["test_64"].get_xdata()) == [5, 10, 15, 20]
    # The learning rate panel is smaller than the others.
    assert by_title["learning rate"].get_position().height < 0.6 * by_title["l2"].get_position().height
    path = plot_history(history, tmp_path / "loss_curves.png")
    assert path == tmp_path / "loss_curves.png" and is_png(path)


def test_history_classification_accuracy_linear_in_unit_interval():
    history = [{"epoch": e, "step": e, "lr": 1e-2, "train/loss": 1.0 / e, "val/accuracy": 1 - 0.5 / e,
                "val/cross_entropy": 1.0 / e + 0.1} for e in range(1, 11)]
    history[-1].update({"test/accuracy": 0.93, "test/cross_entropy": 0.25})
    by_title = panels(_history_figure(history))
    assert set(by_title) == {"training loss", "accuracy", "cross_entropy", "learning rate (constant 0.01)"}
    acc = by_title["accuracy"]
    assert acc.get_yscale() == "linear" and acc.get_ylabel() == "accuracy"
    lo, hi = acc.get_ylim()
    assert -0.05 <= lo <= 0 and 1 <= hi <= 1.05
    assert by_title["cross_entropy"].get_ylabel() == "cross_entropy"
    # test evaluated only at the last epoch: one annotated point
    assert any(t.get_text() == "0.25" for t in by_title["cross_entropy"].texts)


def test_history_one_epoch_with_steps_draws_a_curve(tmp_path):
    history = realistic_history(epochs=1)
    steps = [{"step": s, "epoch": s / 40, "loss": math.exp(-s / 10) + 0.2} for s in range(4, 41, 4)]
    fig = _history_figure(history, steps)
    loss = panels(fig)["training loss"]
    curves = [line for line in loss.get_lines() if len(line.get_xdata()) > 1]
    assert curves and max(curves[0].get_xdata()) == pytest.approx(1.0) and min(curves[0].get_xdata()) < 0.5
    means = [line for line in loss.get_lines() if len(line.get_xdata()) == 1]
    assert means and means[0].get_ydata()[0] == pytest.approx(history[0]["train/loss"])
    assert is_png(plot_history(history, tmp_path / "one_epoch.png", steps=steps))


def test_history_one_epoch_without_steps_annotates_large_markers(tmp_path):
    history = realistic_history(epochs=1)
    by_title = panels(_history_figure(history))
    for title in ("training loss", "l2", "h1"):
        ax = by_title[title]
        assert ax.texts, title  # the values are written next to the points
        assert all(line.get_markersize() >= 8 for line in ax.get_lines()), title
        assert list(ax.get_xticks()) == [1]
    assert is_png(plot_history(history, tmp_path / "one_epoch.png"))


def test_history_many_layers_and_odd_values(tmp_path):
    history = realistic_history(epochs=3)
    for row in history:
        row.update({f"train/delta_sparsity/layer{k}": 0.1 * k for k in range(12)})
    history[1]["val/l2"] = float("nan")
    history[2]["train/loss"] = torch.tensor(0.3)  # a stray tensor is plotted as its value
    by_title = panels(_history_figure(history))
    assert "train/delta_sparsity (12 series, dark to light)" in by_title
    assert is_png(plot_history(history, tmp_path / "odd.png"))
    assert is_png(plot_history([], tmp_path / "empty.png"))


def ylabels(fig) -> list[str]:
    return [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]


def titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def test_fields_1d_input_on_its_own_axis(tmp_path):
    grid = torch.linspace(0, 1, 65)[:-1]
    x = torch.stack([torch.sin(2 * math.pi * k * grid) for k in (1, 2)])[:, None]
    y = 0.01 * torch.cos(2 * math.pi * grid).expand(2, 1, -1)
    pred = y + 1e-3
    fig = _fields_figure(x, y, pred, "burgers")
    assert len(fig.axes) == 2 * 3  # input | truth vs prediction | |error|, per sample
    inp, both, err = fig.axes[:3]
    assert inp.get_title() == "input" and len(inp.get_lines()) == 1
    assert [line.get_label() for line in both.get_lines()] == ["truth", "prediction"]
    assert both.get_ylim()[1] < 0.1  # the output's own scale, not the input's
    assert err.get_title().startswith("|error|")
    assert ylabels(fig)[:2] == ["sample 0", "sample 1"]  # one channel: not named
    assert is_png(plot_fields(x, y, pred, tmp_path / "f1.png", "burgers"))


def test_fields_1d_multichannel_names_channels(tmp_path):
    x, y = torch.randn(2, 3, 32), torch.randn(2, 3, 32)
    fig = _fields_figure(x, y, y + 0.1, "three channels")
    assert len(fig.axes) == 2 * 3 * 3
    assert ylabels(fig) == [f"sample {i}\nchannel {c} of 3" for i in range(2) for c in range(3)]
    assert titles(fig)[3] == "input (channel 1 of 3)"  # the matching input channel
    assert is_png(plot_fields(x, y, y + 0.1, tmp_path / "f1c.png", "three channels"))


def test_fields_2d_caps_channels_and_shares_colour_range(tmp_path):
    x, y = torch.randn(2, 1, 16, 16), torch.randn(2, 6, 16, 16)
    pred = y + 0.05 * torch.randn_like(y)
    fig = _fields_figure(x, y, pred, "darcy")
    panels_2d = [ax for ax in fig.axes if ax.images]
    assert len(panels_2d) == 2 * 4 * 4  # 2 samples x 4 of 6 channels x (input, truth, prediction, |error|)
    assert len(fig.axes) == 2 * len(panels_2d)  # each with its colour bar
    assert ylabels(fig)[0] == "sample 0\nchannel 0 of 6" and "sample 1\nchannel 3 of 6" in ylabels(fig)
    assert "output channels 0-3 of 6 shown (2 left out)" in fig._suptitle.get_text()
    truth, guess = panels_2d[1].images[0], panels_2d[2].images[0]
    assert truth.get_clim() == guess.get_clim()
    assert panels_2d[0].get_title() == "input"
    assert is_png(plot_fields(x, y, pred, tmp_path / "f2.png", "darcy"))


def test_fields_3d_middle_slice_said_in_title(tmp_path):
    x, y = torch.randn(1, 3, 8, 8, 6), torch.randn(1, 2, 8, 8, 6)
    fig = _fields_figure(x, y, y * 0.9, "space-time")
    text = fig._suptitle.get_text()
    assert "middle slice along the last axis (index 3 of 6)" in text and "input: channel 0 of 3" in text
    assert titles(fig)[0] == "input (channel 0 of 3)"
    assert sum(1 for ax in fig.axes if ax.images) == 2 * 4
    assert is_png(plot_fields(x, y, y * 0.9, tmp_path / "f3.png", "space-time"))


def test_fields_rejects_non_fields():
    with pytest.raises(ValueError, match="spatial"):
        _fields_figure(torch.randn(4, 3), torch.randn(4, 2), torch.randn(4, 2), "vectors")


def test_matplotlib_is_not_imported_with_the_package():
    code = "import sys, kernelnn.training.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
