"""The models and optimizer settings a comparison trains: one small, standard recipe per family.

Each family gets the recipe it is usually trained with, so neither side is handicapped by the other's
settings: Transformers use Adam with the Noam warmup and inverse-square-root decay (Vaswani et al. 2017,
section 5.3) and label smoothing 0.1; recurrent encoder-decoders use Adam at a constant learning rate
after a short warmup (Bahdanau et al. 2015; Luong et al. 2015 used SGD, Adam is today's default), with
the same label smoothing and gradient clipping. Sizes are small enough for a CPU: the recurrent hidden
size equals the Transformer width.

:func:`sized_config` instead scales an architecture to a target parameter count -- the long-range probes
compare architectures at (about) equal size.
"""

from __future__ import annotations

from typing import Any

from qkv.models import ModelConfig, build_model
from qkv.models.config import TRANSFORMER_NAMES
from qkv.training.config import OptimConfig, ScheduleConfig

SIZES = {
    # name: (width, Transformer layers per stack, recurrent layers)
    "tiny": (64, 2, 1),
    "small": (128, 2, 1),
    "base": (256, 3, 2),
}


def transformer_config(
    name: str, width: int, *, d_ff: int, layers: int, max_len: int, dropout: float, **extra: Any
) -> ModelConfig:
    """A Transformer of ``width`` with 4 heads and ``layers`` per stack. ``prefix-lm`` has one stack, as deep
    as the encoder-decoder's two together (``2 * layers``), with the rotary positions it requires."""
    if name == "prefix-lm":
        encoder_layers, decoder_layers, extra = 0, 2 * layers, {"positions": "rotary", **extra}
    else:
        encoder_layers, decoder_layers = layers, layers
    return ModelConfig(
        name=name,
        d_model=width,
        n_heads=4,
        d_ff=d_ff,
        n_encoder_layers=encoder_layers,
        n_decoder_layers=decoder_layers,
        max_len=max_len,
        dropout=dropout,
        **extra,
    )


def model_config(name: str, size: str = "small", *, max_len: int = 256, dropout: float = 0.1) -> ModelConfig:
    """The :class:`ModelConfig` of architecture ``name`` at a named size."""
    width, layers, rnn_layers = SIZES[size]
    if name in TRANSFORMER_NAMES:
        return transformer_config(name, width, d_ff=4 * width, layers=layers, max_len=max_len, dropout=dropout)
    return ModelConfig(
        name=name, d_model=width, hidden_size=width, n_rnn_layers=rnn_layers, max_len=max_len, dropout=dropout
    )


def optim_recipe(name: str, *, quick: bool = False) -> tuple[OptimConfig, ScheduleConfig]:
    """Adam settings and learning-rate schedule for the family of ``name``."""
    if name in TRANSFORMER_NAMES:
        warmup = 40 if quick else 60  # budgets of minutes on a CPU buy a few hundred steps
        # Peak 3e-3 beat 1e-3 and 5e-3 at the default 60 s budget (docs/compare.md, "tuned fairly?").
        return OptimConfig(lr=3e-3, betas=[0.9, 0.98], label_smoothing=0.1, clip_norm=1.0), ScheduleConfig(
            kind="noam", warmup_steps=warmup
        )
    return OptimConfig(lr=3e-3, betas=[0.9, 0.999], eps=1e-8, label_smoothing=0.1, clip_norm=1.0), ScheduleConfig(
        kind="constant", warmup_steps=20
    )


def param_count(config: ModelConfig, src_vocab: int, tgt_vocab: int) -> int:
    model = build_model(config, src_vocab, tgt_vocab)
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# Variants the probes know by name besides the architectures: name -> (the ModelConfig name, the fields it
# changes). ``transformer-causal`` is the encoder-decoder with a causal encoder: a bidirectional encoder did not
# learn (in 6,000 steps) the previous-token step that recall's lookup needs, a causal one does (docs/compare.md,
# "Multi-query recall"; benchmarks/encdec_echo_recall.py).
PROBE_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "transformer-causal": ("transformer", {"causal_encoder": True}),
}


def probe_architecture(name: str) -> str:
    """The architecture behind probe model ``name``: itself, or the one a :data:`PROBE_VARIANTS` entry changes."""
    return PROBE_VARIANTS[name][0] if name in PROBE_VARIANTS else name


def probe_model_config(name: str, width: int, *, max_len: int = 256, dropout: float = 0.0) -> ModelConfig:
    """The probes' shape of architecture ``name`` (or of a :data:`PROBE_VARIANTS` entry) at ``width``.
    Transformers: 2 + 2 layers (prefix-lm: 4 layers, rotary positions), 4 heads, ``d_ff = 2 * d_model``;
    recurrent models: one layer, embedding size = hidden size = ``width``."""
    architecture, fields = PROBE_VARIANTS.get(name, (name, {}))
    if architecture in TRANSFORMER_NAMES:
        return transformer_config(
            architecture, width, d_ff=2 * width, layers=2, max_len=max_len, dropout=dropout, **fields
        )
    return ModelConfig(
        name=architecture, d_model=width, hidden_size=width, n_rnn_layers=1, max_len=max_len, dropout=dropout, **fields
    )


def sized_config(
    name: str, target_params: int, src_vocab: int, tgt_vocab: int, *, max_len: int = 256, dropout: float = 0.0
) -> ModelConfig:
    """Architecture ``name`` (the :func:`probe_model_config` shape) with its width chosen so the parameter
    count is closest to ``target_params``: Transformers' width a multiple of 8, recurrent models' of 4."""

    def make(width: int) -> ModelConfig:
        return probe_model_config(name, width, max_len=max_len, dropout=dropout)

    step = 8 if probe_architecture(name) in TRANSFORMER_NAMES else 4
    lo, hi = 1, 512 // step  # search over width = k * step (parameter count grows with the width)
    while lo < hi:
        mid = (lo + hi) // 2
        if param_count(make(mid * step), src_vocab, tgt_vocab) < target_params:
            lo = mid + 1
        else:
            hi = mid
    candidates = [make(k * step) for k in {max(lo - 1, 1), lo}]
    return min(candidates, key=lambda c: abs(param_count(c, src_vocab, tgt_vocab) - target_params))
