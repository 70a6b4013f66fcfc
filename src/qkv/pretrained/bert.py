"""BERT-style encoders (Devlin et al. 2019) from Hugging Face ``model_type: bert`` checkpoints, e.g.
all-MiniLM-L6-v2 (Wang et al. 2020, "MiniLM"; Reimers & Gurevych 2019, "Sentence-BERT").

What makes BERT BERT, as qkv options: post-norm layers, learned positions, token-type embeddings, a
LayerNorm on the embeddings, exact GELU, no embedding scaling, no final norm. The pooler and the
pre-training heads are not loaded: the model returns the final hidden states (``BertModel``'s
``last_hidden_state``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from torch import Tensor

from qkv.errors import UserError
from qkv.models.config import ModelConfig
from qkv.pretrained.checkpoint import activation, require

_LAYER = {
    "attention.self.query": "self_attn.q_proj",
    "attention.self.key": "self_attn.k_proj",
    "attention.self.value": "self_attn.v_proj",
    "attention.output.dense": "self_attn.out_proj",
    "attention.output.LayerNorm": "self_attn_norm",
    "intermediate.dense": "ff.fc1",
    "output.dense": "ff.fc2",
    "output.LayerNorm": "ff_norm",
}
_EMBEDDINGS = {
    "embeddings.word_embeddings.weight": "encoder.embed.tokens.weight",
    "embeddings.position_embeddings.weight": "encoder.embed.positions.weight",
    "embeddings.token_type_embeddings.weight": "encoder.embed.token_types.weight",
    "embeddings.LayerNorm.weight": "encoder.embed.norm.weight",
    "embeddings.LayerNorm.bias": "encoder.embed.norm.bias",
}
PREFIXES = ("bert.",)
IGNORED = re.compile(r"^(pooler\.|cls\.|embeddings\.position_ids$)")


def model_config(hf: dict[str, Any], source: Path) -> tuple[ModelConfig, dict[str, int]]:
    kind = hf.get("position_embedding_type", "absolute")
    if kind != "absolute":
        raise UserError(f"{source / 'config.json'}: position_embedding_type={kind!r} is not supported (absolute only)")
    config = ModelConfig(
        name="encoder",
        d_model=require(hf, "hidden_size", source),
        n_heads=require(hf, "num_attention_heads", source),
        n_encoder_layers=require(hf, "num_hidden_layers", source),
        n_decoder_layers=0,
        d_ff=require(hf, "intermediate_size", source),
        max_len=require(hf, "max_position_embeddings", source),
        dropout=hf.get("hidden_dropout_prob", 0.1),
        attention_dropout=hf.get("attention_probs_dropout_prob", 0.1),
        norm_first=False,
        positions="learned",
        activation=activation(hf, "hidden_act", source),
        scale_logits=False,  # trained without T5's logit rescale
        scale_embeddings=False,
        tie_embeddings=False,
        embedding_norm=True,
        n_token_types=hf.get("type_vocab_size", 2),
        norm_eps=hf.get("layer_norm_eps", 1e-12),
    )
    vocab = require(hf, "vocab_size", source)
    return config, {"src_vocab": vocab, "tgt_vocab": 0, "pad_id": hf.get("pad_token_id", 0)}


def convert(weights: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    state = {}
    for name, tensor in weights.items():
        if IGNORED.match(name):
            continue
        if name in _EMBEDDINGS:
            state[_EMBEDDINGS[name]] = tensor
            continue
        match = re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)", name)
        if match and match.group(2) in _LAYER:
            i, part, kind = match.groups()
            state[f"encoder.layers.{i}.{_LAYER[part]}.{kind}"] = tensor
        else:
            state[name] = tensor  # reported as unexpected by load_into
    return state
