"""Where one training step of the baby GPT goes, by kind of work, and how close its matrix products run to
this core's measured fp32 peak: the ceiling on what any training loop (qkv's, nanoGPT's) can gain here.

The step is qkv's own (:func:`qkv.bench.side_by_side.qkv_side`: forward, loss, backward, finiteness checks,
clipping, fused AdamW) on the recipe's batches. PyTorch's profiler groups its self time by operator; the
matmul rate is the FLOPs the counter attributes to ``aten::mm``/``addmm``/``bmm`` divided by their self
time, set beside the best rate of large square products on the same core
(:func:`qkv.bench.train.measure_peak_flops`).

Run from the checkout (docs/benchmarks.md; output in results/bench/step-profile-gpt.txt)::

    QKV_DATA=../shared/data taskset -c 0 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/step_profile.py
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from qkv.bench import side_by_side as sbs
from qkv.bench.train import measure_peak_flops
from qkv.bench.work_profile import kind_of
from qkv.machine import machine_info

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "tinyshakespeare-gpt.yaml"

# operator name fragment -> kind of work (first match wins)
KINDS = (
    ("scaled_dot_product", "attention kernel (SDPA)"),
    ("aten::mm", "matrix products"),
    ("aten::addmm", "matrix products"),
    ("aten::bmm", "matrix products"),
    ("gelu", "GELU"),
    ("layer_norm", "LayerNorm"),
    ("softmax", "softmax / cross-entropy"),
    ("nll_loss", "softmax / cross-entropy"),
    ("_fused_adamw", "optimizer (fused AdamW)"),
    ("embedding", "embeddings"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="profiled steps (after 5 untimed ones)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    prepared = sbs.prepare(RECIPE, [], 40)
    side = sbs.qkv_side("qkv", prepared, [], RECIPE)
    batches = prepared.batches
    for i in range(5):
        side.step(batches[i % len(batches)])

    with FlopCounterMode(display=False) as counter:
        side.step(batches[0])
    mm_flops_per_step = sum(
        count
        for op, count in counter.get_flop_counts()["Global"].items()
        if str(op).split(".")[-1] in ("mm", "addmm", "bmm")
    )

    with torch.profiler.profile() as prof:
        for i in range(args.steps):
            side.step(batches[i % len(batches)])
    by_kind: dict[str, float] = defaultdict(float)
    mm_seconds = 0.0
    for event in prof.key_averages():
        seconds = event.self_cpu_time_total / 1e6
        by_kind[kind_of(event.key, KINDS)] += seconds
        if event.key in ("aten::mm", "aten::addmm", "aten::bmm"):
            mm_seconds += seconds
    total = sum(by_kind.values())
    peak = measure_peak_flops()
    mm_rate = mm_flops_per_step * args.steps / mm_seconds

    info = machine_info(torch.device("cpu"))
    print(f"# {RECIPE.name}, qkv's training step, {args.steps} steps profiled, 1 thread; {info.get('cpu')}")
    print(f"step: {1000 * total / args.steps:.1f} ms of operator self time (profiler on)")
    for kind, seconds in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:45s} {1000 * seconds / args.steps:7.2f} ms  {100 * seconds / total:5.1f} %")
    print(f"matrix products: {mm_flops_per_step / 1e9:.2f} GFLOP per step at {mm_rate / 1e9:.0f} GFLOP/s")
    print(f"peak of large square fp32 products on this core: {peak / 1e9:.0f} GFLOP/s")
    share = by_kind["matrix products"] / total
    print(
        f"ceiling: with every non-matmul operator free, a step could be at most x{1 / share:.2f} faster; "
        f"the matrix products themselves run at {100 * mm_rate / peak:.0f} % of the measured peak"
    )


if __name__ == "__main__":
    main()
