"""Is the machine busy? Other jobs' CPU use, measured before a comparison starts.

A wall-clock budget buys fewer steps when other processes hold cores, and threads that wait for a busy
core slow every step (on a 2-core machine with one core busy, two threads ran 20% fewer steps than
one). :func:`busy_cores` samples ``/proc/stat`` twice, ``interval`` seconds apart, while this process
sleeps, so what it sees is the other jobs; elsewhere it falls back to the 1-minute load average.
:func:`choose_threads` then leaves the busy cores alone, and the report says so at the top.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MachineLoad:
    cores: int
    busy: float  # cores' worth of CPU used by other processes
    method: str

    @property
    def free_cores(self) -> int:
        return max(1, round(self.cores - self.busy))

    @property
    def is_busy(self) -> bool:
        return self.busy >= 0.5

    def to_dict(self) -> dict:
        return {
            "cores": self.cores,
            "busy_cores": round(self.busy, 2),
            "free_cores": self.free_cores,
            "method": self.method,
        }


def _cpu_times(stat: str) -> tuple[float, float]:
    """``(busy, total)`` jiffies from the aggregate ``cpu`` line of ``/proc/stat``."""
    fields = [float(x) for x in stat.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - idle, total


def busy_cores(interval: float = 0.5, stat_path: str = "/proc/stat") -> MachineLoad:
    cores = os.cpu_count() or 1
    path = Path(stat_path)
    try:
        busy0, total0 = _cpu_times(path.read_text())
        time.sleep(interval)
        busy1, total1 = _cpu_times(path.read_text())
        share = (busy1 - busy0) / max(total1 - total0, 1e-9)
        return MachineLoad(cores, share * cores, f"/proc/stat over {interval:g} s")
    except (OSError, ValueError, IndexError):
        if hasattr(os, "getloadavg"):
            return MachineLoad(cores, min(os.getloadavg()[0], cores), "1-minute load average")
        return MachineLoad(cores, 0.0, "unknown (assumed idle)")


def choose_threads(load: MachineLoad) -> int:
    """One thread per core that other jobs leave free (at least one)."""
    return load.free_cores


def warning(load: MachineLoad, threads: int) -> str | None:
    """The sentence the report leads with on a busy machine (``None`` when idle)."""
    if not load.is_busy:
        return None
    return (
        f"Busy machine: other jobs used {load.busy:.1f} of {load.cores} cores when the comparison started "
        f"({load.method}); qkv used {threads} thread(s). Wall-clock budgets buy fewer steps on a busy "
        "machine, so the budgeted numbers are lower than on an idle one; rerun on an idle machine, or use a "
        "step budget (--budget 600steps), for numbers that do not depend on load."
    )
