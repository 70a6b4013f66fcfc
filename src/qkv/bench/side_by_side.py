"""`qkv bench train --peers`: qkv and its peers trained side by side, in one process, on the same batches.

For each case (a qkv recipe), every *side* -- qkv's own training step (:func:`qkv.training.loop.train_step`:
forward, label-smoothed loss, backward, finiteness checks, clipping, AdamW), qkv variants (the same recipe
with other settings, ``--variant``), and the peers of :mod:`qkv.bench.peers` -- is built at the same size
with the same seed and trained on the *same* list of batches drawn once from qkv's stream (the recipe's
tokenizers, batch size / token budget, and the learning-rate schedule). A peer's step is what a user of
that library writes: forward, summed cross-entropy over the target tokens / their number, backward,
``clip_grad_norm_``, ``torch.optim.AdamW`` (its default implementation) and ``zero_grad``.

The machine is noisy, so sides alternate: after ``warmup`` untimed steps each, ``rounds`` rounds each time
every side for ``steps`` steps on the same batches, the order rotating by one side per round. A side's
figure is its median tokens/s over rounds (min and max as the spread); a ratio is the median over rounds of
qkv / peer *within* a round, which cancels the slow drifts of a shared machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from qkv.machine import commit
from qkv.special import PAD_ID

PEER_CASES = {
    "gpt": "tinyshakespeare-gpt.yaml",
    "transformer": "multi30k-transformer.yaml",
    "gru": "multi30k-gru.yaml",
}


@dataclass
class Side:
    name: str
    params: int
    step: Callable[[list], object]  # one optimizer step on a list of micro-batches (qkv's returns its loss)
    tokens_per_s: list[float] = field(default_factory=list)


@dataclass
class Prepared:
    """A recipe's config, vocabulary sizes and the batches every side trains on."""

    config: object
    kind: str
    src_vocab: int
    tgt_vocab: int
    batches: list[list]  # one list of micro-batches per step
    overrides: list[str] = field(default_factory=list)  # the --set overrides of the recipe


def prepare(recipe: Path, overrides: list[str], n_batches: int, *, peers: bool = True) -> Prepared:
    """Tokenizers, encoded training data and ``n_batches`` steps' batches, exactly as ``qkv train`` draws them
    (``peers=False``: for qkv-only measurements, which may use any optimizer)."""
    from qkv.training.batches import LMStream, Seq2SeqStream
    from qkv.training.config import load_config
    from qkv.training.loop import encode_pairs
    from qkv.training.run import open_task, split_data

    config = load_config(recipe, [*overrides, "training.device=cpu"])
    if peers and config.optim.name != "adamw":
        from qkv.errors import UserError

        raise UserError(
            f"{recipe}: optim.name is {config.optim.name!r}; the peers train with AdamW, so the side-by-side "
            "measures AdamW recipes only",
            hint="--set optim.name=adamw (and drop optim.momentum) to compare the same step",
        )
    tc = config.training
    task = open_task(config.task)
    train_data = split_data(task, "train", config.task.max_train_examples)
    src_tok, tgt_tok = task.build_tokenizers(train_data)
    if task.kind == "lm":
        ids = torch.tensor(tgt_tok.encode(train_data), dtype=torch.long)
        stream = LMStream(ids, tc.batch_size, tc.context, tc.seed)
    else:
        stream = Seq2SeqStream(*encode_pairs(train_data, src_tok, tgt_tok, config), tc.max_tokens, tc.seed)
    batches = [[stream.next() for _ in range(tc.grad_accum)] for _ in range(n_batches)]
    return Prepared(config, task.kind, src_tok.vocab_size, tgt_tok.vocab_size, batches, list(overrides))


def padding_fraction(batches: list[list]) -> dict[str, float | None]:
    """The share of padded positions in the source and target tensors of ``batches``."""
    out: dict[str, float | None] = {}
    for side in ("src", "tgt"):
        tensors = [getattr(mb, side) for step in batches for mb in step if getattr(mb, side) is not None]
        total = sum(t.numel() for t in tensors)
        out[side] = None if not total else sum(int((t == PAD_ID).sum()) for t in tensors) / total
    return out


def _schedule(config) -> Callable[[int], float]:
    from qkv.training.schedule import learning_rate

    return lambda step: learning_rate(step, config.optim.lr, config.schedule, config.training.max_steps)


def qkv_side(name: str, prepared: Prepared, overrides: list[str], recipe: Path, adamw: str = "fused") -> Side:
    """qkv's own step on its own model, built from the recipe plus ``overrides``."""
    from qkv.models.builder import build_model
    from qkv.training import distributed
    from qkv.training.config import load_config
    from qkv.training.loop import build_optimizer, train_step

    config = load_config(recipe, [*prepared.overrides, *overrides, "training.device=cpu"])
    torch.manual_seed(config.training.seed)
    model = build_model(config.model, prepared.src_vocab, prepared.tgt_vocab).train()
    optimizer = build_optimizer(model, config, implementation=adamw)
    train_model = torch.compile(model) if config.training.compile else model
    dist = distributed.Dist()
    lr, counter = _schedule(config), {"step": 0}
    bf16 = config.training.precision == "bf16"  # CPU autocast, as qkv train does with training.precision=bf16

    def step(micro: list) -> float:
        counter["step"] += 1
        for group in optimizer.param_groups:
            group["lr"] = lr(counter["step"])
        loss, _ = train_step(
            train_model, model, optimizer, micro, prepared.kind, config, dist, bf16, step=counter["step"]
        )
        return loss

    return Side(name, sum(p.numel() for p in model.parameters() if p.requires_grad), step)


def peer_side(name: str, builder, prepared: Prepared) -> Side:
    """A peer model trained the way its library's users write it (see the module docstring)."""
    from qkv.bench.peers import count_parameters

    config = prepared.config
    torch.manual_seed(config.training.seed)
    model = builder(config.model, prepared.src_vocab, prepared.tgt_vocab).train()
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.optim.lr,
        betas=tuple(config.optim.betas),
        eps=config.optim.eps,
    )
    lr, counter, lm = _schedule(config), {"step": 0}, prepared.kind == "lm"
    smoothing, clip = config.optim.label_smoothing, config.optim.clip_norm
    own_loss = lm and hasattr(model, "lm_loss") and not smoothing
    bf16 = config.training.precision == "bf16"  # --set training.precision=bf16: autocast every side

    def step(micro: list) -> None:
        counter["step"] += 1
        for group in optimizer.param_groups:
            group["lr"] = lr(counter["step"])
        tokens = sum(mb.global_tokens for mb in micro)
        for mb in micro:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = _peer_loss(model, mb, lm, own_loss, smoothing)
            (loss * (mb.tgt[:, 1:] != PAD_ID).sum() / tokens).backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return Side(name, count_parameters(model), step)


def _peer_loss(model, mb, lm: bool, own_loss: bool, smoothing: float):
    """The mean cross-entropy over a micro-batch's target tokens."""
    if own_loss:  # nanoGPT's own forward with targets: a mean over the window (LM windows have no padding)
        return model.lm_loss(mb.tgt[:, :-1], mb.tgt[:, 1:])
    logits = model(mb.tgt[:, :-1]) if lm else model(mb.src, mb.tgt[:, :-1])  # (B, T, V)
    return F.cross_entropy(
        logits.flatten(0, 1).float(), mb.tgt[:, 1:].flatten(), ignore_index=PAD_ID, label_smoothing=smoothing
    )


def measure(sides: list[Side], batches: list[list], steps: int, rounds: int, warmup: int, log=print) -> None:
    """Time every side for ``steps`` steps per round, alternating (the order rotates each round)."""
    for side in sides:
        for i in range(warmup):
            side.step(batches[i % len(batches)])
    for r in range(rounds):
        order = sides[r % len(sides) :] + sides[: r % len(sides)]
        for side in order:
            tokens, start = 0, time.perf_counter()
            for i in range(steps):
                micro = batches[(warmup + r * steps + i) % len(batches)]
                side.step(micro)
                tokens += sum(mb.global_tokens for mb in micro)
            side.tokens_per_s.append(tokens / (time.perf_counter() - start))
        log(f"  round {r + 1}: " + "   ".join(f"{s.name} {s.tokens_per_s[-1]:,.0f}" for s in sides))


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(sides: list[Side], reference: str = "qkv") -> dict:
    """Per side: tokens/s per round, median and spread; per other side: qkv / side, round by round."""
    by_name = {s.name: s for s in sides}
    ref = by_name[reference]
    return {
        "sides": {
            s.name: {"params": s.params, "tokens_per_s_rounds": s.tokens_per_s, **spread(s.tokens_per_s)} for s in sides
        },
        "ratios": {
            f"{reference}/{s.name}": {
                "rounds": [a / b for a, b in zip(ref.tokens_per_s, s.tokens_per_s, strict=True)],
                **spread([a / b for a, b in zip(ref.tokens_per_s, s.tokens_per_s, strict=True)]),
                "params_difference": s.params - ref.params,
            }
            for s in sides
            if s.name != reference
        },
    }


def parse_variant(spec: str) -> tuple[str, list[str], str]:
    """``NAME:KEY=VALUE[:KEY=VALUE...]`` -> name, recipe overrides, AdamW implementation (``adamw=fused|foreach|
    for-loop``, default fused)."""
    from qkv.errors import UserError
    from qkv.training.loop import ADAMW_IMPLEMENTATIONS

    name, *pairs = spec.split(":")
    if not name or any("=" not in p for p in pairs):
        raise UserError(f"--variant {spec!r}: expected NAME:KEY=VALUE[:KEY=VALUE...]")
    adamw, overrides = "fused", []
    for pair in pairs:
        key, value = pair.split("=", 1)
        if key == "adamw":
            if value not in ADAMW_IMPLEMENTATIONS:
                raise UserError(f"--variant {spec!r}: adamw must be one of {', '.join(ADAMW_IMPLEMENTATIONS)}")
            adamw = value
        else:
            overrides.append(pair)
    return name, overrides, adamw


def run_case(case: str, args: argparse.Namespace) -> dict:
    from qkv.bench.peers import PEERS
    from qkv.errors import UserError

    recipe = Path(args.configs) / PEER_CASES[case]
    overrides = list(args.set or [])
    if args.peers == "all":  # every peer this machine can build (nanoGPT only with $NANOGPT)
        peers = [p for p in PEERS[case] if p != "nanogpt" or os.environ.get("NANOGPT")]
    else:
        peers = [p.strip() for p in args.peers.split(",")]
    unknown = [p for p in peers if p not in PEERS[case]]
    if unknown:
        raise UserError(f"--peers: {', '.join(unknown)} not a peer of {case} (known: {', '.join(PEERS[case])})")
    variants = [parse_variant(spec) for spec in args.variant or []]
    prepared = prepare(recipe, overrides, args.batches)
    sides = [qkv_side("qkv", prepared, [], recipe)]
    for name, extra, adamw in variants:
        sides.append(qkv_side(name, prepared, extra, recipe, adamw))
    sides += [peer_side(p, PEERS[case][p], prepared) for p in peers]
    tokens_per_step = statistics.mean(sum(mb.global_tokens for mb in step) for step in prepared.batches)
    print(
        f"{case} ({recipe.name}): {tokens_per_step:,.0f} target tokens/step; params "
        + ", ".join(f"{s.name} {s.params:,}" for s in sides)
    )
    measure(sides, prepared.batches, args.steps, args.rounds, args.warmup)
    summary = summarize(sides)
    for name, r in summary["ratios"].items():
        print(f"  {name}: x{r['median']:.3f} (rounds {r['min']:.3f} .. {r['max']:.3f})")
    return {
        "case": case,
        "recipe": recipe.name,
        "overrides": overrides,
        "variants": list(args.variant or []),
        "kind": prepared.kind,
        "target_tokens_per_step": tokens_per_step,
        "padding_fraction": padding_fraction(prepared.batches),
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "warmup_steps": args.warmup,
        **summary,
    }


def run(args: argparse.Namespace) -> int:
    import json

    from qkv.errors import UserError
    from qkv.machine import machine_info

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in PEER_CASES]
    if unknown:
        raise UserError(f"--models with --peers: unknown case(s) {', '.join(unknown)} (known: {', '.join(PEER_CASES)})")
    results = [run_case(name, args) for name in names]
    report = {
        "benchmark": "train --peers",
        "command": "qkv " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("qkv") else None,
        "commit": commit(),
        "machine": machine_info("cpu"),
        "note": args.note,
        "results": results,
    }
    out = Path(args.out) / "train-peers.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return 0
