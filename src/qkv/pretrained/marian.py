"""Marian-style encoder-decoders (Junczys-Dowmunt et al. 2018; the OPUS-MT models of Tiedemann &
Thottingal 2020) from ``model_type: marian`` checkpoints.

What makes Marian Marian, as qkv options: the Transformer of Vaswani et al. 2017 with post-norm layers
and no final norm, sinusoidal positions in the "halves" layout (all sines, then all cosines), token
embeddings scaled by ``sqrt(d_model)``, SiLU ("swish") in the feed-forward, one embedding matrix shared by
encoder, decoder and output layer, and a bias on the output logits (``final_logits_bias``).
Decoding starts from the pad token (``decoder_start_token_id``), as in Marian itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from torch import Tensor

from qkv.errors import UserError
from qkv.models.config import ModelConfig
from qkv.models.positions import sinusoidal_table
from qkv.pretrained.checkpoint import activation, require

PREFIXES = ("model.",)
_LAYER = {
    "self_attn": "self_attn",
    "encoder_attn": "cross_attn",
    "self_attn_layer_norm": "self_attn_norm",
    "encoder_attn_layer_norm": "cross_attn_norm",
    "fc1": "ff.fc1",
    "fc2": "ff.fc2",
    "final_layer_norm": "ff_norm",
}


def model_config(hf: dict[str, Any], source: Path) -> tuple[ModelConfig, dict[str, int]]:
    config_path = source / "config.json"
    for enc, dec in (("encoder_attention_heads", "decoder_attention_heads"), ("encoder_ffn_dim", "decoder_ffn_dim")):
        if require(hf, enc, source) != require(hf, dec, source):
            raise UserError(f"{config_path}: {enc} != {dec} is not supported")
    src_vocab = require(hf, "vocab_size", source)
    tgt_vocab = hf.get("decoder_vocab_size") or src_vocab
    share = hf.get("share_encoder_decoder_embeddings", True)
    if share and src_vocab != tgt_vocab:
        raise UserError(f"{config_path}: shared embeddings need vocab_size == decoder_vocab_size")
    config = ModelConfig(
        name="transformer",
        d_model=require(hf, "d_model", source),
        n_heads=hf["encoder_attention_heads"],
        n_encoder_layers=require(hf, "encoder_layers", source),
        n_decoder_layers=require(hf, "decoder_layers", source),
        d_ff=hf["encoder_ffn_dim"],
        max_len=require(hf, "max_position_embeddings", source),
        dropout=hf.get("dropout", 0.1),
        attention_dropout=hf.get("attention_dropout", 0.0),
        activation_dropout=hf.get("activation_dropout", 0.0),
        norm_first=False,
        positions="sinusoidal",
        sinusoidal_layout="halves",
        activation=activation(hf, "activation_function", source),
        scale_logits=False,  # trained without T5's logit rescale
        scale_embeddings=hf.get("scale_embedding", False),
        tie_embeddings=hf.get("tie_word_embeddings", True),
        share_embeddings=share,
        output_bias=True,
    )
    pad = require(hf, "pad_token_id", source)
    ids = {
        "src_vocab": src_vocab,
        "tgt_vocab": tgt_vocab,
        "pad_id": pad,
        "eos_id": require(hf, "eos_token_id", source),
        "bos_id": hf.get("decoder_start_token_id", pad),
    }
    return config, ids


def convert(weights: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    state = {}
    for name, tensor in weights.items():
        if name.endswith("embed_positions.weight"):
            _check_positions(name, tensor)  # computed, not loaded: make sure they are the ones we compute
            continue
        if name == "final_logits_bias":
            state["lm_head.bias"] = tensor.reshape(-1)  # (1, V) -> (V,)
        elif name == "shared.weight":
            if config.share_embeddings:  # otherwise encoder/decoder embed_tokens carry their own matrices
                state["decoder.embed.tokens.weight"] = tensor
        elif name in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"):
            state[name.replace("embed_tokens", "embed.tokens")] = tensor
        else:
            match = re.fullmatch(r"(encoder|decoder)\.layers\.(\d+)\.([^.]+)\.(.+)", name)
            if match and match.group(3) in _LAYER:
                stack, i, part, rest = match.groups()
                state[f"{stack}.layers.{i}.{_LAYER[part]}.{rest}"] = tensor
            else:
                state[name] = tensor  # reported as unexpected by load_into
    return state


def _check_positions(name: str, table: Tensor) -> None:
    expected = sinusoidal_table(table.shape[0], table.shape[1], layout="halves").to(table.dtype)
    if (table - expected).abs().max() > 1e-4:
        raise UserError(f"{name}: these positions are not Marian's sinusoids; this variant is not supported")
