"""The two Transformer layers (Vaswani et al. 2017, section 3.1, Figure 1).

Encoder layer: self-attention, then a position-wise feed-forward network. Decoder layer: *causal*
self-attention, then cross-attention to the encoder output (queries from the decoder, keys and values
from the encoder), then the feed-forward network. A decoder-only language model (Radford et al. 2018)
is the decoder layer without cross-attention.

Each sub-layer is wrapped in a residual connection with dropout and a LayerNorm, either after the
residual sum (``norm_first=False``, "post-norm": the paper, BERT, Marian) or before the sub-layer
(``norm_first=True``, "pre-norm": GPT-2 and most models since; Xiong et al. 2020)::

    post-norm:  x = LayerNorm(x + Dropout(Sublayer(x)))
    pre-norm:   x = x + Dropout(Sublayer(LayerNorm(x)))

Both are written out in ``forward``, one line per sub-layer, as nanoGPT's ``Block`` reads. The layers
*receive* their attention, feed-forward and norm modules (torchtune's component builders):
:mod:`qkv.models.builder` builds and wires them from the config.

Notation: ``B`` batch, ``T`` length, ``E`` model dim, ``H`` heads, ``T_s`` source length.
"""

from __future__ import annotations

from torch import Tensor, nn

from qkv.attention import KVCache, MultiHeadAttention
from qkv.models.feed_forward import FeedForward


def layer_norm(d_model: int, eps: float, bias: bool) -> nn.LayerNorm:
    return nn.LayerNorm(d_model, eps=eps, bias=bias)


class EncoderLayer(nn.Module):
    """Self-attention + feed-forward: ``(B, T, E) -> (B, T, E)``."""

    def __init__(
        self,
        self_attn: MultiHeadAttention,
        self_attn_norm: nn.Module,
        ff: FeedForward,
        ff_norm: nn.Module,
        *,
        norm_first: bool = True,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn, self.self_attn_norm = self_attn, self_attn_norm
        self.ff, self.ff_norm = ff, ff_norm
        self.dropout = nn.Dropout(dropout)  # on each sub-layer's output, before the residual sum

    def forward(
        self, x: Tensor, *, mask: Tensor | None = None, rotary=None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """``x (B, T, E)``, ``mask`` broadcastable to ``(B, H, T, T)``; returns ``(x, weights (B, H, T, T) | None)``."""
        attend = {"mask": mask, "rotary": rotary, "need_weights": need_weights}
        if self.norm_first:
            a, weights = self.self_attn(self.self_attn_norm(x), **attend)  # (B, T, E)
            x = x + self.dropout(a)
            x = x + self.dropout(self.ff(self.ff_norm(x)))
        else:
            a, weights = self.self_attn(x, **attend)  # (B, T, E)
            x = self.self_attn_norm(x + self.dropout(a))
            x = self.ff_norm(x + self.dropout(self.ff(x)))
        return x, weights


class DecoderLayer(nn.Module):
    """Causal self-attention (+ cross-attention when given one) + feed-forward: ``(B, T, E) -> (B, T, E)``."""

    def __init__(
        self,
        self_attn: MultiHeadAttention,
        self_attn_norm: nn.Module,
        ff: FeedForward,
        ff_norm: nn.Module,
        *,
        cross_attn: MultiHeadAttention | None = None,
        cross_attn_norm: nn.Module | None = None,
        norm_first: bool = True,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if (cross_attn is None) != (cross_attn_norm is None):
            raise ValueError("cross-attention needs both cross_attn and cross_attn_norm (or neither)")
        self.norm_first = norm_first
        self.self_attn, self.self_attn_norm = self_attn, self_attn_norm
        self.cross_attn, self.cross_attn_norm = cross_attn, cross_attn_norm
        self.ff, self.ff_norm = ff, ff_norm
        self.dropout = nn.Dropout(dropout)  # on each sub-layer's output, before the residual sum

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        memory_mask: Tensor | None = None,
        self_mask: Tensor | None = None,
        self_cache: KVCache | None = None,
        cross_cache: KVCache | None = None,
        rotary=None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``x (B, T, E)`` are the newest ``T`` target positions (earlier ones live in ``self_cache``);
        ``memory (B, T_s, E)`` with ``memory_mask`` broadcastable to ``(B, H, T, T_s)``.

        Returns ``(x, self weights (B, H, T, T_k) | None, cross weights (B, H, T, T_s) | None)``.
        """
        causal = {
            "mask": self_mask,
            "is_causal": True,
            "cache": self_cache,
            "rotary": rotary,
            "need_weights": need_weights,
        }
        cross = {"mask": memory_mask, "cache": cross_cache, "need_weights": need_weights}
        cross_weights = None
        if self.cross_attn is not None and memory is None and (cross_cache is None or not cross_cache.is_filled):
            raise ValueError("this decoder layer has cross-attention: pass the encoder memory")
        if self.norm_first:
            a, self_weights = self.self_attn(self.self_attn_norm(x), **causal)  # (B, T, E)
            x = x + self.dropout(a)
            if self.cross_attn is not None and self.cross_attn_norm is not None:
                a, cross_weights = self.cross_attn(self.cross_attn_norm(x), memory, **cross)  # (B, T, E)
                x = x + self.dropout(a)
            x = x + self.dropout(self.ff(self.ff_norm(x)))
        else:
            a, self_weights = self.self_attn(x, **causal)  # (B, T, E)
            x = self.self_attn_norm(x + self.dropout(a))
            if self.cross_attn is not None and self.cross_attn_norm is not None:
                a, cross_weights = self.cross_attn(x, memory, **cross)  # (B, T, E)
                x = self.cross_attn_norm(x + self.dropout(a))
            x = self.ff_norm(x + self.dropout(self.ff(x)))
        return x, self_weights, cross_weights
