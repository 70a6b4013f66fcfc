"""`qkv bench decode --peers`: batched greedy and beam-search decoding, qkv against Hugging Face ``generate``
with the same weights.

A randomly initialised Hugging Face model at a qkv recipe's size is saved as a checkpoint directory and
loaded into qkv with :func:`qkv.pretrained.load` (whose converters reproduce the original outputs), so both
sides decode with the same weights:

- ``marian``: ``MarianMTModel`` at ``configs/multi30k-transformer.yaml``'s size (3+3 layers, d=256, 8 heads,
  FFN 512, one 8,000-token vocabulary), random 20-token sources;
- ``gpt2``: ``GPT2LMHeadModel`` at ``configs/tinyshakespeare-gpt.yaml``'s size (4 layers, d=128, 4 heads,
  65 characters), random 8-token prompts.

Both searches use the same settings (``max_len`` new tokens including EOS; beam: length penalty 1.0 in HF's
form ``score / |Y|`` (qkv's ``length_penalty_form="power"``), stop a
row once ``beam`` hypotheses have finished -- HF's ``early_stopping=True``). Speed is output tokens per
second: the tokens of each returned sequence up to and including its EOS, counted the same way on both
sides; sides alternate, ``repeats`` times, and the ratio is the median over repeats of qkv / HF. Greedy
outputs are compared token by token (``greedy_agreement``: the share of rows that are identical).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from qkv.special import BOS_ID, EOS_ID, PAD_ID


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--peers", nargs="?", const="hf", default="hf", help="the peer: hf (Hugging Face generate)")
    parser.add_argument("--models", default="marian,gpt2", help="marian, gpt2")
    parser.add_argument("--batch", type=int, default=32, help="sequences decoded together")
    parser.add_argument("--beams", default="1,5", help="search widths to time; 1 = greedy")
    parser.add_argument("--max-len", type=int, default=40, help="new tokens per sequence, EOS included")
    parser.add_argument("--src-len", type=int, default=20, help="source tokens (marian) / prompt tokens (gpt2: 8)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats per setting")
    parser.add_argument("--vocab", type=int, default=8000, help="marian vocabulary")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--note", help="free text saved with the result")
    parser.add_argument("--out", default="runs/bench", help="writes OUT/decode-peers.json")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # tests: 1-layer, d=16 models


def _hf_marian(vocab: int, tiny: bool):
    from transformers import MarianConfig, MarianMTModel

    d, layers, heads, ff = (16, 1, 2, 32) if tiny else (256, 3, 8, 512)
    config = MarianConfig(
        vocab_size=vocab,
        decoder_vocab_size=vocab,
        d_model=d,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ff,
        decoder_ffn_dim=ff,
        max_position_embeddings=256,
        activation_function="relu",
        scale_embedding=True,
        pad_token_id=PAD_ID,
        eos_token_id=EOS_ID,
        decoder_start_token_id=PAD_ID,  # Marian starts decoding from the pad token
        forced_eos_token_id=None,
    )
    return MarianMTModel(config)


def _hf_gpt2(tiny: bool):
    from transformers import GPT2Config, GPT2LMHeadModel

    d, layers, heads = (16, 1, 2) if tiny else (128, 4, 4)
    config = GPT2Config(
        vocab_size=65,
        n_positions=256,
        n_embd=d,
        n_layer=layers,
        n_head=heads,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
    )
    return GPT2LMHeadModel(config)


def same_weights(name: str, vocab: int, tiny: bool, folder: Path):
    """The HF model (eval, sdpa) and the same checkpoint loaded into qkv."""
    from qkv.pretrained import load

    torch.manual_seed(0)
    hf = _hf_marian(vocab, tiny) if name == "marian" else _hf_gpt2(tiny)
    hf.save_pretrained(folder / name)
    qkv, _ = load(folder / name)
    hf.config._attn_implementation = "sdpa"
    return hf.eval(), qkv.eval()


def _cut(tokens: list[int], eos: int) -> list[int]:
    """A generated sequence up to and including its first EOS (all of it when there is none)."""
    return tokens[: tokens.index(eos) + 1] if eos in tokens else tokens


@torch.no_grad()
def _hf_decode(hf, inputs: torch.Tensor, beam: int, max_len: int, seq2seq: bool) -> list[list[int]]:
    kwargs = {
        "max_new_tokens": max_len,
        "num_beams": beam,
        "do_sample": False,
        "eos_token_id": EOS_ID,
        "pad_token_id": PAD_ID,
        "forced_eos_token_id": None,
        "bad_words_ids": None,
    }
    if beam > 1:
        kwargs.update(length_penalty=1.0, early_stopping=True)
    mask = inputs != PAD_ID if seq2seq else torch.ones_like(inputs, dtype=torch.bool)
    out = hf.generate(input_ids=inputs, attention_mask=mask, **kwargs)
    new = out[:, 1:] if seq2seq else out[:, inputs.size(1) :]  # seq2seq outputs start with the start token
    return [_cut(row, EOS_ID) for row in new.tolist()]


@torch.no_grad()
def _qkv_decode(model, inputs: torch.Tensor, beam: int, max_len: int, seq2seq: bool) -> list[list[int]]:
    from qkv.decoding import beam_search, greedy

    src, prompt = (inputs, None) if seq2seq else (None, inputs)
    if beam == 1:
        hyps = greedy(model, src, max_len, prompt=prompt)
    else:
        hyps = beam_search(
            model, src, beam=beam, max_len=max_len, length_penalty=1.0, length_penalty_form="power", prompt=prompt
        )
    return [list(t) + ([EOS_ID] if done else []) for t, done in zip(hyps.tokens, hyps.finished, strict=True)]


def peer_inputs(name: str, vocab: int, batch: int, src_len: int = 20) -> tuple[torch.Tensor, bool]:
    """The benchmark's fixed random inputs and whether ``name`` is seq2seq: Marian gets ``(batch, src_len)``
    sources ending in EOS, GPT-2 ``(batch, 8)`` prompts over its 65 symbols."""
    seq2seq = name == "marian"
    vocab, length = (vocab, src_len) if seq2seq else (65, 8)
    inputs = torch.randint(4, vocab, (batch, length), generator=torch.Generator().manual_seed(0))  # (B, T)
    if seq2seq:
        inputs[:, -1] = EOS_ID
    return inputs, seq2seq


def bench_model(name: str, args: argparse.Namespace, folder: Path) -> dict:
    hf, qkv = same_weights(name, args.vocab, args.tiny, folder)
    inputs, seq2seq = peer_inputs(name, args.vocab, args.batch, args.src_len)
    length = inputs.size(1)
    result: dict = {"model": name, "batch": args.batch, "input_len": length, "max_len": args.max_len, "beams": {}}
    for beam in [int(b) for b in args.beams.split(",") if b.strip()]:
        sides = {"qkv": _qkv_decode, "hf": _hf_decode}
        model_of = {"qkv": qkv, "hf": hf}
        speeds: dict[str, list[float]] = {"qkv": [], "hf": []}
        outputs: dict[str, list[list[int]]] = {}
        for r in range(args.repeats):
            for side in ("qkv", "hf") if r % 2 == 0 else ("hf", "qkv"):
                start = time.perf_counter()
                outputs[side] = sides[side](model_of[side], inputs, beam, args.max_len, seq2seq)
                seconds = time.perf_counter() - start
                speeds[side].append(sum(len(t) for t in outputs[side]) / seconds)
        ratios = [a / b for a, b in zip(speeds["qkv"], speeds["hf"], strict=True)]
        agree = sum(a == b for a, b in zip(outputs["qkv"], outputs["hf"], strict=True)) / args.batch
        entry = {
            "tokens_per_s": {s: {"rounds": v, "median": statistics.median(v)} for s, v in speeds.items()},
            "ratio_qkv_over_hf": {"rounds": ratios, "median": statistics.median(ratios), "min": min(ratios)},
            "output_tokens": {s: sum(len(t) for t in outputs[s]) for s in outputs},
            "agreement": agree,
        }
        entry["ratio_qkv_over_hf"]["max"] = max(ratios)
        result["beams"][str(beam)] = entry
        label = "greedy" if beam == 1 else f"beam {beam}"
        print(
            f"{name} {label}, batch {args.batch}: qkv {entry['tokens_per_s']['qkv']['median']:,.0f} tok/s, "
            f"HF generate {entry['tokens_per_s']['hf']['median']:,.0f} tok/s, "
            f"x{entry['ratio_qkv_over_hf']['median']:.2f} (rounds {min(ratios):.2f} .. {max(ratios):.2f}); "
            f"identical outputs {100 * agree:.0f}%"
        )
    return result


def run(args: argparse.Namespace) -> int:
    from qkv.errors import UserError
    from qkv.machine import commit, machine_info

    if args.peers != "hf":
        raise UserError(f"--peers {args.peers!r}: the decoding peer is hf (Hugging Face generate)")
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in ("marian", "gpt2")]
    if unknown:
        raise UserError(f"--models: unknown {', '.join(unknown)} (known: marian, gpt2)")
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench_model(n, args, Path(tmp)) for n in names]
    report = {
        "benchmark": "decode --peers",
        "command": "qkv " + " ".join(sys.argv[1:]),
        "commit": commit(),
        "machine": machine_info("cpu"),
        "note": args.note,
        "results": results,
    }
    out = Path(args.out) / "decode-peers.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return 0
