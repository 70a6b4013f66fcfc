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

Notation: ``B`` batch, ``T`` length, ``E`` model dim, ``H`` heads, ``T_s`` source length.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from qkv.attention import KVCache, MultiHeadAttention
from qkv.attention.core import Backend
from qkv.models.feed_forward import FeedForward


def layer_norm(d_model: int, eps: float, bias: bool) -> nn.LayerNorm:
    return nn.LayerNorm(d_model, eps=eps, bias=bias)


def residual(
    x: Tensor,
    norm: nn.Module,
    sublayer: Callable[[Tensor], tuple[Tensor, Tensor | None]],
    *,
    norm_first: bool,
    dropout: nn.Module,
) -> tuple[Tensor, Tensor | None]:
    """One residual sub-layer, pre- or post-norm; passes the sub-layer's attention weights through."""
    if norm_first:
        out, weights = sublayer(norm(x))
        return x + dropout(out), weights
    out, weights = sublayer(x)
    return norm(x + dropout(out)), weights


class EncoderLayer(nn.Module):
    """Self-attention + feed-forward: ``(B, T, E) -> (B, T, E)``."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        *,
        n_kv_heads: int | None = None,
        activation: str = "relu",
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        activation_dropout: float = 0.0,
        norm_first: bool = True,
        norm_eps: float = 1e-5,
        bias: bool = True,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(
            d_model, n_heads, n_kv_heads=n_kv_heads, bias=bias, dropout=attention_dropout, backend=backend
        )
        self.self_attn_norm = layer_norm(d_model, norm_eps, bias)
        self.ff = FeedForward(d_model, d_ff, activation=activation, dropout=activation_dropout, bias=bias)
        self.ff_norm = layer_norm(d_model, norm_eps, bias)
        self.dropout = nn.Dropout(dropout)

    @property
    def _wrap(self) -> dict:
        return {"norm_first": self.norm_first, "dropout": self.dropout}

    def forward(
        self, x: Tensor, *, mask: Tensor | None = None, rotary=None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """``x (B, T, E)``, ``mask`` broadcastable to ``(B, H, T, T)``; returns ``(x, weights (B, H, T, T) | None)``."""
        x, weights = residual(
            x,
            self.self_attn_norm,
            lambda h: self.self_attn(h, mask=mask, need_weights=need_weights, rotary=rotary),
            **self._wrap,
        )
        x, _ = residual(x, self.ff_norm, lambda h: (self.ff(h), None), **self._wrap)
        return x, weights


class DecoderLayer(nn.Module):
    """Causal self-attention (+ cross-attention when ``cross_attention``) + feed-forward."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        *,
        cross_attention: bool = True,
        n_kv_heads: int | None = None,
        activation: str = "relu",
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        activation_dropout: float = 0.0,
        norm_first: bool = True,
        norm_eps: float = 1e-5,
        bias: bool = True,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        self.norm_first = norm_first

        def attention() -> MultiHeadAttention:
            return MultiHeadAttention(
                d_model, n_heads, n_kv_heads=n_kv_heads, bias=bias, dropout=attention_dropout, backend=backend
            )

        self.self_attn = attention()
        self.self_attn_norm = layer_norm(d_model, norm_eps, bias)
        self.cross_attn = attention() if cross_attention else None
        self.cross_attn_norm = layer_norm(d_model, norm_eps, bias) if cross_attention else None
        self.ff = FeedForward(d_model, d_ff, activation=activation, dropout=activation_dropout, bias=bias)
        self.ff_norm = layer_norm(d_model, norm_eps, bias)
        self.dropout = nn.Dropout(dropout)

    @property
    def _wrap(self) -> dict:
        return {"norm_first": self.norm_first, "dropout": self.dropout}

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        memory_mask: Tensor | None = None,
        self_cache: KVCache | None = None,
        cross_cache: KVCache | None = None,
        rotary=None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``x (B, T, E)`` are the newest ``T`` target positions (earlier ones live in ``self_cache``);
        ``memory (B, T_s, E)`` with ``memory_mask`` broadcastable to ``(B, H, T, T_s)``.

        Returns ``(x, self weights (B, H, T, T_k) | None, cross weights (B, H, T, T_s) | None)``.
        """
        x, self_weights = residual(
            x,
            self.self_attn_norm,
            lambda h: self.self_attn(h, is_causal=True, cache=self_cache, rotary=rotary, need_weights=need_weights),
            **self._wrap,
        )
        cross_weights = None
        if self.cross_attn is not None:
            if memory is None and (cross_cache is None or not cross_cache.is_filled):
                raise ValueError("this decoder layer has cross-attention: pass the encoder memory")
            x, cross_weights = residual(
                x,
                self.cross_attn_norm,
                lambda h: self.cross_attn(h, memory, mask=memory_mask, cache=cross_cache, need_weights=need_weights),
                **self._wrap,
            )
        x, _ = residual(x, self.ff_norm, lambda h: (self.ff(h), None), **self._wrap)
        return x, self_weights, cross_weights
