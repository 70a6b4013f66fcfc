"""Where a step's time goes, by kind of work: PyTorch's profiler self time per operator, grouped.

The profiling benchmarks (``benchmarks/step_profile.py``, ``train_profile.py``, ``decode_profile.py``) sort
operators into kinds of work with a table of name fragments, profile a call, and keep each kind's median
over repeated calls (one profiled call is at the mercy of a noisy machine).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence

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
