"""`ModelConfig`: every architectural knob of every qkv model, typed and validated in one place.

Modules never read this object: :func:`qkv.models.builder.build_model` turns it into plain constructor
arguments (the torchtune principle: config outside modules). The same schema describes the Transformer
family (Vaswani et al. 2017, "Attention Is All You Need"; GPT-style decoder-only; BERT-style encoder-only)
and the recurrent encoder-decoders it replaced (Sutskever et al. 2014; Cho et al. 2014; Bahdanau et al.
2015; Luong et al. 2015), so one YAML section configures any of them.

The knobs are the ones real checkpoints differ in: BERT is post-norm with learned positions, token-type
embeddings, an embedding LayerNorm and exact GELU; GPT-2 is pre-norm with learned positions, tanh-GELU
and tied embeddings; Marian is post-norm with sinusoidal positions in the "halves" layout, scaled
embeddings, SiLU, a final logits bias and shared source/target embeddings.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from qkv.attention.core import Backend

# prefix-lm: a decoder-only Transformer on source -> target tasks (qkv.models.prefix_lm)
TRANSFORMER_NAMES = ("transformer", "gpt", "encoder", "prefix-lm")
RECURRENT_NAMES = ("gru", "lstm", "gru-attention", "lstm-attention", "gru-luong")  # encoder-decoders
RECURRENT_LM_NAMES = ("lstm-lm", "gru-lm")  # decoder-only recurrent language models (Zaremba et al. 2014)
MODEL_NAMES = TRANSFORMER_NAMES + RECURRENT_NAMES + RECURRENT_LM_NAMES

POSITIONS = ("sinusoidal", "learned", "rotary", "none")
SINUSOIDAL_LAYOUTS = ("interleaved", "halves")
ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "silu")
RnnCell = Literal["gru", "lstm"]
RnnAttention = Literal["none", "additive", "general", "dot"]  # additive = Bahdanau; general, dot = Luong
RNN_CELLS: tuple[RnnCell, ...] = get_args(RnnCell)
RNN_ATTENTIONS: tuple[RnnAttention, ...] = get_args(RnnAttention)

# Recurrent presets: what each model name means when the field is left unset (None).
RECURRENT_PRESETS: dict[str, dict[str, Any]] = {
    "gru": {"rnn_cell": "gru", "attention": "none", "bidirectional": False, "input_feeding": False},
    "lstm": {"rnn_cell": "lstm", "attention": "none", "bidirectional": False, "input_feeding": False},
    "gru-attention": {"rnn_cell": "gru", "attention": "additive", "bidirectional": True, "input_feeding": False},
    "lstm-attention": {"rnn_cell": "lstm", "attention": "general", "bidirectional": False, "input_feeding": True},
    "gru-luong": {"rnn_cell": "gru", "attention": "general", "bidirectional": False, "input_feeding": False},
    "lstm-lm": {"rnn_cell": "lstm", "attention": "none", "bidirectional": False, "input_feeding": False},
    "gru-lm": {"rnn_cell": "gru", "attention": "none", "bidirectional": False, "input_feeding": False},
}


@dataclass
class ModelConfig:
    """Architecture of one model. Field defaults give a small pre-norm Transformer.

    ``name`` picks the family: ``transformer`` (encoder-decoder), ``gpt`` (decoder-only LM), ``encoder``
    (BERT-style), one of the recurrent encoder-decoder names, or ``lstm-lm``/``gru-lm`` (recurrent
    decoder-only LMs: ``d_model`` is the embedding size, ``hidden_size`` the RNN width, ``n_rnn_layers``
    the depth, ``dropout`` Zaremba et al.'s non-recurrent dropout). For the recurrent names, ``rnn_cell``,
    ``attention``, ``bidirectional`` and ``input_feeding`` left as ``None`` are filled from
    :data:`RECURRENT_PRESETS`.
    """

    name: str = "transformer"
    # -- sizes (Transformer) --
    d_model: int = 256
    n_heads: int = 4
    n_kv_heads: int | None = None  # None = n_heads (multi-head); 1 = multi-query; between = grouped-query
    n_encoder_layers: int = 3
    n_decoder_layers: int = 3
    d_ff: int = 1024
    max_len: int = 512  # longest sequence for learned positions (and the sinusoidal table)
    # -- regularisation --
    dropout: float = 0.1  # embeddings and every residual branch
    attention_dropout: float = 0.0  # on the attention weights
    activation_dropout: float = 0.0  # inside the feed-forward, after the activation
    # -- the knobs checkpoints differ in --
    norm_first: bool = True  # pre-norm (True, with a final norm after the stack) or post-norm (False)
    positions: str = "sinusoidal"  # sinusoidal | learned | rotary | none
    sinusoidal_layout: str = "interleaved"  # interleaved (Vaswani: sin, cos, sin, ...) | halves (all sin, all cos)
    rotary_base: float = 10000.0
    activation: str = "relu"  # relu | gelu (exact) | gelu_tanh | silu
    scale_embeddings: bool = True  # multiply token embeddings by sqrt(d_model)
    tie_embeddings: bool = False  # output projection shares the (target) token embedding matrix
    share_embeddings: bool = False  # encoder and decoder share one embedding matrix (needs one vocabulary)
    # a pointer-generator output that can copy source tokens (See et al. 2017; qkv.models.copy): a Transformer
    # or a recurrent encoder-decoder with attention (model.attention not none); needs one vocabulary for
    # source and target, e.g. task.options.shared_vocab
    copy: bool = False
    # Encoder self-attention masked causally (each source token sees itself and earlier ones), as in a
    # decoder-only model: the probe experiments (benchmarks/recall_causal_vs_bidirectional.py) vary it.
    causal_encoder: bool = False
    # hidden * d_model**-0.5 before the output layer (T5); None = when tied, unless a final norm's zero gain or
    # init_range's small start already keeps the logits near zero (qkv.models.builder._output)
    scale_logits: bool | None = None
    output_bias: bool = False  # a bias on the output projection (Marian's final_logits_bias)
    embedding_norm: bool = False  # LayerNorm right after the embeddings (BERT)
    n_token_types: int = 0  # segment embeddings (BERT's token_type_embeddings); 0 = none
    bias: bool = True  # biases in attention projections, feed-forward and norms
    norm_eps: float = 1e-5
    attention_backend: Backend = "auto"  # auto | reference | fused (qkv.attention.core.BACKENDS)
    # -- recurrent family --
    rnn_cell: RnnCell | None = None  # gru | lstm
    hidden_size: int = 256
    n_rnn_layers: int = 1
    bidirectional: bool | None = None  # encoder only
    attention: RnnAttention | None = None  # none | additive (Bahdanau) | general | dot (Luong)
    input_feeding: bool | None = None  # Luong et al. 2015, section 3.3
    # every parameter drawn from U(-a, a) instead of PyTorch's initialisations: Zaremba et al. 2014 (0.1),
    # Sutskever et al. 2014 (0.08); None = PyTorch's (embeddings N(0, 1), RNN U(+-1/sqrt(H)))
    init_range: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes; never read by modules

    def __post_init__(self) -> None:
        preset = RECURRENT_PRESETS.get(self.name)
        if preset:
            for key, value in preset.items():
                if getattr(self, key) is None:
                    setattr(self, key, value)

    # -- derived --
    @property
    def family(self) -> str:
        """``"transformer"`` or ``"recurrent"``."""
        return "recurrent" if self.name in RECURRENT_NAMES + RECURRENT_LM_NAMES else "transformer"

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def validate(self) -> ModelConfig:
        """Raise ``ValueError`` naming the offending field; return ``self`` when all is well."""
        _check_types(self)
        _one_of("name", self.name, MODEL_NAMES)
        _one_of("positions", self.positions, POSITIONS)
        _one_of("sinusoidal_layout", self.sinusoidal_layout, SINUSOIDAL_LAYOUTS)
        _one_of("activation", self.activation, ACTIVATIONS)
        if self.init_range is not None:
            if not (math.isfinite(self.init_range) and self.init_range > 0):
                raise ValueError(f"model.init_range must be a finite number > 0 or null, got {self.init_range}")
            if self.family != "recurrent":
                raise ValueError(f"model.init_range applies to the recurrent models, not model.name={self.name}")
        if self.copy and self.name not in RECURRENT_NAMES + ("transformer",):
            raise ValueError(
                "model.copy points with an encoder-decoder's attention: a transformer or a recurrent "
                f"encoder-decoder with attention, not model.name={self.name}"
            )
        if self.copy and self.family == "recurrent" and self.attention == "none":
            raise ValueError(
                f"model.copy points with the decoder's attention, and model.name={self.name} has "
                "model.attention=none: set model.attention (additive, general or dot)"
            )
        for key in ("d_model", "n_heads", "d_ff", "max_len", "hidden_size", "n_rnn_layers"):
            if getattr(self, key) < 1:
                raise ValueError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("n_encoder_layers", "n_decoder_layers", "n_token_types"):
            if getattr(self, key) < 0:
                raise ValueError(f"model.{key} must be >= 0, got {getattr(self, key)}")
        for key in ("dropout", "attention_dropout", "activation_dropout"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ValueError(f"model.{key} must be in [0, 1), got {getattr(self, key)}")
        for key in ("norm_eps", "rotary_base"):  # NaN passes every comparison: check finiteness first
            value = getattr(self, key)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"model.{key} must be a finite number > 0, got {value}")
        if self.family == "transformer":  # heads and positions mean nothing to the recurrent models
            if self.d_model % self.n_heads:
                raise ValueError(f"model.d_model ({self.d_model}) must be divisible by model.n_heads ({self.n_heads})")
            if self.n_kv_heads is not None and (self.n_kv_heads < 1 or self.n_heads % self.n_kv_heads):
                raise ValueError(
                    f"model.n_kv_heads ({self.n_kv_heads}) must be >= 1 and divide model.n_heads ({self.n_heads})"
                )
            if self.positions == "rotary" and self.head_dim % 2:
                raise ValueError(f"model.positions=rotary needs an even head dim, got {self.head_dim}")
            if self.positions == "sinusoidal" and self.d_model % 2:
                raise ValueError(f"model.positions=sinusoidal needs an even d_model, got {self.d_model}")
            needs = {
                "transformer": ("n_encoder_layers", "n_decoder_layers"),
                "gpt": ("n_decoder_layers",),
                "prefix-lm": ("n_decoder_layers",),
                "encoder": ("n_encoder_layers",),
            }[self.name]
            if self.name == "prefix-lm" and self.positions != "rotary":
                raise ValueError(
                    "model.positions must be rotary for model.name=prefix-lm (a row's logits must not depend "
                    f"on how much padding its batch has; see qkv.models.prefix_lm), got {self.positions!r}"
                )
            if self.name == "prefix-lm" and self.tie_embeddings:
                raise ValueError(
                    "model.tie_embeddings does not apply to model.name=prefix-lm (source rows share its table)"
                )
            for key in needs:
                if getattr(self, key) < 1:
                    raise ValueError(f"model.{key} must be >= 1 for model.name={self.name}")
        else:
            _one_of("rnn_cell", self.rnn_cell, RNN_CELLS)
            _one_of("attention", self.attention, RNN_ATTENTIONS)
            if self.name in RECURRENT_LM_NAMES:
                for key in ("attention", "bidirectional", "input_feeding"):
                    if getattr(self, key) not in ("none", False):
                        raise ValueError(
                            f"model.{key} does not apply to model.name={self.name} (a language "
                            f"model has no source to attend to and reads left to right): leave "
                            f"it unset; got {getattr(self, key)!r}"
                        )
        return self

    # -- (de)serialisation --
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build and validate; an unknown key or a wrong type raises ``ValueError`` naming the key."""
        if not isinstance(data, dict):
            raise ValueError(f"model config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config key(s): {', '.join('model.' + k for k in unknown)}")
        return cls(**data).validate()


def _one_of(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"model.{key} must be one of {', '.join(allowed)}; got {value!r}")


def _check_types(config: ModelConfig) -> None:
    hints = typing.get_type_hints(ModelConfig)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if not _is_instance(value, hints[f.name]):
            raise ValueError(f"model.{f.name} must be {_type_name(hints[f.name])}, got {value!r}")


def _is_instance(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_is_instance(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is not None:
        return isinstance(value, origin)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))
