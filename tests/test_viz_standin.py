"""A tiny encoder-decoder Transformer built directly from qkv.attention, for the viz tests.

It follows the ``qkv.models`` contract the viz code relies on (``forward(src, tgt_in, need_weights=True)``
returning a ``ModelOutput`` whose ``attentions`` hold per-layer ``(B, H, T_q, T_k)`` weights), so the viz
tests do not depend on the training of a real model.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qkv.attention import MultiHeadAttention
from qkv.attention.masks import key_mask
from qkv.models.output import ModelOutput
from qkv.special import PAD_ID


class _Layer(nn.Module):
    def __init__(self, d: int, h: int, cross: bool, n_kv: int | None = None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.self_attn = MultiHeadAttention(d, h, n_kv_heads=n_kv, backend="reference")
        self.cross_attn = MultiHeadAttention(d, h, backend="reference") if cross else None
        self.norm2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(), nn.Linear(2 * d, d))
        self.norm3 = nn.LayerNorm(d)

    def forward(self, x, mask, causal, memory=None, mem_mask=None):
        a, w_self = self.self_attn(self.norm1(x), mask=mask, is_causal=causal, need_weights=True)
        x = x + a
        w_cross = None
        if self.cross_attn is not None:
            c, w_cross = self.cross_attn(self.norm2(x), memory, mask=mem_mask, need_weights=True)
            x = x + c
        return x + self.ff(self.norm3(x)), w_self, w_cross


class TinySeq2Seq(nn.Module):
    kind = "seq2seq"
    pad_id = PAD_ID

    def __init__(self, vocab: int = 30, d: int = 16, heads: int = 4, layers: int = 2, n_kv: int | None = None):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(64, d)
        self.enc = nn.ModuleList(_Layer(d, heads, False, n_kv) for _ in range(layers))
        self.dec = nn.ModuleList(_Layer(d, heads, True, n_kv) for _ in range(layers))
        self.out = nn.Linear(d, vocab)
        self.d = d

    def embed(self, t):
        return self.emb(t) * math.sqrt(self.d) + self.pos(torch.arange(t.size(1)))

    def forward(self, src, tgt_in, *, need_weights=False):
        src_mask = key_mask(src != PAD_ID)  # (B, 1, 1, T_s)
        x = self.embed(src)
        att = {"encoder_self": [], "decoder_self": [], "cross": []}
        for layer in self.enc:
            x, w, _ = layer(x, src_mask, False)
            att["encoder_self"].append(w)
        y = self.embed(tgt_in)
        for layer in self.dec:
            y, w, c = layer(y, None, True, x, src_mask)
            att["decoder_self"].append(w)
            att["cross"].append(c)
        return ModelOutput(logits=self.out(y), attentions=att if need_weights else None)


WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "to", "red", "blue", "house"]


def tiny_inspector(name: str = "transformer", extra_words: tuple[str, ...] = (), **overrides):
    """An untrained small qkv model (from ``qkv.models.build_model``) with a word tokenizer, wrapped for viz."""
    from qkv.data.tokenizers import WordTokenizer
    from qkv.models.builder import build_model
    from qkv.models.config import ModelConfig
    from qkv.viz.inspector import Inspector

    tok = WordTokenizer.train([" ".join(WORDS + list(extra_words))])
    fields = {
        "name": name,
        "d_model": 32,
        "n_heads": 4,
        "n_encoder_layers": 2,
        "n_decoder_layers": 2,
        "d_ff": 64,
        "dropout": 0.0,
        "max_len": 300,
    }
    fields.update(overrides)
    torch.manual_seed(0)
    model = build_model(ModelConfig(**fields), tok.vocab_size, tok.vocab_size)
    return Inspector(model, tok, tok, name=f"tiny-{name}", max_len=6, beam=2)
