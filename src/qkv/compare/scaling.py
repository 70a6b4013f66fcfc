"""Training cost against sequence length: why attention replaced recurrence.

A recurrent layer computes ``h_t = f(h_{t-1}, x_t)``: position ``t`` cannot start before ``t - 1`` is
done, so a sequence of length ``T`` needs ``O(T)`` *sequential* steps however many cores there are. A
self-attention layer computes every position at once from the whole sequence -- ``O(1)`` sequential
steps in ``T`` -- at the price of ``O(T^2)`` work and memory for the score matrix (Vaswani et al. 2017,
"Attention Is All You Need", section 4 and Table 1).

:func:`measure_scaling` times one training step (forward + backward) of each architecture on random
tokens of growing length, records its peak memory, and counts its sequential steps. :func:`bends`
finds where each log-log curve changes slope: a Transformer's step time is flat while fixed overheads
dominate, then linear while the feed-forward layers dominate, then bends towards quadratic once the
``T x T`` attention scores dominate; a recurrent network's time is linear in ``T`` from the start.

Notation: ``B`` batch, ``T`` length (source = target), ``V`` vocabulary.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from qkv.compare.budget import ScalingPlan
from qkv.compare.memory import PeakMemory
from qkv.compare.recipes import transformer_config
from qkv.models import ModelConfig, build_model
from qkv.training.losses import token_cross_entropy

VOCAB = 64  # random tokens; the vocabulary size barely matters for the scaling in T


@dataclass(frozen=True)
class Arch:
    """One curve of the scaling study: a model name plus, for Transformers, the attention backend."""

    label: str
    name: str
    backend: str = "auto"

    @property
    def recurrent(self) -> bool:
        return self.name not in ("transformer", "gpt", "encoder", "prefix-lm")


def scaling_archs(models: list[str]) -> list[Arch]:
    """The curves to draw: each compared model (Transformers twice: fused and reference attention),
    plus plain GRU and LSTM so the recurrent baseline is always there."""
    archs: list[Arch] = []
    for name in list(models) + ["gru", "lstm"]:
        if name == "transformer":
            archs += [Arch("transformer (fused)", name, "fused"), Arch("transformer (reference)", name, "reference")]
        elif all(a.name != name for a in archs):
            archs.append(Arch(name, name))
    return archs


def arch_config(arch: Arch, plan: ScalingPlan) -> ModelConfig:
    """A model of width ``plan.d_model`` with ``plan.layers`` layers (encoder and decoder each)."""
    common = {"name": arch.name, "dropout": 0.0, "max_len": max(plan.lengths) + 2}
    if arch.recurrent:
        return ModelConfig(**common, d_model=plan.d_model, hidden_size=plan.d_model, n_rnn_layers=plan.layers)
    return transformer_config(
        arch.name,
        plan.d_model,
        d_ff=4 * plan.d_model,
        layers=plan.layers,
        max_len=common["max_len"],
        dropout=0.0,
        attention_backend=arch.backend,
    )


def sequential_steps(arch: Arch, config: ModelConfig, length: int) -> int:
    """Operations that must run one after another in one training step (the critical path, in layers).

    Recurrent: every layer walks the source, then the target, one position at a time -> ``O(T)``.
    Transformer: one parallel step per layer, whatever the length -> ``O(1)`` in ``T``.
    """
    if arch.recurrent:
        return config.n_rnn_layers * 2 * length
    return config.n_encoder_layers + config.n_decoder_layers


def attention_scores(arch: Arch, config: ModelConfig, batch: int, length: int) -> int:
    """Entries of all the ``(B, H, T_q, T_k)`` score matrices in one forward pass (the ``O(T^2)`` work)."""
    if arch.recurrent:
        attends = config.attention not in (None, "none")
        return batch * length * length if attends else 0  # one alignment per target step over the source
    per_matrix = batch * config.n_heads * length * length
    if config.name == "prefix-lm":  # one (2T)^2 self-attention over source + target per layer
        return 4 * per_matrix * config.n_decoder_layers
    return per_matrix * (config.n_encoder_layers + 2 * config.n_decoder_layers)


def training_step(model: torch.nn.Module, src: torch.Tensor, tgt: torch.Tensor) -> None:
    """Forward + backward of the teacher-forced cross-entropy loss (no optimizer update)."""
    out = model(src, tgt[:, :-1])  # logits (B, T, V)
    normalised = getattr(out, "normalised", False)  # (the loss training computes)
    token_cross_entropy(out.logits, tgt[:, 1:], reduction="mean", normalised=normalised).backward()
    model.zero_grad(set_to_none=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_arch(
    arch: Arch,
    plan: ScalingPlan,
    device: torch.device,
    generator: torch.Generator,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict:
    """Step time (ms, median of ``plan.repeats``) and peak memory (MiB) at each length for one architecture.

    One warm-up step, one step measured for memory, then ``plan.repeats`` timed steps. Lengths are tried
    in increasing order; once a step takes longer than ``plan.max_step_seconds`` the
    longer lengths are skipped (recorded as ``None``) so the study stays within its time budget.
    """
    config = arch_config(arch, plan)
    model = build_model(config, VOCAB, VOCAB).to(device).train()
    out = {
        "label": arch.label,
        "model": arch.name,
        "backend": arch.backend,
        "params": sum(p.numel() for p in model.parameters()),
        "lengths": list(plan.lengths),
        "step_ms": [],
        "peak_mib": [],
        "sequential_steps": [],
        "attention_scores": [],
        "memory_method": None,
        "skipped_from": None,
    }
    too_slow = False
    for length in plan.lengths:
        out["sequential_steps"].append(sequential_steps(arch, config, length))
        out["attention_scores"].append(attention_scores(arch, config, plan.batch_size, length))
        if too_slow or should_stop():
            out["skipped_from"] = out["skipped_from"] or length
            out["step_ms"].append(None)
            out["peak_mib"].append(None)
            continue
        # +1 position: tgt holds BOS ... so that tgt[:, :-1] and tgt[:, 1:] both have length T.
        src = torch.randint(4, VOCAB, (plan.batch_size, length), generator=generator).to(device)  # (B, T)
        tgt = torch.randint(4, VOCAB, (plan.batch_size, length + 1), generator=generator).to(device)  # (B, T+1)
        training_step(model, src, tgt)  # warm-up: first-call allocations at this shape
        with PeakMemory(device) as memory:
            training_step(model, src, tgt)
        times = []
        for _ in range(plan.repeats):
            _sync(device)
            start = time.perf_counter()
            training_step(model, src, tgt)
            _sync(device)
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        out["step_ms"].append(round(seconds * 1000, 3))
        out["peak_mib"].append(None if memory.mib is None else round(memory.mib, 2))
        out["memory_method"] = memory.method
        too_slow = seconds > plan.max_step_seconds
    out["bend"] = bends(out["lengths"], out["step_ms"])
    out["memory_bend"] = bends(out["lengths"], out["peak_mib"])
    return out


def bends(lengths: list[int], values: list[float | None], tolerance: float = 0.3) -> dict:
    """Log-log slopes between consecutive lengths, and where the curve bends into its final regime.

    ``slopes[i]`` is ``d log(value) / d log(T)`` between consecutive measured lengths (1 = linear,
    2 = quadratic). ``bend_at`` is the length where the last regime starts: the first point of the run of
    final segments whose slopes are within ``tolerance`` of the last slope, provided the segment before
    that run is at least ``tolerance`` shallower -- where a flat or linear curve turns upwards on a log-log
    plot. ``None`` when the curve keeps one slope throughout.
    """
    points = [(t, v) for t, v in zip(lengths, values, strict=True) if v is not None and v > 0]
    slopes = [
        round((math.log(v1) - math.log(v0)) / (math.log(t1) - math.log(t0)), 3)
        for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False)
    ]
    bend_at = None
    if len(slopes) >= 2:
        final, k = slopes[-1], len(slopes) - 1
        while k > 0 and slopes[k - 1] >= final - tolerance:
            k -= 1
        if k > 0:
            bend_at = points[k][0]
    return {
        "slopes": slopes,
        "segments": [[t0, t1] for (t0, _), (t1, _) in zip(points, points[1:], strict=False)],
        "bend_at": bend_at,
        "final_slope": slopes[-1] if slopes else None,
        "fit": loglog_fit(points[-FIT_POINTS:]),
    }


FIT_POINTS = 4  # the long-T regime: a least-squares slope over the last four measured lengths


def loglog_fit(points: list[tuple[int, float]]) -> dict | None:
    """Least-squares ``log(value) = slope * log(T) + c`` over ``points`` ((T, value) pairs, >= 3 of them).

    Returns ``slope``, ``r2`` (the fit's coefficient of determination) and the range of ``T`` it covers;
    a slope from two points alone (one noisy timing) is what this replaces.
    """
    if len(points) < 3:
        return None
    x = np.log([t for t, _ in points])
    y = np.log([v for _, v in points])
    slope, intercept = np.polyfit(x, y, 1)
    residual = float(((y - (slope * x + intercept)) ** 2).sum())
    total = float(((y - y.mean()) ** 2).sum())
    return {
        "slope": round(float(slope), 3),
        "r2": round(1 - residual / total, 4) if total > 0 else 1.0,
        "from": points[0][0],
        "to": points[-1][0],
        "points": len(points),
    }


def measure_scaling(
    models: list[str],
    plan: ScalingPlan,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: Callable[[str], None] = lambda label: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict:
    """The whole scaling study: one entry per :func:`scaling_archs` curve, plus the setup it ran with."""
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    curves = []
    for arch in scaling_archs(models):
        if should_stop():
            break
        progress(arch.label)
        curves.append(measure_arch(arch, plan, device, generator, should_stop))
    return {
        "setup": {
            "batch_size": plan.batch_size,
            "d_model": plan.d_model,
            "layers": plan.layers,
            "repeats": plan.repeats,
            "vocab": VOCAB,
            "device": str(device),
            "what": "one training step (forward + backward, no optimizer update) on random tokens, "
            "source length = target length = T",
        },
        "lengths": list(plan.lengths),
        "curves": curves,
    }
