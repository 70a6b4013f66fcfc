"""The metrics log: one JSON object per line in ``RUN/metrics.jsonl`` (and TensorBoard when installed).

Lines look like ``{"step": 100, "split": "train", "loss": 2.31, "lr": 0.0007, "tokens_per_s": 11800, ...}``
or ``{"step": 500, "split": "valid", "wer": 0.31, "loss": 1.02}``. When a run resumes from step ``k``,
lines written after ``k`` by the interrupted process are dropped first, so the log tells one history.
A last line cut short by a kill in the middle of a write (no newline, not valid JSON) is dropped by the
readers and by resuming; any other line that is not a JSON object is an error naming the file and line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qkv.atomic import atomic_write_text
from qkv.errors import UserError


class MetricsLog:
    def __init__(self, run_dir: Path, *, enabled: bool = True, truncate_after: int = 0) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.enabled = enabled
        self._tb = None
        if not enabled:
            return
        if truncate_after and self.path.exists():
            kept = [json.dumps(r) for r in _records(self.path) if r.get("step", 0) <= truncate_after]
            # atomically: cut off in place by a kill or a full disk, the log would lose its whole history
            atomic_write_text(self.path, "".join(line + "\n" for line in kept))
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
    """All records of a run's metrics.jsonl (without a last line torn by a kill)."""
    return _records(Path(run_dir) / "metrics.jsonl")


def _records(path: Path) -> list[dict[str, Any]]:
    from qkv.data.textio import decode, read_bytes

    text = decode(read_bytes(path), path)
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            if number == len(lines):  # no newline after it: a write cut short by a kill
                continue
            raise UserError(f"{path}:{number}: not a JSON object (every line of a metrics log is one)")
        records.append(record)
    return records
