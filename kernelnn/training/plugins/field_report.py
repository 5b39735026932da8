"""Whole-field metrics and pictures of a field-fitting run, after testing (on the tested weights):

- an image (``field_layout["kind"] == "image"``): PSNR and SSIM of the reconstruction of every pixel, and a PNG of
  truth, reconstruction and error;
- a signed distance field (``"sdf"``): on a ``grid``-point grid over ``[-1, 1]^3``, the IoU of the insides and the
  Chamfer distance between the two surfaces (the zero crossings on the grid's edges), and a PNG of slices;
- classification on the sphere (``"sphere"``): accuracy by 20-degree latitude band on each test set, and a world map
  of the predicted classes with the test points the model got wrong.

Data that describes no field layout is left alone. Results go into the run summary under ``plugins.field_report``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from kernelnn import field_metrics
from kernelnn.training.config import require
from kernelnn.training.plugins.base import TrainingPlugin


@dataclass
class FieldReportConfig:
    enabled: bool = True
    grid: int = 96  # points per axis of the SDF evaluation grid
    map_step: float = 1.0  # degrees between the world map's grid points

    def __post_init__(self) -> None:
        require(isinstance(self.grid, int) and 8 <= self.grid <= 512, "grid", self.grid,
                "must be an int in [8, 512] (points per axis of the SDF grid)")
        require(0.05 <= self.map_step <= 10, "map_step", self.map_step, "must be in [0.05, 10] degrees")


class FieldReport(TrainingPlugin):
    name = "field_report"
    Config = FieldReportConfig

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def after_fit(self, trainer) -> dict[str, Any] | None:
        layout = getattr(trainer.data, "field_layout", None)
        if not layout or not trainer.dist.is_main:
            return None
        kind = layout.get("kind")
        report = {"image": self._image, "sdf": self._sdf, "sphere": self._sphere}.get(kind)
        if report is None:
            return None
        out = report(trainer, layout)
        def fmt(v):
            if isinstance(v, dict):
                return "{" + ", ".join(f"{k}: {fmt(x)}" for k, x in v.items()) + "}"
            return f"{v:.4g}" if isinstance(v, float) else str(v)

        shown = "  ".join(f"{k}={fmt(v)}" for k, v in out.items() if k != "plot")
        trainer.log(f"field report ({kind}, tested weights): {shown}")
        return out

    @staticmethod
    def _predict(trainer, x: torch.Tensor, chunk: int = 2**16) -> torch.Tensor:
        """The model on many points, in chunks (a million grid points at once would hold every layer's activations
        for all of them)."""
        return torch.cat([trainer.predict(part).cpu() for part in x.split(chunk)])

    @staticmethod
    def _plot_path(trainer, name: str):
        if not trainer.options.plots:
            return None
        directory = trainer.output_dir / "plots"
        directory.mkdir(parents=True, exist_ok=True)
        return directory / name

    def _image(self, trainer, layout: dict) -> dict[str, Any]:
        from kernelnn.training.plots import plot_image_fit

        x, y = trainer.data.tests["test"].tensors
        height, width = layout["shape"]
        if len(x) != height * width:
            return {"skipped": f"the test set has {len(x)} points, not the image's {height} x {width} pixels"}
        value_range = layout.get("value_range", 1.0)
        truth = y.T.reshape(-1, height, width)
        prediction = self._predict(trainer, x).float().T.reshape(-1, height, width)
        clipped = prediction.clamp(0, value_range)
        out = {"psnr": field_metrics.psnr(clipped, truth, value_range),
               # SSIM's 11-pixel window needs an image at least that large
               "ssim": field_metrics.ssim(clipped, truth, value_range) if min(height, width) >= 11 else None}
        path = self._plot_path(trainer, "image_fit.png")
        if path is not None:
            ssim = "n/a" if out["ssim"] is None else f"{out['ssim']:.4f}"
            out["plot"] = str(plot_image_fit(truth, prediction, path, f"{trainer.data.name}: PSNR "
                                             f"{out['psnr']:.2f} dB, SSIM {ssim}"))
        return out

    def _sdf(self, trainer, layout: dict) -> dict[str, Any]:
        from kernelnn.data.sdf import shape_sdf
        from kernelnn.training.plots import plot_sdf_slices

        r = self.config.grid
        points = field_metrics.grid_points(r)
        truth = shape_sdf(layout["shape"], points.double()).float().reshape(r, r, r)
        prediction = self._predict(trainer, points).float().reshape(r, r, r)
        true_surface = field_metrics.zero_crossings(truth)
        predicted_surface = field_metrics.zero_crossings(prediction)
        out = {"grid": r, "iou": field_metrics.sdf_iou(prediction, truth),
               "chamfer": field_metrics.chamfer_distance(predicted_surface, true_surface)}
        path = self._plot_path(trainer, "sdf_slices.png")
        if path is not None:
            out["plot"] = str(plot_sdf_slices(truth, prediction, path, f"{trainer.data.name}: IoU {out['iou']:.4f}, "
                                              f"Chamfer {out['chamfer']:.2e} ({r}^3 grid)"))
        return out

    def _sphere(self, trainer, layout: dict) -> dict[str, Any]:
        from kernelnn.training.plots import plot_world_map

        out: dict[str, Any] = {}
        for name, data in trainer.data.tests.items():
            x, y = data.tensors
            correct = self._predict(trainer, x).argmax(-1) == y
            out[f"{name}/accuracy_by_latitude"] = field_metrics.accuracy_by_latitude(x, correct)
        path = self._plot_path(trainer, "world_map.png")
        if path is not None:
            step = self.config.map_step
            lon = torch.arange(-180 + step / 2, 180, step)
            lat = torch.arange(-90 + step / 2, 90, step)
            grid = torch.stack(torch.meshgrid(lat, lon, indexing="ij")[::-1], -1).reshape(-1, 2)
            classes = self._predict(trainer, grid).argmax(-1).reshape(len(lat), len(lon))
            x, y = trainer.data.tests["test"].tensors
            correct = self._predict(trainer, x).argmax(-1) == y
            out["plot"] = str(plot_world_map(classes, x, correct, path, trainer.data.name))
        return out
