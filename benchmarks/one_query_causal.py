"""Cached decoding without a causal mask for its one query: before/after, greedy and beam 5, one run.

At a cached decoding step each self-attention call has one query, the newest position, and the causal mask
(aligned bottom-right) lets it see every key: it is all True. ``attend`` used to build it anyway, and a
mask sends PyTorch's fused kernel down its masked path (plus qkv's check for rows with no key); now
``attend`` drops ``is_causal`` when ``T_q = 1``. The *before* side restores the old call by passing that
all-True mask explicitly. Models and inputs are ``qkv bench decode --peers``'s (Marian at the Multi30k size,
GPT-2 at the baby-GPT size, random weights, batch 32, 40 new tokens); the outputs must be identical.

    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/one_query_causal.py --rounds 8 \\
        --out results/bench/one-query-causal.json
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import Tensor

import qkv.attention.multi_head as multi_head
from qkv.attention.core import attend
from qkv.bench.before_after import alternate, speedups, write_result
from qkv.bench.decode import _qkv_decode, peer_inputs, same_weights


def _attend_with_full_causal_mask(q: Tensor, k: Tensor, v: Tensor, *, mask=None, is_causal=False, **kwargs):
    """``attend`` as before the change: one query still gets its (all-True) causal mask."""
    if is_causal and q.size(-2) == 1:
        everything = torch.ones(1, k.size(-2), dtype=torch.bool, device=q.device)  # (1, T_k)
        mask, is_causal = (everything if mask is None else mask & everything), False
    return attend(q, k, v, mask=mask, is_causal=is_causal, **kwargs)


@contextlib.contextmanager
def full_causal_mask() -> Iterator[None]:
    multi_head.attend = _attend_with_full_causal_mask  # type: ignore[assignment]
    try:
        yield
    finally:
        multi_head.attend = attend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="marian,gpt2")
    parser.add_argument("--beams", default="1,5")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            _, model = same_weights(name, 8000, False, Path(tmp))
            inputs, seq2seq = peer_inputs(name, 8000, 32)
            for beam in (int(b) for b in args.beams.split(",")):
                decode = functools.partial(_qkv_decode, model, inputs, beam, 40, seq2seq)
                cases.append(measure(name, beam, decode, args))
    if args.out:
        settings = vars(args) | {"out": str(args.out)}
        write_result(args.out, {"benchmark": "one query, no causal mask", "settings": settings, "cases": cases})


def measure(name: str, beam: int, decode: Callable[[], object], args: argparse.Namespace) -> dict:
    """Time ``decode`` before and after the change, alternated; check the outputs are the same."""
    outputs: dict[str, object] = {}

    def search(side: str) -> None:
        with full_causal_mask() if side == "before" else contextlib.nullcontext():
            outputs[side] = decode()

    search("before"), search("after")  # warm-up
    seconds = alternate({"before": lambda: search("before"), "after": lambda: search("after")}, args.rounds)
    case = {"model": name, "beam": beam, "seconds": seconds, **speedups(seconds)}
    case["identical_outputs"] = outputs["before"] == outputs["after"]
    rounds = case["speedup_rounds"]
    print(
        f"{name:7s} beam {beam}: {statistics.median(seconds['before']):.3f} -> "
        f"{statistics.median(seconds['after']):.3f} s, x{case['speedup_median']:.3f} "
        f"[{min(rounds):.2f} .. {max(rounds):.2f}], identical outputs: {case['identical_outputs']}"
    )
    return case


if __name__ == "__main__":
    main()
