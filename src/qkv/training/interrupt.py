"""Stopping a run gracefully: Ctrl-C (SIGINT) or SIGTERM finish the current optimizer step, write
``checkpoints/last`` and then stop, so an interrupted run loses no work and resumes exactly with
``--resume``. A second Ctrl-C stops at once (the last checkpoint written before it is still intact:
checkpoints are replaced atomically). ``kill -9`` cannot be caught; it loses the steps since the last
checkpoint, which ``training.save_every`` bounds.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopRequest:
    """Context manager that turns SIGINT/SIGTERM into a flag the training loop checks between steps."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # signals are only delivered there
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt  # asked twice: stop now
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()
