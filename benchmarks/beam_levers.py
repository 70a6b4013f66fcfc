"""Beam search levers, each measured before/after in one run.

Beam search reorders the decoder state after every step (``model.reorder``). Two levers cut its copies,
a third cuts the decoder step's kernel launches:

* ``encoder-copies``: between steps where no input finishes, the beams only move within their own
  input's block, so what the encoder computed -- the memory, the source mask and every layer's static
  cross-attention keys/values, identical for all beams of an input -- need not be copied
  (``same_rows=True``). Off = every reorder copies everything.
* ``fused-reorder``: a self-attention cache (``qkv.attention.KVCache``) only notes a reorder, and the next
  append copies the selected rows and the new position into one fresh tensor. Off = the reorder copies
  the cache (``index_select``) and the append copies it again (``torch.cat``).
* ``compiled-step``: ``decode_step`` compiled by ``torch.compile(dynamic=True)`` (inductor; gcc on CPU),
  which fuses the step's element-wise work (LayerNorms, residual adds, activations) into fewer kernels.
  Off = eager. Compiling happens in the warm-up search, whose time is reported apart (``warmup_seconds``).

This script times ``qkv.decoding.beam_search`` on the Marian model of ``qkv bench decode`` (Multi30k size:
3+3 layers, d=256, 8 heads, 8,000 tokens; random weights, random 20-token sources) with the lever on and
off, alternating the two, and checks that both give the same outputs.

    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/beam_levers.py --lever encoder-copies --rounds 5 \
        --out results/bench/beam-levers.json
    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/beam_levers.py --lever fused-reorder --rounds 8 \
        --out results/bench/beam-lever-fused-reorder.json
    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/beam_levers.py --lever compiled-step --rounds 8 \
        --out results/bench/beam-lever-compiled-step.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import Tensor

import qkv.models.transformer_stacks as stacks
from qkv.bench.decode import same_weights
from qkv.decoding import beam_search
from qkv.machine import commit, machine_info


class Wrapped(torch.nn.Module):
    """The decoding interface of ``model``, passed through; a lever overrides one method."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.kind, self.bos_id, self.eos_id, self.pad_id = model.kind, model.bos_id, model.eos_id, model.pad_id

    def encode(self, src):
        return self.model.encode(src)

    def init_state(self, encoded, batch_size):
        return self.model.init_state(encoded, batch_size)

    def decode_step(self, tokens, encoded, state):
        return self.model.decode_step(tokens, encoded, state)

    def reorder(self, encoded, state, index, *, same_rows=False):
        return self.model.reorder(encoded, state, index, same_rows=same_rows)


class CopyEverything(Wrapped):
    """The model with the ``encoder-copies`` lever off: ``reorder`` ignores ``same_rows`` and copies the encoder
    side too."""

    def reorder(self, encoded, state, index, *, same_rows=False):
        return self.model.reorder(encoded, state, index, same_rows=False)


class CompiledStep(Wrapped):
    """The model with the ``compiled-step`` lever on: ``decode_step`` goes through ``torch.compile``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__(model)
        self._step = torch.compile(model.decode_step, dynamic=True)

    def decode_step(self, tokens, encoded, state):
        return self._step(tokens, encoded, state)


class ConcatCache:
    """The cache with the ``fused-reorder`` lever off: reorders at once, then grows by concatenation."""

    def __init__(self, static: bool = False) -> None:
        self.static = static
        self.k: Tensor | None = None  # (B, H_kv, T_k, D)
        self.v: Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.size(-2)

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if self.k is None or self.v is None:
            self.k, self.v = k, v
        else:
            self.k, self.v = torch.cat([self.k, k], dim=-2), torch.cat([self.v, v], dim=-2)  # (B, H_kv, T_k + t, D)
        return self.k, self.v

    def reorder(self, index: Tensor) -> None:
        if self.k is not None and self.v is not None:
            self.k, self.v = self.k.index_select(0, index), self.v.index_select(0, index)


@contextlib.contextmanager
def concatenating_caches() -> Iterator[None]:
    """Decoder states built inside use :class:`ConcatCache` (the lever off)."""
    kept = stacks.KVCache
    stacks.KVCache = ConcatCache  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        stacks.KVCache = kept  # type: ignore[misc]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lever", choices=["encoder-copies", "fused-reorder", "compiled-step"], default="encoder-copies")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--max-len", type=int, default=40)
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    p.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    p.add_argument("--profile", action="store_true", help="also profile one search with the lever on (operator shares)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _, model = same_weights("marian", 8000, False, Path(tmp))
    src = torch.randint(4, 8000, (args.batch, 20), generator=torch.Generator().manual_seed(0))  # (B, 20)
    if args.lever == "encoder-copies":
        sides = {"copy everything (before)": CopyEverything(model), "skip encoder-side copies (after)": model}
        contexts = {name: contextlib.nullcontext for name in sides}
    elif args.lever == "fused-reorder":
        sides = {"reorder, then cat (before)": model, "reorder fused into the append (after)": model}
        contexts = dict(zip(sides, (concatenating_caches, contextlib.nullcontext), strict=True))
    else:
        sides = {"eager decode_step (before)": model, "compiled decode_step (after)": CompiledStep(model)}
        contexts = {name: contextlib.nullcontext for name in sides}
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    outputs: dict[str, list] = {}
    warmup_seconds: dict[str, float] = {}
    with torch.no_grad():
        for name, side in sides.items():  # warm-up: a whole search, so a compiled step meets every shape once
            with contexts[name]():
                start = time.perf_counter()
                beam_search(side, src, beam=args.beam, max_len=args.max_len)
                warmup_seconds[name] = time.perf_counter() - start
        for round_ in range(args.rounds):
            for name in list(sides)[:: 1 if round_ % 2 == 0 else -1]:  # alternate the order
                with contexts[name]():
                    start = time.perf_counter()
                    hyps = beam_search(sides[name], src, beam=args.beam, max_len=args.max_len, length_penalty=1.0)
                    seconds[name].append(time.perf_counter() - start)
                outputs[name] = hyps.tokens
        profile = (
            _profile(lambda: beam_search(model, src, beam=args.beam, max_len=args.max_len)) if args.profile else {}
        )
    before, after = seconds.values()
    ratios = [b / a for b, a in zip(before, after, strict=True)]
    result = {
        "benchmark": f"beam levers: {args.lever}",
        "settings": vars(args) | {"out": str(args.out)},
        "seconds": seconds,
        "speedup_median": statistics.median(ratios),
        "speedup_rounds": ratios,
        "identical_outputs": outputs[list(sides)[0]] == outputs[list(sides)[1]],
        "warmup_seconds": warmup_seconds,  # one search each; a compiled side's includes its compiling
        "profile_self_time_shares": profile,
        "commit": commit(),
        "machine": machine_info("cpu"),
    }
    for name, times in seconds.items():
        print(f"{name:38s} median {statistics.median(times):.3f} s  (rounds {min(times):.3f} .. {max(times):.3f})")
    print(f"speedup x{result['speedup_median']:.3f} (rounds {min(ratios):.3f} .. {max(ratios):.3f}); "
          f"identical outputs: {result['identical_outputs']}")  # fmt: skip
    for operator, share in profile.items():
        print(f"  {share:6.1%}  {operator}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")


def _profile(search: Callable[[], object], top: int = 10) -> dict[str, float]:
    """The ``top`` operators by their share of the search's self time (PyTorch's profiler), the rest as one."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        search()
    self_us = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    total = sum(self_us.values())
    ranked = sorted(self_us.items(), key=lambda item: item[1], reverse=True)
    shares = {name: us / total for name, us in ranked[:top]}
    shares["everything else"] = sum(us for _, us in ranked[top:]) / total
    return shares


if __name__ == "__main__":
    main()
