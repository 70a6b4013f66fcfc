"""Before/after measurements for the lever scripts under ``benchmarks/``: two sides timed in alternated
rounds (the machine is noisy: the order flips every round, and a ratio is taken within a round), and the
result written as JSON with the commit and the machine."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def alternate(sides: Mapping[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each side's call, once per round, the order of the two sides flipping every round."""
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(rounds):
        for name in list(sides)[:: 1 if round_ % 2 == 0 else -1]:
            start = time.perf_counter()
            sides[name]()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def speedups(seconds: Mapping[str, list[float]]) -> dict[str, Any]:
    """``before / after`` within each round (the first side is *before*), and their median."""
    before, after = seconds.values()
    ratios = [b / a for b, a in zip(before, after, strict=True)]
    return {"speedup_median": statistics.median(ratios), "speedup_rounds": ratios}


def write_result(out: Path, record: dict[str, Any]) -> None:
    """Write ``record`` with the git commit and the machine added, as indented JSON."""
    from qkv.machine import commit, machine_info

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record | {"commit": commit(), "machine": machine_info("cpu")}, indent=1) + "\n")
    print(f"wrote {out}")
