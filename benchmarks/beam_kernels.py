"""The kernels beside the model in one beam-search step, timed alone: what rewriting the search loop could buy.

At the Marian size of ``qkv bench decode`` (batch 32 x beam 5 = 160 rows, 8 heads of 32 dims, 8,000 tokens),
alternating the two sides of each pair in every round:

* the cache copies of one step: ``index_select`` then ``torch.cat`` (before) against the one fused copy of
  ``qkv.attention.KVCache`` (after), at 10 and 30 cached positions;
* the candidate search: one ``topk`` over ``(32, 5 x 8000)`` against a per-beam ``topk`` over ``(160, 8000)``;
* normalising the scores: ``log_softmax`` against the ``logsumexp`` a top-k-first search would use.

    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/beam_kernels.py > results/bench/beam-kernels.txt
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from qkv.attention.kv_cache import _select_and_extend
from qkv.machine import commit

ROWS, HEADS, DIM, VOCAB, BATCH = 160, 8, 32, 8000, 32


def _microseconds(fn: Callable[[], object], reps: int = 100) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps * 1e6


def _pair(name: str, before: Callable[[], object], after: Callable[[], object], rounds: int = 5) -> None:
    times: dict[str, list[float]] = {"before": [], "after": []}
    for round_ in range(rounds):
        order = [("before", before), ("after", after)][:: 1 if round_ % 2 == 0 else -1]
        for side, fn in order:
            times[side].append(_microseconds(fn))
    b, a = statistics.median(times["before"]), statistics.median(times["after"])
    print(f"{name:58s} {b:8.0f} us  {a:8.0f} us  x{b / a:.2f}")


def main() -> None:
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    print(f"# commit {commit()}, one thread, torch {torch.__version__}; medians of 5 alternated rounds x 100 calls")
    print(f"{'pair (before / after)':58s} {'before':>11s} {'after':>11s}  before/after")
    rows = torch.randint(0, ROWS, (ROWS,), generator=gen)
    for cached in (10, 30):
        k = torch.randn(ROWS, HEADS, cached, DIM, generator=gen)
        new = torch.randn(ROWS, HEADS, 1, DIM, generator=gen)
        assert torch.equal(torch.cat([k.index_select(0, rows), new], 2), _select_and_extend(k, rows, new))
        _pair(
            f"cache copies, {cached} positions: select + cat / fused",
            lambda k=k, new=new: torch.cat([k.index_select(0, rows), new], dim=2),
            lambda k=k, new=new: _select_and_extend(k, rows, new),
        )
    scores = torch.randn(ROWS, VOCAB, generator=gen)
    _pair(
        "topk: over (32, 40000) / per beam over (160, 8000)",
        lambda: scores.view(BATCH, -1).topk(10, dim=-1),
        lambda: scores.topk(10, dim=-1),
    )
    _pair("normalise: log_softmax / logsumexp", lambda: scores.log_softmax(-1), lambda: scores.logsumexp(-1))


if __name__ == "__main__":
    main()
