"""Associative recall (Ba et al. 2016): does a 2-layer Transformer learn ``k3 v1 k7 v0 ... ? k7 -> v0``?

An experiment, not a benchmark of speed: it trains tiny models on freshly drawn batches (no fixed training
set to memorise) and reports held-out exact match every ``--eval-every`` steps, stopping once a model is
at >= 99%. It separates two things that the probe results mix: the attention mask (causal or
bidirectional) and the implementation (qkv or PyTorch's own ``nn.TransformerEncoder`` as the peer).

    python benchmarks/recall_causal_vs_bidirectional.py --out results/probes/recall-causal-vs-bidirectional.json

Models (all 2 layers, d=64, 4 heads, d_ff=256, no dropout, AdamW lr 1e-3):
- ``qkv-transformer``: qkv's encoder-decoder, bidirectional encoder (the default);
- ``qkv-transformer-causal``: the same with ``causal_encoder=True``;
- ``qkv-transformer-causal-last``: the same, but the decoder's cross-attention may only read the encoder
  state at the query (the last source token) -- a diagnosis, not a model anyone should use;
- ``qkv-gpt``: qkv's decoder-only model, predicting the value at the last position;
- ``qkv-prefix-lm``: qkv's decoder-only model for source -> target tasks (the stream ``source BOS
  target``), trained and decoded like the encoder-decoder;
- ``torch-bidirectional`` / ``torch-causal``: ``nn.TransformerEncoder`` (pre-norm, learned positions), the
  answer read at the last position.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qkv.models import ModelConfig, build_model
from qkv.special import BOS_ID

N_SPECIAL = 4  # qkv's pad, bos, eos, unk come first in every vocabulary


def recall_batch(
    batch: int, pairs: int, n_keys: int, n_values: int, g: torch.Generator, slots: int | None = None
) -> tuple[Tensor, Tensor]:
    """``(B, 2 * slots + 2)`` sources ``k v k v ... ? k`` and the ``(B,)`` value ids to output. With
    ``slots > pairs`` the pairs sit at random two-token slots among filler ``_ _`` (as in Zoology's MQAR),
    so the queried key is up to ``2 * slots + 1`` tokens back while the memory load stays ``pairs``."""
    slots = slots or pairs
    keys = torch.stack([torch.randperm(n_keys, generator=g)[:pairs] for _ in range(batch)])  # (B, P), distinct
    values = torch.randint(n_values, (batch, pairs), generator=g)  # (B, P)
    asked = torch.randint(pairs, (batch, 1), generator=g)  # (B, 1): which pair is queried
    key_ids, value_ids = N_SPECIAL + keys, N_SPECIAL + n_keys + values
    question = torch.full((batch, 1), N_SPECIAL + n_keys + n_values)
    filler = N_SPECIAL + n_keys + n_values + 1
    if slots == pairs:  # no filler: pair i in slot i (and no draw, so the batches are those of a plain recall)
        where = torch.arange(pairs).expand(batch, -1)  # (B, P)
    else:
        where = torch.stack([torch.randperm(slots, generator=g)[:pairs].sort().values for _ in range(batch)])
    context = torch.full((batch, slots, 2), filler)  # (B, S, 2): slot s holds tokens 2s and 2s + 1
    context.scatter_(1, where[..., None].expand(-1, -1, 2), torch.stack([key_ids, value_ids], dim=-1))
    context = context.reshape(batch, 2 * slots)  # (B, S, 2) -> (B, 2S)
    src = torch.cat([context, question, key_ids.gather(1, asked)], dim=1)  # (B, 2S + 2)
    return src, value_ids.gather(1, asked)[:, 0]


def mqar_batch(
    batch: int, pairs: int, n_keys: int, n_values: int, g: torch.Generator, slots: int | None = None
) -> tuple[Tensor, Tensor]:
    """Multi-query recall in Zoology's language-model form (Arora et al. 2023): the context of
    :func:`recall_batch`, then every key asked once in random order, each followed by its value --
    ``... k3 v1 ... k7 v0 ... | k7 v0 k3 v1 ...``. Returns the ``(B, 2S + 2P)`` streams and next-token
    targets ``(B, 2S + 2P)`` that are -100 except at the asked keys, whose target is their value: one
    supervised lookup per pair, so a batch teaches ``pairs`` times more than a single query does."""
    slots = slots or pairs
    src, _ = recall_batch(batch, pairs, n_keys, n_values, g, slots)  # (B, 2S + 2); only its context is used
    context = src[:, : 2 * slots]  # (B, 2S)
    is_key = (context >= N_SPECIAL) & (context < N_SPECIAL + n_keys)  # (B, 2S)
    key_at = is_key.nonzero()[:, 1].reshape(batch, pairs)  # (B, P): positions of the keys, in order
    order = torch.stack([torch.randperm(pairs, generator=g) for _ in range(batch)])  # (B, P)
    asked_at = key_at.gather(1, order)  # (B, P)
    asked = torch.stack([context.gather(1, asked_at), context.gather(1, asked_at + 1)], dim=-1)  # (B, P, 2)
    stream = torch.cat([context, asked.reshape(batch, 2 * pairs)], dim=1)  # (B, 2S + 2P)
    targets = torch.full_like(stream, -100)  # (B, T): the logits at position t predict token t + 1
    targets[:, 2 * slots :: 2] = asked[..., 1]  # at each asked key: its value
    return stream, targets


class TorchEncoderReader(nn.Module):
    """The peer: ``nn.TransformerEncoder`` over learned positions; logits read at the last position."""

    def __init__(self, vocab: int, d: int, layers: int, max_len: int, causal: bool) -> None:
        super().__init__()
        self.tokens, self.positions = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
        layer = nn.TransformerEncoderLayer(d, 4, 4 * d, 0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(d, vocab)
        self.causal = causal

    def forward(self, src: Tensor) -> Tensor:
        t = src.size(1)
        x = self.tokens(src) + self.positions(torch.arange(t))  # (B, T, E)
        mask = nn.Transformer.generate_square_subsequent_mask(t) if self.causal else None
        return self.out(self.encoder(x, mask=mask, is_causal=self.causal))[:, -1]  # (B, V)


POSITIONS = {"qkv-gpt-rotary": "rotary", "qkv-gpt-mqar": "rotary", "qkv-gpt-learned": "learned"}


def make_model(kind: str, vocab: int, d: int, layers: int, max_len: int) -> nn.Module:
    """A module mapping sources ``(B, T)`` to answer logits ``(B, V)``."""
    if kind.startswith("torch"):
        return TorchEncoderReader(vocab, d, layers, max_len, causal=kind == "torch-causal")
    name = "gpt" if kind.startswith("qkv-gpt") else {"qkv-prefix-lm": "prefix-lm"}.get(kind, "transformer")
    config = ModelConfig(
        name=name,
        d_model=d,
        n_heads=4,
        n_encoder_layers=layers,
        n_decoder_layers=layers,
        d_ff=4 * d,
        dropout=0.0,
        max_len=max_len,
        positions=POSITIONS.get(kind, "rotary" if name == "prefix-lm" else "sinusoidal"),
        causal_encoder=kind.startswith("qkv-transformer-causal"),
    )
    model = build_model(config, vocab, vocab)

    class Reader(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, src: Tensor) -> Tensor:
            if kind == "qkv-gpt-bos":
                stream = torch.cat([src, torch.full((src.size(0), 1), BOS_ID)], dim=1)  # (B, T_s + 1)
                return self.model(stream).logits[:, -1]  # (B, V): read at the BOS after the query
            if kind == "qkv-gpt-mqar":
                return self.model(src).logits  # (B, T, V): every position; the targets pick the asked keys
            if name == "gpt":
                return self.model(src).logits[:, -1]  # (B, V): the token after the query key
            bos = torch.full((src.size(0), 1), BOS_ID)
            if kind == "qkv-transformer-causal-last":  # cross-attention restricted to the query's own state
                memory = self.model.encode(src).memory  # (B, T_s, E)
                keep = torch.zeros(src.shape, dtype=torch.bool)
                keep[:, -1] = True
                hidden, _, _ = self.model.decoder(bos, memory, keep)  # (B, 1, E)
                return self.model.lm_head(hidden)[:, 0]
            return self.model(src, bos).logits[:, 0]  # (B, V): the first target token

    return Reader()


def train_one(kind: str, args: argparse.Namespace) -> dict:
    n_keys, n_values = max(16, args.pairs), 8
    slots = max(args.slots or args.pairs, args.pairs)
    vocab = N_SPECIAL + n_keys + n_values + 1 + (slots > args.pairs)  # + "?" and the filler, if any
    torch.manual_seed(args.seed)
    length = 2 * slots + (2 * args.pairs if kind == "qkv-gpt-mqar" else 2)  # tokens per sequence
    model = make_model(kind, vocab, args.d_model, args.layers, length + 6)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.0)
    data = torch.Generator().manual_seed(args.seed + 1)
    make_batch = mqar_batch if kind == "qkv-gpt-mqar" else recall_batch
    held_out = make_batch(500, args.pairs, n_keys, n_values, torch.Generator().manual_seed(10_000 + args.seed), slots)
    curve, solved_at, start = [], None, time.perf_counter()
    for step in range(1, args.steps + 1):
        src, answer = make_batch(args.batch, args.pairs, n_keys, n_values, data, slots)
        logits = model(src)  # (B, V), or (B, T, V) for the multi-query stream
        loss = F.cross_entropy(logits.flatten(0, -2), answer.flatten(), ignore_index=-100)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % args.eval_every == 0:
            with torch.no_grad():
                asked = held_out[1] != -100  # every answer (one per sequence, or one per asked key)
                accuracy = (model(held_out[0]).argmax(-1) == held_out[1])[asked].float().mean().item()
            curve.append({"step": step, "train_loss": round(loss.item(), 4), "exact_match": round(accuracy, 4)})
            print(f"  {kind:34s} step {step:5d}  loss {loss.item():.3f}  exact match {accuracy:.3f}", flush=True)
            if accuracy >= args.solved_at:
                solved_at = step
                break
    params = sum(p.numel() for p in model.parameters())
    return {"model": kind, "description": KINDS[kind], "params": params, "steps_to_solve": solved_at, "curve": curve,
            "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


KINDS = {
    "qkv-transformer": "qkv encoder-decoder, bidirectional encoder",
    "qkv-transformer-causal": "qkv encoder-decoder, causal encoder",
    "qkv-transformer-causal-last": "qkv encoder-decoder, causal encoder, decoder sees only the last source state",
    "qkv-gpt": "qkv decoder-only (causal)",
    "qkv-prefix-lm": "qkv prefix-lm: decoder-only on source -> target, rotary positions",
    "qkv-gpt-rotary": "qkv decoder-only (causal), rotary positions",
    "qkv-gpt-learned": "qkv decoder-only (causal), learned positions (as the torch peer)",
    "qkv-gpt-bos": "qkv decoder-only (causal), answer read at a BOS after the query",
    "qkv-gpt-mqar": "qkv decoder-only (causal), rotary, every key asked once after the context (Zoology's MQAR)",
    "torch-bidirectional": "torch nn.TransformerEncoder, no mask",
    "torch-causal": "torch nn.TransformerEncoder, causal mask",
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pairs", type=int, default=8, help="key-value pairs per sequence (default 8)")
    p.add_argument(
        "--slots",
        type=int,
        default=None,
        help="two-token slots in the context (default: --pairs, no filler); more slots put the pairs among "
        "filler, up to 2 * slots + 1 tokens before the query",
    )
    p.add_argument("--steps", type=int, default=3000, help="most optimizer steps per model (default 3000)")
    p.add_argument("--batch", type=int, default=64, help="sequences per step, drawn fresh (default 64)")
    p.add_argument("--d-model", type=int, default=64, help="width (default 64)")
    p.add_argument("--layers", type=int, default=2, help="layers (encoder and decoder each; default 2)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    p.add_argument("--solved-at", type=float, default=0.99, help="held-out exact match that stops a run (0.99)")
    p.add_argument("--eval-every", type=int, default=250, help="steps between held-out checks (default 250)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--models", default=",".join(KINDS), help="comma-separated subset of: " + ", ".join(KINDS))
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args()
    kinds = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise SystemExit(f"error: --models: unknown {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    slots = args.slots or args.pairs
    print(
        f"associative recall, {args.pairs} pairs in {slots} slots, batch {args.batch} fresh, up to {args.steps} steps"
    )
    runs = [train_one(kind, args) for kind in kinds]
    for r in runs:
        solved = r["steps_to_solve"] or "not solved"
        print(f"{r['model']:34s} {r['params']:>8,} params  steps to {args.solved_at:.0%}: {solved}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: v for k, v in vars(args).items() if k != "out"}
        machine = {"processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                   "torch": torch.__version__}  # fmt: skip
        args.out.write_text(json.dumps({"settings": settings, "machine": machine, "runs": runs}, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
