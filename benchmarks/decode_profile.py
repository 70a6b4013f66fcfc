"""Where batched beam search goes, in qkv and in Hugging Face ``generate`` with the same weights, by kind of
work -- and the most any search loop could gain over ``generate`` on this machine.

Both sides run the same search (``qkv bench decode --peers``'s models and settings: Marian at the Multi30k
size and GPT-2 at the baby-GPT size, random weights, batch 32, beam 5, 40 new tokens, same outputs). Each
round (``--rounds``) times each side's search without the profiler, the order alternating, then profiles
one search per side (PyTorch's profiler groups self time by operator; each kind of work keeps its median
over the rounds).

Most of a step is work both sides must do: the model's matrix products and attention, the top-k, the
log-softmax, the normalisations and activations, and one copy of the self-attention cache per step (a
beam that changes parent needs its keys and values where its new parent's are; qkv copies once, ``generate``
twice). The ceiling is ``generate``'s whole search divided by qkv's time in that work alone, in the same
round: what qkv would reach if everything else it does cost nothing.

Run from the checkout (docs/benchmarks.md; JSON in results/bench/decode-profile.json)::

    taskset -c 0 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/decode_profile.py --rounds 8 \\
        --out results/bench/decode-profile.json
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from qkv.bench.before_after import write_result
from qkv.bench.decode import _hf_decode, _qkv_decode, peer_inputs, same_weights
from qkv.bench.work_profile import ceiling_line, kind_table, median_by_kind, timed_then_profiled

# operator name fragment -> kind of work (first match wins)
KINDS = (
    ("scaled_dot_product", "attention kernel (SDPA)"),
    ("aten::mm", "matrix products"),
    ("aten::addmm", "matrix products"),
    ("aten::bmm", "matrix products"),
    ("aten::index_select", "cache copies (index_select, cat)"),
    ("aten::cat", "cache copies (index_select, cat)"),
    ("aten::topk", "top-k"),
    ("log_softmax", "log-softmax"),
    ("layer_norm", "LayerNorm"),
    ("gelu", "activations"),
    ("aten::tanh", "activations"),
    ("aten::pow", "activations"),
    ("clamp_min", "activations"),
)
NEEDED = (
    "matrix products",
    "attention kernel (SDPA)",
    "top-k",
    "log-softmax",
    "LayerNorm",
    "activations",
    "cache copies (index_select, cat)",  # qkv's: one copy per step, plus the few other selects (a lower ceiling)
)


def bench(
    name: str, beam: int, rounds: int, max_len: int, batch: int, folder: Path, *, vocab: int = 8000, tiny: bool = False
) -> dict:
    """``rounds`` rounds, each: both searches timed (order alternating), then both profiled. The ratio and the
    ceiling are taken within a round (the machine drifts between rounds), then their medians."""
    hf, qkv = same_weights(name, vocab, tiny, folder)
    inputs, seq2seq = peer_inputs(name, vocab, batch)
    searches = {
        "qkv": lambda: _qkv_decode(qkv, inputs, beam, max_len, seq2seq),
        "hf": lambda: _hf_decode(hf, inputs, beam, max_len, seq2seq),
    }
    outputs = {side: search() for side, search in searches.items()}  # warm-up, and the outputs compared
    seconds, profiles = timed_then_profiled(searches, rounds, KINDS)
    needed_ms = [sum(run.get(kind, 0.0) for kind in NEEDED) for run in profiles["qkv"]]  # per round
    ceilings = [1e3 * hf_s / needed for hf_s, needed in zip(seconds["hf"], needed_ms, strict=True)]
    return {
        "model": name,
        "beam": beam,
        "wall_ms": {side: 1e3 * statistics.median(times) for side, times in seconds.items()},
        "wall_ms_rounds": {side: [1e3 * t for t in times] for side, times in seconds.items()},
        "qkv_over_hf": statistics.median(h / q for h, q in zip(seconds["hf"], seconds["qkv"], strict=True)),
        "identical_outputs": outputs["qkv"] == outputs["hf"],
        "profile_ms_by_kind": {side: median_by_kind(runs) for side, runs in profiles.items()},
        "qkv_needed_ms_rounds": needed_ms,
        "ceiling_qkv_over_hf": statistics.median(ceilings),
        "ceiling_rounds": ceilings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="marian,gpt2")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=6, help="rounds of one timed and one profiled search per side")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            result = bench(name, args.beam, args.rounds, args.max_len, args.batch, Path(tmp))
            results.append(result)
            wall = result["wall_ms"]
            print(
                f"\n{name}, beam {args.beam}, batch {args.batch}: qkv {wall['qkv']:.0f} ms, generate {wall['hf']:.0f} "
                f"ms per search (x{result['qkv_over_hf']:.2f}; identical outputs: {result['identical_outputs']})"
            )
            print(kind_table("kind of work (profiler self time, ms)", result["profile_ms_by_kind"]))
            print(ceiling_line(result["qkv_needed_ms_rounds"], result["ceiling_rounds"], "HF generate"))
    if args.out:
        record = {
            "benchmark": "beam search by kind of work, qkv and HF generate",
            "settings": vars(args) | {"out": str(args.out)},
            "results": results,
        }
        write_result(args.out, record)


if __name__ == "__main__":
    main()
