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
import itertools
import statistics
from collections.abc import Callable
from pathlib import Path

import torch

from qkv.bench import side_by_side as sbs
from qkv.bench.before_after import write_result
from qkv.bench.peers import PEERS
from qkv.bench.work_profile import OTHER, ceiling_line, kind_table, median_by_kind, timed_then_profiled

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


def stepper(side: sbs.Side, batches: list[list], steps: int) -> Callable[[], None]:
    """A call that trains ``side`` for ``steps`` steps on the next batches of its own pass over ``batches``
    (every side meets the same batches in the same order)."""
    upcoming = itertools.cycle(batches)

    def run() -> None:
        for _ in range(steps):
            side.step(next(upcoming))

    return run


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
    for side in sides:
        stepper(side, prepared.batches, args.warmup)()
    calls = {side.name: stepper(side, prepared.batches, args.steps) for side in sides}
    rounds_s, rounds_ms = timed_then_profiled(calls, args.rounds, KINDS)
    seconds = {name: [s / args.steps for s in times] for name, times in rounds_s.items()}  # per step
    profiles = {
        name: [{k: ms / args.steps for k, ms in run.items()} for run in runs] for name, runs in rounds_ms.items()
    }
    needed = [sum(ms for kind, ms in run.items() if kind != OTHER) for run in profiles["qkv"]]  # per round
    ceilings = [1e3 * peer_s / need for peer_s, need in zip(seconds[args.peer], needed, strict=True)]
    ratios = [p / q for p, q in zip(seconds[args.peer], seconds["qkv"], strict=True)]
    kinds = {name: median_by_kind(runs) for name, runs in profiles.items()}

    step_ms = {name: 1e3 * statistics.median(times) for name, times in seconds.items()}
    print(f"{args.case} ({recipe.name}) against {args.peer}, {args.rounds} rounds x {args.steps} step(s), 1 thread")
    print(f"  step: qkv {step_ms['qkv']:.1f} ms, {args.peer} {step_ms[args.peer]:.1f} ms (qkv / peer "
          f"x{statistics.median(ratios):.2f} [{min(ratios):.2f} .. {max(ratios):.2f}])")  # fmt: skip
    print(kind_table("kind of work (profiler self time, ms per step)", kinds))
    print(ceiling_line(needed, ceilings, args.peer))
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
