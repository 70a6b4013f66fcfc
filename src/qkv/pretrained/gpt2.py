"""GPT-2-style decoder-only language models (Radford et al. 2019) from ``model_type: gpt2`` checkpoints.

What makes GPT-2 GPT-2, as qkv options: pre-norm layers with a final LayerNorm, learned positions,
tanh-approximated GELU, no embedding scaling, the output layer tied to the token embedding. Its weights
are stored by OpenAI's ``Conv1D`` -- ``(in, out)``, the transpose of ``nn.Linear`` -- with the query,
key and value projections fused in one ``c_attn`` matrix; conversion transposes and splits them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from torch import Tensor

from qkv.errors import UserError
from qkv.models.config import ModelConfig
from qkv.pretrained.checkpoint import activation, require

PREFIXES = ("transformer.",)
IGNORED = re.compile(r"^h\.\d+\.attn\.(bias|masked_bias)$")  # old checkpoints store the causal mask
_NORMS = {"ln_1": "self_attn_norm", "ln_2": "ff_norm"}
_CONV1D = {"attn.c_proj": "self_attn.out_proj", "mlp.c_fc": "ff.fc1", "mlp.c_proj": "ff.fc2"}


def model_config(hf: dict[str, Any], source: Path) -> tuple[ModelConfig, dict[str, int]]:
    config_path = source / "config.json"
    if hf.get("add_cross_attention"):
        raise UserError(f"{config_path}: add_cross_attention=true is not supported")
    if hf.get("scale_attn_by_inverse_layer_idx"):
        raise UserError(f"{config_path}: scale_attn_by_inverse_layer_idx=true is not supported")
    if not hf.get("scale_attn_weights", True):
        raise UserError(f"{config_path}: scale_attn_weights=false is not supported")
    d_model = require(hf, "n_embd", source)
    config = ModelConfig(
        name="gpt",
        d_model=d_model,
        n_heads=require(hf, "n_head", source),
        n_encoder_layers=0,
        n_decoder_layers=require(hf, "n_layer", source),
        d_ff=hf.get("n_inner") or 4 * d_model,
        max_len=require(hf, "n_positions", source),
        dropout=hf.get("resid_pdrop", 0.1),
        attention_dropout=hf.get("attn_pdrop", 0.1),
        norm_first=True,
        positions="learned",
        activation=activation(hf, "activation_function", source),
        scale_logits=False,  # trained without T5's logit rescale
        scale_embeddings=False,
        tie_embeddings=hf.get("tie_word_embeddings", True),
        norm_eps=hf.get("layer_norm_epsilon", 1e-5),
    )
    vocab = require(hf, "vocab_size", source)
    eos = hf.get("eos_token_id", 50256)
    ids = {
        "src_vocab": 0,
        "tgt_vocab": vocab,
        "bos_id": hf.get("bos_token_id", eos),
        "eos_id": eos,
        "pad_id": eos if hf.get("pad_token_id") is None else hf["pad_token_id"],
    }
    return config, ids


def convert(weights: dict[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    state = {}
    for name, tensor in weights.items():
        if IGNORED.match(name):
            continue
        if name in ("wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias", "lm_head.weight"):
            state[
                {
                    "wte.weight": "decoder.embed.tokens.weight",
                    "wpe.weight": "decoder.embed.positions.weight",
                    "ln_f.weight": "decoder.norm.weight",
                    "ln_f.bias": "decoder.norm.bias",
                    "lm_head.weight": "lm_head.weight",
                }[name]
            ] = tensor
            continue
        match = re.fullmatch(r"h\.(\d+)\.(.+)\.(weight|bias)", name)
        if not match:
            state[name] = tensor  # reported as unexpected by load_into
            continue
        i, part, kind = match.groups()
        layer = f"decoder.layers.{i}"
        if part in _NORMS:
            state[f"{layer}.{_NORMS[part]}.{kind}"] = tensor
        elif part in _CONV1D:
            state[f"{layer}.{_CONV1D[part]}.{kind}"] = tensor.t() if kind == "weight" else tensor
        elif part == "attn.c_attn":
            # (E, 3E) Conv1D -> three (E, E) nn.Linear weights; the bias (3E,) -> three (E,)
            fused = tensor.t() if kind == "weight" else tensor  # (3E, E) or (3E,)
            for proj, piece in zip(("q_proj", "k_proj", "v_proj"), fused.chunk(3, dim=0), strict=True):
                state[f"{layer}.self_attn.{proj}.{kind}"] = piece.contiguous()
        else:
            state[name] = tensor
    return state
