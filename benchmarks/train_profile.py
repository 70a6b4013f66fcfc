"""Where a training step goes, in qkv and in a peer of ``qkv bench train --peers`` on the same batches, by kind
of work -- and the most any training loop could gain over that peer on this machine.

Both steps are the ones ``qkv bench train --peers`` times (:mod:`qkv.bench.side_by_side`: qkv's own
``train_step`` with fused AdamW; the peer as its library's users write it, with PyTorch's default AdamW), on
the same list of batches from the recipe. Each round times ``--steps`` steps of each side without the
profiler (the order alternating), then profiles as many; each kind of work keeps its median over rounds.

The model's arithmetic is work every side must do: matrix products, the attention kernel, softmax and
cross-entropy, LayerNorm, activations, dropout masks, embeddings, the optimizer. (Dropout's scaling and the
optimizer's element-wise updates when they run as plain ``mul``/``div`` operators are counted as glue: the
ceiling is then a little high, the safe side for a claim that a goal is out of reach.) The ceiling is the peer's
step divided by qkv's time in that work alone, in the same round: what qkv would reach if everything else
it does (element-wise glue, copies, bookkeeping) cost nothing.

Run from the checkout (docs/benchmarks.md; JSON in results/bench/)::

    QKV_DATA=../shared/data taskset -c 0 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_profile.py \\
        --case transformer --peer hf-marian --rounds 6 --out results/bench/train-profile-transformer.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from qkv.bench import side_by_side as sbs
from qkv.bench.before_after import write_result
from qkv.bench.peers import PEERS
from qkv.bench.work_profile import OTHER, kind_table, median_by_kind, profile_by_kind

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
KINDS = (
    ("scaled_dot_product", "attention kernel (SDPA)"),
    ("aten::mm", "matrix products"),
    ("aten::addmm", "matrix products"),
    ("aten::bmm", "matrix products"),
    ("softmax", "softmax / cross-entropy"),
    ("nll_loss", "softmax / cross-entropy"),
    ("layer_norm", "LayerNorm"),
    ("gelu", "activations"),
    ("relu", "activations"),
    ("clamp_min", "activations"),  # aten::relu's work on CPU
    ("threshold_backward", "activations"),
    ("sigmoid", "activations"),  # the GRU's and LSTM's gates when they run as separate operators
    ("tanh", "activations"),
    ("bernoulli", "dropout masks"),
    ("embedding", "embeddings"),
    ("index_select", "embeddings"),  # the embedding lookup's work on CPU
    ("adamw", "optimizer"),
    ("_foreach_", "optimizer"),  # PyTorch's default AdamW on the peers' side
    ("lstm", "recurrent cells"),
    ("gru", "recurrent cells"),
    ("rnn", "recurrent cells"),
)


def steps_of(side: sbs.Side, batches: list[list], start: int, steps: int) -> None:
    for i in range(steps):
        side.step(batches[(start + i) % len(batches)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=sorted(sbs.PEER_CASES), default="transformer")
    parser.add_argument("--peer", default="hf-marian", help="a peer of the case (qkv bench train --peers)")
    parser.add_argument("--steps", type=int, default=1, help="steps per side per round, timed and then profiled")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="change the recipe")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.peer not in PEERS[args.case]:
        parser.error(f"--peer must be one of {', '.join(PEERS[args.case])} for --case {args.case}")
    torch.set_num_threads(1)
    recipe = CONFIGS / sbs.PEER_CASES[args.case]
    prepared = sbs.prepare(recipe, args.set, args.batches)
    sides = [sbs.qkv_side("qkv", prepared, [], recipe), sbs.peer_side(args.peer, PEERS[args.case][args.peer], prepared)]
    batches = prepared.batches
    for side in sides:
        steps_of(side, batches, 0, args.warmup)
    seconds: dict[str, list[float]] = {side.name: [] for side in sides}
    profiles: dict[str, list[dict[str, float]]] = {side.name: [] for side in sides}
    for r in range(args.rounds):
        order = sides[:: 1 if r % 2 == 0 else -1]
        start = args.warmup + r * args.steps
        for side in order:
            t0 = time.perf_counter()
            steps_of(side, batches, start, args.steps)
            seconds[side.name].append((time.perf_counter() - t0) / args.steps)
        for side in order:
            profiled = profile_by_kind(lambda side=side, start=start: steps_of(side, batches, start, args.steps), KINDS)
            profiles[side.name].append({kind: ms / args.steps for kind, ms in profiled.items()})
    needed = [sum(ms for kind, ms in run.items() if kind != OTHER) for run in profiles["qkv"]]  # per round
    ceilings = [1e3 * peer_s / need for peer_s, need in zip(seconds[args.peer], needed, strict=True)]
    ratios = [p / q for p, q in zip(seconds[args.peer], seconds["qkv"], strict=True)]
    kinds = {name: median_by_kind(runs) for name, runs in profiles.items()}

    step_ms = {name: 1e3 * statistics.median(times) for name, times in seconds.items()}
    print(f"{args.case} ({recipe.name}) against {args.peer}, {args.rounds} rounds x {args.steps} step(s), 1 thread")
    print(f"  step: qkv {step_ms['qkv']:.1f} ms, {args.peer} {step_ms[args.peer]:.1f} ms (qkv / peer "
          f"x{statistics.median(ratios):.2f} [{min(ratios):.2f} .. {max(ratios):.2f}])")  # fmt: skip
    print(kind_table("kind of work (profiler self time, ms per step)", kinds))
    print(
        f"  qkv's time in the model's arithmetic: {statistics.median(needed):.1f} ms -> ceiling "
        f"x{statistics.median(ceilings):.2f} [{min(ceilings):.2f} .. {max(ceilings):.2f}] over {args.peer}"
    )
    if args.out:
        record = {
            "benchmark": "training step by kind of work, qkv and a peer",
            "settings": vars(args) | {"out": str(args.out)},
            "recipe": recipe.name,
            "params": {side.name: side.params for side in sides},
            "step_ms": step_ms,
            "step_ms_rounds": {name: [1e3 * t for t in times] for name, times in seconds.items()},
            "qkv_over_peer": statistics.median(ratios),
            "qkv_over_peer_rounds": ratios,
            "profile_ms_by_kind": kinds,
            "qkv_needed_ms_rounds": needed,
            "ceiling_qkv_over_peer": statistics.median(ceilings),
            "ceiling_rounds": ceilings,
        }
        write_result(args.out, record)


if __name__ == "__main__":
    main()
