"""bf16 autocast on the CPU against float32: qkv's whole training step on real recipes, alternated.

``training.precision: bf16`` runs each forward (and so its backward) under ``torch.autocast("cpu",
torch.bfloat16)``: matrix products in bfloat16, parameters, optimizer state and loss in float32. Whether
that pays depends on the CPU: with AMX tiles (Intel Sapphire Rapids and later) a bf16 product runs on the
matrix units, without them it is emulated on the vector units and slower than float32. This script trains
two copies of each recipe's model -- same initial weights, same batches drawn once from qkv's own stream --
one in float32 and one in bf16, alternating rounds of ``--steps`` optimizer steps, and prints the ratio of
their times (float32 / bf16: above 1 means bf16 is faster) with the losses both copies reached.

    OMP_NUM_THREADS=2 python benchmarks/bf16_cpu.py --threads 2 --rounds 8 --out results/bench/bf16-cpu.json
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from qkv.bench.before_after import alternate, speedups, write_result
from qkv.bench.side_by_side import prepare

RECIPES = (  # one of each family this CPU trains: recurrent LM, encoder-decoder Transformer, GPT, attention GRU
    "ptb-lstm-medium-tied.yaml",
    "g2p-transformer.yaml",
    "tinyshakespeare-gpt.yaml",
    "multi30k-gru-attention.yaml",
)


def amx() -> bool:
    """Whether the CPU reports AMX bf16 tiles (Linux ``/proc/cpuinfo``)."""
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def sides(recipe: Path, n_batches: int) -> tuple[dict, int]:
    """The float32 and bf16 training steps of ``recipe`` (qkv's own step, as ``qkv bench train --peers`` times
    it: same initial weights, same batches) with the losses each records, and the tokens per step."""
    from qkv.bench.side_by_side import qkv_side

    prepared = prepare(recipe, [], n_batches, peers=False)
    steps = {}
    for precision in ("fp32", "bf16"):
        side, losses = qkv_side(precision, prepared, [f"training.precision={precision}"], recipe), []
        steps[precision] = (
            lambda side=side, losses=losses: losses.append(side.step(prepared.batches[len(losses) % n_batches])),
            losses,
        )
    return steps, sum(mb.global_tokens for mb in prepared.batches[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", type=Path, default=Path("configs"), help="directory holding the recipes")
    p.add_argument("--recipes", default=",".join(RECIPES), help="comma list of recipe files (default: four families)")
    p.add_argument("--rounds", type=int, default=8, help="alternating rounds per recipe (default 8)")
    p.add_argument("--steps", type=int, default=3, help="optimizer steps per side and round (default 3)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per side first (default 2)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"CPU reports AMX bf16 tiles: {amx()}; torch threads: {torch.get_num_threads()}")
    results = {}
    for recipe in [r.strip() for r in args.recipes.split(",") if r.strip()]:
        steps, tokens = sides(args.configs / recipe, args.rounds * args.steps + args.warmup)
        for step, _ in steps.values():
            for _ in range(args.warmup):
                step()
        calls = {name: (lambda step=step: [step() for _ in range(args.steps)]) for name, (step, _) in steps.items()}
        seconds = alternate(calls, args.rounds)  # fp32 first: speedup = fp32 time / bf16 time
        r = results[recipe] = {
            "tokens_per_step": tokens,
            "seconds_per_round": seconds,
            **speedups(seconds),
            "last_loss": {name: losses[-1] for name, (_, losses) in steps.items()},
        }
        per_step = {name: statistics.median(t) / args.steps for name, t in seconds.items()}
        ratios = r["speedup_rounds"]
        print(f"{recipe}: " + ", ".join(f"{n} {s * 1e3:.0f} ms/step ({tokens / s:,.0f} tokens/s)" for n, s in
              per_step.items()) + f"; fp32/bf16 x{r['speedup_median']:.2f} (rounds {min(ratios):.2f} .. "
              f"{max(ratios):.2f}); loss after {len(steps['fp32'][1])} steps: "
              f"fp32 {r['last_loss']['fp32']:.4f}, bf16 {r['last_loss']['bf16']:.4f}")  # fmt: skip
    if args.out:
        write_result(
            args.out,
            {
                "benchmark": "qkv's training step, float32 against bf16 autocast on the CPU (fp32 / bf16 time)",
                "amx_bf16": amx(),
                "threads": torch.get_num_threads(),
                "settings": vars(args) | {"out": str(args.out), "configs": str(args.configs)},
                "recipes": results,
            },
        )


if __name__ == "__main__":
    main()
