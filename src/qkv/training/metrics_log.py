"""The metrics log: one JSON object per line in ``RUN/metrics.jsonl`` (and TensorBoard when installed).

Lines look like ``{"step": 100, "split": "train", "loss": 2.31, "lr": 0.0007, "tokens_per_s": 11800, ...}``
or ``{"step": 500, "split": "valid", "wer": 0.31, "loss": 1.02}``. When a run resumes from step ``k``,
lines written after ``k`` by the interrupted process are dropped first, so the log tells one history.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetricsLog:
    def __init__(self, run_dir: Path, *, enabled: bool = True, truncate_after: int = 0) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.enabled = enabled
        self._tb = None
        if not enabled:
            return
        if truncate_after and self.path.exists():
            kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= truncate_after]
            self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        try:  # optional: TensorBoard only when the `tensorboard` package is installed
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))
        except ImportError:
            self._tb = None

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "split"):
                    self._tb.add_scalar(f"{record.get('split', 'train')}/{key}", value, record["step"])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of a run's metrics.jsonl."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
