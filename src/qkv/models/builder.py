"""`build_model(config, src_vocab, tgt_vocab)`: the one place where a :class:`ModelConfig` becomes modules.

Modules take plain arguments and injected submodules; only this file reads the config (torchtune's
"builders wire, modules compute"). Pretrained checkpoints go through the same function
(:mod:`qkv.pretrained` translates their config.json into a :class:`ModelConfig`), so every variant a
real checkpoint needs is an ordinary option here, not a special case.
"""

from __future__ import annotations

import math

from torch import nn

from qkv.models.config import ModelConfig
from qkv.models.decoder_only import DecoderOnlyLM
from qkv.models.embeddings import Embeddings
from qkv.models.encoder_decoder import Transformer
from qkv.models.encoder_only import EncoderOnly
from qkv.models.positions import LearnedPositions, RotaryEmbedding, SinusoidalPositions, embedding_scale
from qkv.models.transformer_layers import DecoderLayer, EncoderLayer, layer_norm
from qkv.models.transformer_stacks import TransformerDecoder, TransformerEncoder
from qkv.special import BOS_ID, EOS_ID, PAD_ID


def build_model(
    config: ModelConfig,
    src_vocab: int,
    tgt_vocab: int,
    *,
    pad_id: int = PAD_ID,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
) -> nn.Module:
    """Build the model named by ``config.name``; ``src_vocab`` is ignored by decoder-only models.

    ``pad_id``/``bos_id``/``eos_id`` default to qkv's own special ids; pretrained checkpoints pass theirs.
    """
    config.validate()
    model = _build(config, src_vocab, tgt_vocab, {"pad_id": pad_id, "bos_id": bos_id, "eos_id": eos_id})
    model.config = config  # what it was built from (read by summaries and the explorer; never by forward)
    return model


def _build(config: ModelConfig, src_vocab: int, tgt_vocab: int, ids: dict[str, int]) -> nn.Module:
    if config.family == "recurrent":
        from qkv.models.recurrent import build_recurrent  # the recurrent family lives in its own module

        return build_recurrent(config, src_vocab, tgt_vocab)
    if config.name == "transformer":
        tgt_tokens = _token_embedding(config, tgt_vocab)
        if config.share_embeddings:
            if src_vocab != tgt_vocab:
                raise ValueError(
                    f"model.share_embeddings needs one vocabulary, got src_vocab={src_vocab} tgt_vocab={tgt_vocab}"
                )
            src_tokens = tgt_tokens
        else:
            src_tokens = _token_embedding(config, src_vocab)
        encoder = _encoder(config, src_tokens)
        decoder = _decoder(config, tgt_tokens, cross_attention=True)
        return Transformer(encoder, decoder, _output(config, tgt_tokens, tgt_vocab), **ids)
    if config.name == "gpt":
        tokens = _token_embedding(config, tgt_vocab)
        decoder = _decoder(config, tokens, cross_attention=False)
        return DecoderOnlyLM(decoder, _output(config, tokens, tgt_vocab), **ids)
    # encoder: a per-token output layer when tgt_vocab > 0, else hidden states (BERT's BertModel)
    tokens = _token_embedding(config, src_vocab)
    head = None
    if tgt_vocab > 0:
        head = _output(config, tokens if src_vocab == tgt_vocab else None, tgt_vocab)
    return EncoderOnly(_encoder(config, tokens), head, **ids)


def _token_embedding(config: ModelConfig, vocab: int) -> nn.Embedding:
    embedding = nn.Embedding(vocab, config.d_model)
    # With sqrt(E) scaling the embeddings start at unit scale after scaling (fairseq's convention).
    std = config.d_model**-0.5 if config.scale_embeddings else 0.02
    nn.init.normal_(embedding.weight, std=std)
    return embedding


def _embeddings(config: ModelConfig, tokens: nn.Embedding) -> Embeddings:
    positions: nn.Module | None = None
    if config.positions == "sinusoidal":
        positions = SinusoidalPositions(config.d_model, config.max_len, layout=config.sinusoidal_layout)
    elif config.positions == "learned":
        positions = LearnedPositions(config.d_model, config.max_len)
    token_types = nn.Embedding(config.n_token_types, config.d_model) if config.n_token_types else None
    if token_types is not None:
        nn.init.normal_(token_types.weight, std=0.02)
    return Embeddings(
        tokens,
        positions=positions,
        scale=embedding_scale(config.d_model, config.scale_embeddings),
        token_types=token_types,
        norm=layer_norm(config.d_model, config.norm_eps, config.bias) if config.embedding_norm else None,
        dropout=config.dropout,
    )


def _layer_options(config: ModelConfig) -> dict:
    return {
        "n_kv_heads": config.n_kv_heads,
        "activation": config.activation,
        "dropout": config.dropout,
        "attention_dropout": config.attention_dropout,
        "activation_dropout": config.activation_dropout,
        "norm_first": config.norm_first,
        "norm_eps": config.norm_eps,
        "bias": config.bias,
        "backend": config.attention_backend,
    }


def _stack_options(config: ModelConfig) -> dict:
    # Pre-norm leaves the residual stream un-normalised, so pre-norm stacks end with a LayerNorm.
    return {
        "norm": layer_norm(config.d_model, config.norm_eps, config.bias) if config.norm_first else None,
        "rotary": RotaryEmbedding(config.head_dim, base=config.rotary_base) if config.positions == "rotary" else None,
    }


def _encoder(config: ModelConfig, tokens: nn.Embedding) -> TransformerEncoder:
    layers = [
        EncoderLayer(config.d_model, config.n_heads, config.d_ff, **_layer_options(config))
        for _ in range(config.n_encoder_layers)
    ]
    return TransformerEncoder(_embeddings(config, tokens), layers, **_stack_options(config))


def _decoder(config: ModelConfig, tokens: nn.Embedding, *, cross_attention: bool) -> TransformerDecoder:
    layers = [
        DecoderLayer(
            config.d_model, config.n_heads, config.d_ff, cross_attention=cross_attention, **_layer_options(config)
        )
        for _ in range(config.n_decoder_layers)
    ]
    return TransformerDecoder(_embeddings(config, tokens), layers, **_stack_options(config))


def _output(config: ModelConfig, tokens: nn.Embedding | None, vocab: int) -> nn.Linear:
    head = nn.Linear(config.d_model, vocab, bias=config.output_bias)
    if config.tie_embeddings and tokens is not None:
        head.weight = tokens.weight  # Press & Wolf 2017: one matrix for input and output
    else:
        nn.init.normal_(head.weight, std=1 / math.sqrt(config.d_model))
    if head.bias is not None:
        nn.init.zeros_(head.bias)
    return head
