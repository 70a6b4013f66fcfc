"""Selective copy (Gu & Dao 2023): is the Transformer's slow learning qkv's, or the architecture's?

An experiment, not a speed benchmark. ``qkv probe --task selective-copy --lengths 256`` left qkv's ~44k-parameter
encoder-decoder Transformer at 96 % token accuracy after 16,000 steps while a GRU with attention solved it in
1,000 (docs/compare.md). This trains qkv's model and PyTorch's own ``nn.Transformer`` of the same shape (width,
heads, layers, feed-forward, pre-norm, sinusoidal positions, sqrt(d)-scaled embeddings, no dropout) on the same
fresh batches with the same optimizer, and scores both by greedy decoding on the same held-out examples. If the
peer learns at the same pace, the limit is the architecture at this size, not qkv.

    python benchmarks/selective_copy_peer.py --length 256 --steps 4000 --out results/probes/selective-copy-peer.json

Task: ``length`` source tokens, ``tokens`` of them data symbols (of ``symbols``) at random positions, the rest
the noise symbol; the target is the data symbols in order. Metric: output tokens right at their position.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qkv.compare.probes import ProbeSpec, probe_config
from qkv.models import build_model
from qkv.models.positions import sinusoidal_table
from qkv.special import BOS_ID

N_SPECIAL = 4  # qkv's pad, bos, eos, unk come first in every vocabulary


def selective_copy_batch(
    batch: int, length: int, tokens: int, symbols: int, g: torch.Generator
) -> tuple[Tensor, Tensor]:
    """``(B, length)`` sources and ``(B, tokens)`` targets: data symbols at sorted random positions among noise."""
    noise = N_SPECIAL + symbols
    src = torch.full((batch, length), noise)
    where = torch.stack([torch.randperm(length, generator=g)[:tokens].sort().values for _ in range(batch)])  # (B, K)
    data = N_SPECIAL + torch.randint(symbols, (batch, tokens), generator=g)  # (B, K)
    src.scatter_(1, where, data)
    return src, data


class TorchSeq2Seq(nn.Module):
    """The peer: ``nn.Transformer`` with qkv's probe shape around it."""

    def __init__(self, vocab: int, d: int, heads: int, layers: int, d_ff: int, max_len: int) -> None:
        super().__init__()
        self.src_embed, self.tgt_embed = nn.Embedding(vocab, d), nn.Embedding(vocab, d)
        self.register_buffer("positions", sinusoidal_table(max_len, d).float())  # qkv's table: the same positions
        self.core = nn.Transformer(d, heads, layers, layers, d_ff, 0.0, batch_first=True, norm_first=True)
        self.out = nn.Linear(d, vocab, bias=False)  # qkv's output projection has no bias either
        self.scale = math.sqrt(d)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        s, t = src.size(1), tgt_in.size(1)
        x = self.src_embed(src) * self.scale + self.positions[:s]  # (B, S, E)
        y = self.tgt_embed(tgt_in) * self.scale + self.positions[:t]  # (B, T, E)
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        return self.out(self.core(x, y, tgt_mask=mask, tgt_is_causal=True))  # (B, T, V)


class QkvSeq2Seq(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        return self.model(src, tgt_in).logits  # (B, T, V)


def greedy(model: nn.Module, src: Tensor, steps: int) -> Tensor:
    """``steps`` output tokens by greedy decoding (the length is known, so no end token): ``(B, steps)``."""
    out = torch.full((src.size(0), 1), BOS_ID)
    for _ in range(steps):
        out = torch.cat([out, model(src, out)[:, -1].argmax(-1, keepdim=True)], dim=1)  # (B, t + 1)
    return out[:, 1:]


def train_one(kind: str, args: argparse.Namespace) -> dict:
    vocab = N_SPECIAL + args.symbols + 1
    spec = ProbeSpec("selective-copy", {"length": args.length, "vocab_size": args.symbols, "num_tokens": args.tokens})
    config = probe_config(spec, "transformer", args.params, 2048, args.seed, "cpu", args.lr).model
    torch.manual_seed(args.seed)
    if kind == "qkv":
        model: nn.Module = QkvSeq2Seq(build_model(config, vocab, vocab))
    else:
        model = TorchSeq2Seq(
            vocab, config.d_model, config.n_heads, config.n_encoder_layers, config.d_ff, args.length + 8
        )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-8)
    data = torch.Generator().manual_seed(args.seed + 1)
    held_src, held_tgt = selective_copy_batch(
        300, args.length, args.tokens, args.symbols, torch.Generator().manual_seed(7)
    )
    curve, start = [], time.perf_counter()
    for step in range(1, args.steps + 1):
        for group in optimizer.param_groups:  # qkv probe's schedule: 20 warmup steps, then constant
            group["lr"] = args.lr * min(1.0, step / 20)
        src, tgt = selective_copy_batch(args.batch, args.length, args.tokens, args.symbols, data)
        tgt_in = torch.cat([torch.full((src.size(0), 1), BOS_ID), tgt[:, :-1]], dim=1)  # (B, K): teacher forcing
        loss = F.cross_entropy(model(src, tgt_in).flatten(0, 1), tgt.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % args.eval_every == 0:
            model.eval()
            with torch.no_grad():
                accuracy = (greedy(model, held_src, args.tokens) == held_tgt).float().mean().item()
            model.train()
            curve.append(
                {"step": step, "train_loss": round(loss.item(), 4), "token_accuracy": round(100 * accuracy, 2)}
            )
            print(
                f"  {kind:5s} step {step:5d}  loss {loss.item():.3f}  token accuracy {100 * accuracy:.1f}%", flush=True
            )
    params = sum(p.numel() for p in model.parameters())
    return {"model": kind, "params": params, "width": config.d_model, "curve": curve,
            "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--length", type=int, default=256, help="source tokens (default 256)")
    p.add_argument("--tokens", type=int, default=8, help="data tokens to copy (default 8)")
    p.add_argument("--symbols", type=int, default=8, help="data symbols (default 8)")
    p.add_argument("--params", type=int, default=40_000, help="size the model as qkv probe does (default 40000)")
    p.add_argument("--steps", type=int, default=4000, help="optimizer steps per model (default 4000)")
    p.add_argument("--batch", type=int, default=8, help="examples per step, drawn fresh (default 8: what qkv probe's "
                   "2,048-token batches hold at length 256)")  # fmt: skip
    p.add_argument("--lr", type=float, default=3e-3, help="Adam's rate, qkv probe's default (3e-3)")
    p.add_argument("--eval-every", type=int, default=500, help="steps between held-out checks (default 500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args()
    torch.set_num_threads(1)
    runs = [train_one(kind, args) for kind in ("qkv", "torch")]
    machine = {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__, "threads": 1}
    result = {
        "experiment": "selective copy, qkv's Transformer against torch.nn.Transformer of the same shape",
        "args": {k: str(v) for k, v in vars(args).items()},
        "runs": runs,
        "machine": machine,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
