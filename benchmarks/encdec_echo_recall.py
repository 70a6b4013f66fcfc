"""Why does the encoder-decoder Transformer not solve multi-query recall with echoed keys? Two suspects, one run each.

The probe (``qkv probe --task assoc-recall --pairs 8 --queries 4 --echo-keys --mixed-lengths``, T = 31) predicts
every value right after its echoed key, so the decoder's query carries the key; yet the ~40k-parameter
encoder-decoder stays at keys-right, values-at-chance (docs/compare.md, "Multi-query recall"). This trains the
same model, same recipe, with one change: ``--positions rotary`` (a value finds its key one token back through
relative positions, as in the prefix LM that solves it) or ``--share`` (one embedding table for encoder and
decoder, so the echoed key is the encoder's vector). It prints the validation curve (exact match, token accuracy).

    QKV_DATA=../shared/data python benchmarks/encdec_echo_recall.py --positions rotary --steps 3000
    QKV_DATA=../shared/data python benchmarks/encdec_echo_recall.py --share --steps 3000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import torch

import qkv.compare.probes as probes
from qkv.compare.budget import Budget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", default="sinusoidal", choices=["sinusoidal", "rotary", "learned"])
    parser.add_argument("--share", action="store_true", help="one embedding table for encoder and decoder")
    parser.add_argument(
        "--causal-encoder",
        action="store_true",
        help="the encoder's self-attention is causal (each token sees the ones before it)",
    )
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--length", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)

    recipe = probes.probe_config

    def changed(*a, **k):  # the probe's own recipe, with the one change under test
        config = recipe(*a, **k)
        model = dataclasses.replace(
            config.model, positions=args.positions, share_embeddings=args.share, causal_encoder=args.causal_encoder
        )
        return dataclasses.replace(config, model=model)

    probes.probe_config = changed
    (spec,) = probes.probe_specs(
        "assoc-recall", [args.length], 50_000, 300, pairs=8, queries=4, mixed_lengths=True, echo_keys=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        run = probes.run_probe_model(
            spec,
            "transformer",
            target_params=40_000,
            budget=Budget("steps", args.steps),
            run_dir=Path(tmp),
            checks=6,
            until_solved=True,
        )
        curve = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    encoder = "causal" if args.causal_encoder else "bidirectional"
    print(
        f"encoder-decoder, positions {args.positions}, shared embeddings {args.share}, {encoder} encoder: "
        f"{run['params']:,} parameters"
    )
    for row in curve:
        if row["split"] == "valid":
            print(f"  step {row['step']:>5}  exact {row['exact_match']:5.1f}  token {row['token_accuracy']:5.1f}")
    solved = run["steps_to_solve"]
    print(f"test at the end: exact {run['exact_match']:.1f}, token {run['token_accuracy']:.1f}; solved at {solved}")


if __name__ == "__main__":
    main()
