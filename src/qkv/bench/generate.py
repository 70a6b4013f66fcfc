"""`qkv bench generate`: decoding speed -- what the KV cache buys, and greedy vs beam for each family.

Two measurements, both with randomly initialised models at the recipes' sizes (speed does not depend on
the weights; generated tokens are counted, so early EOS cannot flatter a number):

1. Decoder-only LM (``configs/tinyshakespeare-gpt.yaml`` architecture, context raised to the longest
   length): tokens/s of ``qkv.decoding.greedy`` -- one ``decode_step`` per token with a KV cache, so each
   step costs O(T) -- against the textbook loop without a cache that re-runs the full forward pass on the
   whole prefix for every new token, O(T^2) per step (Vaswani et al. 2017 decode this way in principle;
   the cache is the standard incremental-decoding trick of fairseq and every serving stack). EOS is banned
   on both sides, so both generate exactly ``batch x length`` tokens -- the same work, and the same tokens
   (checked: ``same_tokens``) -- and the two are alternated over ``rounds`` (medians reported). Counting
   only the tokens before a row's first EOS on one side and every position on the other, as this bench
   once did, made the cache look up to 1.7x slower than it is whenever a random model ends rows early.
2. Seq2seq (``configs/multi30k-transformer.yaml`` and ``multi30k-gru-attention.yaml``): sentences/s and
   tokens/s of greedy and beam search (beam 4) on batches of random 20-token sources.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from qkv.errors import UserError
from qkv.machine import commit, machine_info
from qkv.special import EOS_ID


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lengths", default="64,128,256", help="LM generation lengths (tokens)")
    parser.add_argument("--batch", type=int, default=8, help="sequences decoded together")
    parser.add_argument(
        "--rounds", type=int, default=3, help="LM: cached and uncached alternated this many times (default 3)"
    )
    parser.add_argument("--configs", default=str(Path(__file__).resolve().parents[3] / "configs"))
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", default="runs/bench", help="writes OUT/generate.json")


def _model(recipe: Path, src_vocab: int, tgt_vocab: int, **changes):
    """The recipe's model with ``changes`` (e.g. a ``max_len`` for the lengths measured). Only the model is
    changed: the recipe's training settings (its ``training.context``, checked against ``model.max_len``
    when the recipe loads) are not the benchmark's."""
    import dataclasses

    from qkv.models.builder import build_model
    from qkv.training.config import load_config

    model_config = dataclasses.replace(load_config(recipe).model, **changes)
    torch.manual_seed(0)
    return build_model(model_config, src_vocab, tgt_vocab).eval()


@torch.no_grad()
def _uncached_greedy(model, prompt: torch.Tensor, steps: int) -> torch.Tensor:
    """Greedy decoding without a cache: the full forward pass over the whole prefix for every token (EOS
    banned, as it is for the cached side)."""
    tokens = prompt
    for _ in range(steps):
        logits = model(tokens).logits[:, -1]  # (B, V): the next-token scores at the last position
        logits[:, EOS_ID] = float("-inf")
        nxt = logits.argmax(-1, keepdim=True)  # (B, 1)
        tokens = torch.cat([tokens, nxt], dim=1)  # (B, T + 1)
    return tokens


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


@torch.no_grad()
def bench_lm(recipe: Path, lengths: list[int], batch: int, rounds: int = 3) -> list[dict]:
    """Cached against uncached greedy decoding of ``batch`` rows, ``length`` tokens each, alternated over
    ``rounds`` (the cached side first in even rounds); medians and every round's tokens/s."""
    from statistics import median

    from qkv.decoding import greedy
    from qkv.decoding.rules import OutputRules

    vocab = 65
    model = _model(recipe, vocab, vocab, max_len=max(lengths) + 1)
    results = []
    for length in lengths:
        prompt = torch.randint(4, vocab, (batch, 1), generator=torch.Generator().manual_seed(0))  # (B, 1)
        no_eos = OutputRules(min_len=length)  # every row runs to max_len: batch x length tokens

        def cached(length=length, prompt=prompt, no_eos=no_eos):
            return greedy(model, None, length, prompt=prompt, rules=no_eos).tokens

        def uncached(length=length, prompt=prompt):
            return _uncached_greedy(model, prompt, length)[:, 1:].tolist()  # (B, length): without the prompt

        seconds: dict[str, list[float]] = {"cached": [], "uncached": []}
        outputs: dict[str, object] = {}
        for r in range(rounds):
            for name in ("cached", "uncached") if r % 2 == 0 else ("uncached", "cached"):
                elapsed, outputs[name] = _timed(cached if name == "cached" else uncached)
                seconds[name].append(elapsed)
        generated = sum(len(t) for t in outputs["cached"])  # type: ignore[union-attr]
        tokens_per_s = {name: [batch * length / t for t in times] for name, times in seconds.items()}
        results.append(
            {
                "length": length,
                "batch": batch,
                "rounds": rounds,
                "generated_tokens": generated,
                "same_tokens": outputs["cached"] == outputs["uncached"],
                "cached_tokens_per_s": median(tokens_per_s["cached"]),
                "uncached_tokens_per_s": median(tokens_per_s["uncached"]),
                "speedup": median(tokens_per_s["cached"]) / median(tokens_per_s["uncached"]),
                "rounds_tokens_per_s": tokens_per_s,
            }
        )
    return results


@torch.no_grad()
def bench_seq2seq(recipe: Path, batch: int, src_len: int = 20, max_len: int = 40) -> dict:
    from qkv.decoding import beam_search, greedy

    vocab = 8000
    model = _model(recipe, vocab, vocab)
    src = torch.randint(4, vocab, (batch, src_len), generator=torch.Generator().manual_seed(0))  # (B, T_s)
    src[:, -1] = EOS_ID
    out = {"recipe": recipe.name, "batch": batch, "src_len": src_len}
    for name, fn in (
        ("greedy", lambda: greedy(model, src, max_len)),
        ("beam4", lambda: beam_search(model, src, beam=4, max_len=max_len)),
    ):
        seconds, hyps = _timed(fn)
        generated = sum(len(t) for t in hyps.tokens)
        out[name] = {
            "sentences_per_s": batch / seconds,
            "tokens_per_s": generated / seconds,
            "generated_tokens": generated,
        }
    return out


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    configs = Path(args.configs)
    try:
        lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--lengths {args.lengths!r}: expected comma-separated integers, e.g. 64,128,256") from None
    if not lengths or min(lengths) < 1 or args.batch < 1 or args.rounds < 1:
        raise UserError("--lengths, --batch and --rounds must be positive integers")
    lm = bench_lm(configs / "tinyshakespeare-gpt.yaml", lengths, args.batch, args.rounds)
    print("decoder-only LM (baby GPT), greedy, batch", args.batch)
    for r in lm:
        print(
            f"  T={r['length']:>4}: KV cache {r['cached_tokens_per_s']:>8,.0f} tok/s   no cache "
            f"{r['uncached_tokens_per_s']:>8,.0f} tok/s   x{r['speedup']:.1f}"
            + ("" if r["same_tokens"] else "   (the two loops chose different tokens!)")
        )
    seq2seq = [
        bench_seq2seq(configs / name, args.batch)
        for name in ("multi30k-transformer.yaml", "multi30k-gru-attention.yaml")
    ]
    for r in seq2seq:
        print(
            f"  {r['recipe']}: greedy {r['greedy']['sentences_per_s']:.1f} sent/s, "
            f"beam 4 {r['beam4']['sentences_per_s']:.1f} sent/s"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "lm": lm,
        "seq2seq": seq2seq,
        "command": "qkv bench " + " ".join(sys.argv[2:]),
        "commit": commit(),
        "machine": machine_info("cpu"),
    }
    (out / "generate.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out / 'generate.json'}")
    return 0
