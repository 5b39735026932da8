"""Per-epoch metrics: a CSV rewritten from the full history, and TensorBoard when it is installed."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class MetricsLog:
    def __init__(self, output_dir: Path, tensorboard: bool = True) -> None:
        self.csv_path = output_dir / "metrics.csv"
        self.tensorboard_dir = output_dir / "tensorboard" if tensorboard else None
        self.writer = None  # opened at the first write, so a run refused before training leaves no event file
        self._written: tuple[list[str], int] | None = None  # columns and rows this process wrote to the CSV

    def _tensorboard(self):
        if self.writer is None and self.tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(log_dir=str(self.tensorboard_dir))
            except ImportError:
                log.info("tensorboard is not installed; metrics go to %s only", self.csv_path)
                self.tensorboard_dir = None
        return self.writer

    def write(self, history: list[dict]) -> None:
        """Bring the CSV up to ``history`` (columns in order of first appearance): new rows are appended while the
        columns stay the same, else (and the first time in a process) the file is rewritten whole, atomically.
        Then log the newest row to TensorBoard."""
        columns: list[str] = []
        for row in history:
            columns.extend(k for k in row if k not in columns)
        if self._written is not None and self._written[0] == columns and self._written[1] <= len(history):
            with open(self.csv_path, "a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=columns).writerows(history[self._written[1]:])
        else:
            tmp = self.csv_path.with_suffix(".csv.tmp")
            with open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=columns)
                writer.writeheader()
                writer.writerows(history)
            tmp.replace(self.csv_path)
        self._written = (columns, len(history))
        writer = self._tensorboard() if history else None
        if writer is not None:
            row = history[-1]
            for key, value in row.items():
                if key != "epoch" and isinstance(value, int | float):
                    writer.add_scalar(key, value, row["epoch"])
            writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
