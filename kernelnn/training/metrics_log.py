"""Per-epoch metrics: a CSV rewritten from the full history, and TensorBoard when it is installed."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class MetricsLog:
    def __init__(self, output_dir: Path, tensorboard: bool = True) -> None:
        self.csv_path = output_dir / "metrics.csv"
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(log_dir=str(output_dir / "tensorboard"))
            except ImportError:
                log.info("tensorboard is not installed; metrics go to %s only", self.csv_path)

    def write(self, history: list[dict]) -> None:
        """Rewrite the CSV (columns in order of first appearance) and log the newest row to TensorBoard."""
        columns: list[str] = []
        for row in history:
            columns.extend(k for k in row if k not in columns)
        tmp = self.csv_path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(history)
        tmp.replace(self.csv_path)
        if self.writer is not None and history:
            row = history[-1]
            for key, value in row.items():
                if key != "epoch" and isinstance(value, int | float):
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
