"""Where a step's time goes, by kind of work: PyTorch's profiler self time per operator, grouped.

The profiling benchmarks (``benchmarks/step_profile.py``, ``train_profile.py``, ``decode_profile.py``) sort
operators into kinds of work with a table of name fragments, profile a call, and keep each kind's median
over repeated calls (one profiled call is at the mercy of a noisy machine).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

Kinds = Sequence[tuple[str, str]]  # (operator name fragment, kind of work); the first match wins
OTHER = "other (element-wise, copies, bookkeeping)"


def kind_of(name: str, kinds: Kinds) -> str:
    """The kind of work of the operator ``name`` (``OTHER`` when no fragment matches)."""
    return next((kind for fragment, kind in kinds if fragment in name), OTHER)


def profile_by_kind(call: Callable[[], object], kinds: Kinds) -> dict[str, float]:
    """Milliseconds of profiler self time per kind of work in one ``call()``, largest first."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        call()
    by_kind: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        by_kind[kind_of(event.key, kinds)] += event.self_cpu_time_total / 1e3
    return dict(sorted(by_kind.items(), key=lambda item: item[1], reverse=True))


def median_by_kind(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each kind's median over profiled runs (a kind missing from a run counts 0 there), largest first."""
    kinds = {kind for run in runs for kind in run}
    medians = {kind: statistics.median(run.get(kind, 0.0) for run in runs) for kind in kinds}
    return dict(sorted(medians.items(), key=lambda item: item[1], reverse=True))


def kind_table(title: str, sides: dict[str, dict[str, float]]) -> str:
    """The milliseconds of every kind of work, one row per kind and one column per side, as text."""
    rows = [f"  {title:48s}" + "".join(f" {name:>10s}" for name in sides)]
    for kind in dict.fromkeys(kind for by_kind in sides.values() for kind in by_kind):
        rows.append(f"  {kind:48s}" + "".join(f" {by_kind.get(kind, 0.0):10.1f}" for by_kind in sides.values()))
    return "\n".join(rows)


def timed_then_profiled(
    calls: Mapping[str, Callable[[], object]], rounds: int, kinds: Kinds
) -> tuple[dict[str, list[float]], dict[str, list[dict[str, float]]]]:
    """Per round: every call timed without the profiler (the order flipping each round), then every call
    profiled by kind of work. Returns the seconds and the profiles (ms by kind), one entry per round."""
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    profiles: dict[str, list[dict[str, float]]] = {name: [] for name in calls}
    for r in range(rounds):
        order = list(calls)[:: 1 if r % 2 == 0 else -1]
        for name in order:
            start = time.perf_counter()
            calls[name]()
            seconds[name].append(time.perf_counter() - start)
        for name in order:
            profiles[name].append(profile_by_kind(calls[name], kinds))
    return seconds, profiles


def ceiling_line(needed_ms: list[float], ceilings: list[float], peer: str) -> str:
    """One line: qkv's median time in the work every side must do, and the ceiling over ``peer``."""
    return (
        f"  qkv's time in the work every side must do: {statistics.median(needed_ms):.1f} ms -> ceiling "
        f"x{statistics.median(ceilings):.2f} [{min(ceilings):.2f} .. {max(ceilings):.2f}] over {peer}"
    )
