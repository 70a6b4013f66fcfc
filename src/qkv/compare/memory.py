"""Peak memory of a block of code, measured honestly on CPU and GPU.

- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` -- the peak of the caching
  allocator's live tensors, exactly what the block needed.
- CPU (Linux): free heap memory is first handed back to the system (glibc ``malloc_trim(0)``), so that
  memory the allocator kept from earlier work cannot hide new use; then the process's peak resident set
  size (``VmHWM`` in ``/proc/self/status``) is reset to the current RSS by writing ``5`` to
  ``/proc/self/clear_refs``. After the block, ``VmHWM - RSS before`` is the extra memory the block
  touched (tensors, autograd buffers, allocator overhead) -- real pages, as the operating system sees them.
- Elsewhere: unknown (``None``), never a made-up number.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import re
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_mib(field: str) -> float | None:
    try:
        match = re.search(rf"{field}:\s+(\d+)\s+kB", _STATUS.read_text())
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _trim_heap() -> None:
    """Return free heap pages to the system (glibc only; elsewhere nothing to do)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _reset_cpu_peak() -> bool:
    gc.collect()
    _trim_heap()
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


class PeakMemory:
    """``with PeakMemory(device) as pm: ...``; then ``pm.mib`` is the peak extra memory in MiB, or None.

    ``pm.method`` says how it was measured (``"cuda max_memory_allocated"``, ``"peak RSS delta"``, or
    ``"unavailable"``).
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.mib: float | None = None
        self.method = "unavailable"
        self._base: float | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device) / 2**20
            self.method = "cuda max_memory_allocated"
        elif _reset_cpu_peak():
            self._base = _status_mib("VmRSS")
            self.method = "peak RSS delta" if self._base is not None else "unavailable"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._base is None:
            return
        peak: float | None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            peak = _status_mib("VmHWM")
        if peak is not None:
            self.mib = max(peak - self._base, 0.0)
