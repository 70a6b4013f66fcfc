"""Tokenization and batching throughput on the Multi30k training split (de -> en).

Usage:  QKV_DATA=../shared/data python benchmarks/data_throughput.py [--out data_throughput.json]

Measures (best of ``--repeat`` runs each): reading the split, training the BPE tokenizers, encoding with
BPE (batched through Hugging Face ``tokenizers`` and one sentence at a time), with the character and word
tokenizers, building one epoch of token-budget batches, and collating them into padded tensors.
Prints a table and writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import tokenizers
import torch

from qkv.data import get_task
from qkv.data.batching import TokenBudgetBatcher, make_batch, seq2seq_lengths
from qkv.data.tokenizers import CharTokenizer, WordTokenizer, describe
from qkv.machine import commit


def best_of(repeat: int, fn):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--max-tokens", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default="data_throughput.json")
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}

    def load():
        task = get_task("translation", src_lang="de", tgt_lang="en", data_dir=args.data_dir)
        return task.examples("train")

    t, train = best_of(args.repeat, load)
    src, tgt = [e.src for e in train], [e.tgt for e in train]
    n_sent = len(train)
    n_chars = sum(map(len, src)) + sum(map(len, tgt))
    results["read split"] = {"seconds": t, "sentences_per_s": n_sent / t}

    task = get_task("translation", data_dir=args.data_dir, vocab_size=args.vocab_size)
    t, (src_tok, tgt_tok) = best_of(args.repeat, lambda: task.build_tokenizers(train))
    results["train BPE (both sides)"] = {"seconds": t, "sentences_per_s": 2 * n_sent / t}

    def encode_batched():
        return src_tok.encode_batch(src), tgt_tok.encode_batch(tgt)

    t, (src_ids, tgt_ids) = best_of(args.repeat, encode_batched)
    n_tok = sum(map(len, src_ids)) + sum(map(len, tgt_ids))
    results["BPE encode_batch"] = {
        "seconds": t,
        "sentences_per_s": 2 * n_sent / t,
        "tokens_per_s": n_tok / t,
        "chars_per_s": n_chars / t,
    }
    t, _ = best_of(args.repeat, lambda: ([src_tok.encode(s) for s in src], [tgt_tok.encode(s) for s in tgt]))
    results["BPE encode, one at a time"] = {
        "seconds": t,
        "sentences_per_s": 2 * n_sent / t,
        "tokens_per_s": n_tok / t,
        "chars_per_s": n_chars / t,
    }
    for name, cls in (("char", CharTokenizer), ("word", WordTokenizer)):
        s_tok, t_tok = cls.train(src), cls.train(tgt)
        t, (a, b) = best_of(
            args.repeat, lambda s_tok=s_tok, t_tok=t_tok: (s_tok.encode_batch(src), t_tok.encode_batch(tgt))
        )
        k = sum(map(len, a)) + sum(map(len, b))
        results[f"{name} encode"] = {
            "seconds": t,
            "sentences_per_s": 2 * n_sent / t,
            "tokens_per_s": k / t,
            "chars_per_s": n_chars / t,
        }

    lengths = seq2seq_lengths(src_ids, tgt_ids)
    t, batches = best_of(args.repeat, lambda: TokenBudgetBatcher(lengths, args.max_tokens, seed=0).batches(0))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    results["plan one epoch of batches"] = {
        "seconds": t,
        "sentences_per_s": n_sent / t,
        "batches": len(batches),
        "padding_fraction": 1 - sum(lengths) / padded,
    }
    t, _ = best_of(args.repeat, lambda: [make_batch(b, src_ids, tgt_ids) for b in batches])
    results["collate one epoch (make_batch)"] = {
        "seconds": t,
        "sentences_per_s": n_sent / t,
        "batches_per_s": len(batches) / t,
        "padded_tokens_per_s": padded / t,
    }

    machine = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "tokenizers": tokenizers.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    dev = task.examples("dev")
    setup = {
        "split": "multi30k train de-en",
        "sentences": n_sent,
        "vocab_size": args.vocab_size,
        "max_tokens": args.max_tokens,
        "bpe_tokens": n_tok,
        "repeat": args.repeat,
        "src_tokenizer": describe(src_tok, [e.src for e in dev]),
        "tgt_tokenizer": describe(tgt_tok, [e.tgt for e in dev]),
    }
    print(f"{'step':<32} {'seconds':>8} {'sent/s':>10} {'tokens/s':>11}  other")
    for name, r in results.items():
        other = ", ".join(
            f"{k}={v:.3g}" for k, v in r.items() if k not in ("seconds", "sentences_per_s", "tokens_per_s")
        )
        tps = f"{r['tokens_per_s']:>11,.0f}" if "tokens_per_s" in r else f"{'':>11}"
        print(f"{name:<32} {r['seconds']:>8.3f} {r['sentences_per_s']:>10,.0f} {tps}  {other}")
    with open(args.out, "w") as fh:
        json.dump({"setup": setup, "machine": machine, "results": results, "commit": commit()}, fh, indent=1)
    print(f"tokenizers (dev coverage): src {setup['src_tokenizer']}, tgt {setup['tgt_tokenizer']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
