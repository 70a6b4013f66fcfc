"""Stacks of Transformer layers (Vaswani et al. 2017, Figure 1: "N x"), and the decoder's explicit state.

``TransformerEncoder``: embeddings -> N encoder layers -> final LayerNorm (pre-norm only).
``TransformerDecoder``: embeddings -> N decoder layers -> final LayerNorm (pre-norm only); with a
:class:`DecoderState` it decodes incrementally: each layer appends the new keys/values to its own
self-attention :class:`~qkv.attention.KVCache`, and computes the encoder's keys/values once into a
static cross-attention cache.

Notation: ``B`` batch, ``T`` length, ``T_s`` source length, ``E`` model dim, ``H`` heads.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from qkv.attention import KVCache
from qkv.attention.masks import causal_mask, combine, key_mask
from qkv.models.embeddings import Embeddings
from qkv.models.positions import RotaryEmbedding
from qkv.models.transformer_layers import DecoderLayer, EncoderLayer


@dataclass
class DecoderState:
    """What a Transformer decoder remembers between ``decode_step`` calls: one KV cache per layer."""

    self_caches: list[KVCache]
    cross_caches: list[KVCache] | None = None

    @classmethod
    def empty(cls, n_layers: int, cross: bool) -> DecoderState:
        return cls(
            [KVCache() for _ in range(n_layers)],
            [KVCache(static=True) for _ in range(n_layers)] if cross else None,
        )

    @property
    def position(self) -> int:
        """How many target positions have been decoded so far."""
        return len(self.self_caches[0])

    def reorder(self, index: Tensor, *, same_rows: bool = False) -> DecoderState:
        """Select/duplicate batch rows (beam search) in place; returns ``self``. ``same_rows``: every new row
        comes from a row of the same input (beams reordered within their input), so the static
        cross-attention caches -- equal for all beams of an input -- are kept as they are."""
        for cache in self.self_caches + ([] if same_rows else (self.cross_caches or [])):
            cache.reorder(index)
        return self


class TransformerEncoder(nn.Module):
    """``tokens (B, T_s)`` + ``keep (B, T_s)`` -> hidden states ``(B, T_s, E)`` and per-layer weights."""

    def __init__(
        self,
        embed: Embeddings,
        layers: list[EncoderLayer],
        *,
        norm: nn.Module | None = None,
        rotary: RotaryEmbedding | None = None,
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.embed = embed
        self.layers = nn.ModuleList(layers)
        self.norm = norm
        self.rotary = rotary
        self.causal = causal  # each source token attends to itself and earlier tokens only

    def forward(
        self, tokens: Tensor, keep: Tensor, *, token_types: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, list[Tensor]]:
        x = self.embed(tokens, token_types=token_types)  # (B, T_s, E)
        mask: Tensor | None = key_mask(keep)  # (B, 1, 1, T_s): padding keys are never attended to
        if self.causal:
            mask = combine(mask, causal_mask(tokens.size(1), device=tokens.device))  # (B, 1, T_s, T_s)
        weights = []
        for layer in self.layers:
            x, w = layer(x, mask=mask, rotary=self.rotary, need_weights=need_weights)
            if need_weights:
                weights.append(w)
        if self.norm is not None:
            x = self.norm(x)
        return x, weights


class TransformerDecoder(nn.Module):
    """``tokens (B, T)`` (the newest ``T`` positions when a ``state`` is given) -> ``(B, T, E)`` and weights."""

    def __init__(
        self,
        embed: Embeddings,
        layers: list[DecoderLayer],
        *,
        norm: nn.Module | None = None,
        rotary: RotaryEmbedding | None = None,
    ) -> None:
        super().__init__()
        self.embed = embed
        self.layers = nn.ModuleList(layers)
        self.norm = norm
        self.rotary = rotary

    @property
    def has_cross_attention(self) -> bool:
        return self.layers[0].cross_attn is not None

    def forward(
        self,
        tokens: Tensor,
        memory: Tensor | None = None,
        memory_keep: Tensor | None = None,
        *,
        self_mask: Tensor | None = None,
        state: DecoderState | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """``self_mask`` (True = may attend), broadcastable to ``(B, H, T, T_k)``, is applied on top of the
        causal mask: a prefix LM's padding (:mod:`qkv.models.prefix_lm`)."""
        start = 0 if state is None else state.position
        x = self.embed(tokens, start=start)  # (B, T, E)
        memory_mask = None if memory_keep is None else key_mask(memory_keep)  # (B, 1, 1, T_s)
        self_weights, cross_weights = [], []
        for i, layer in enumerate(self.layers):
            x, w_self, w_cross = layer(
                x,
                memory,
                memory_mask=memory_mask,
                self_mask=self_mask,
                self_cache=None if state is None else state.self_caches[i],
                cross_cache=None if state is None or state.cross_caches is None else state.cross_caches[i],
                rotary=self.rotary,
                need_weights=need_weights,
            )
            if need_weights:
                self_weights.append(w_self)
                if w_cross is not None:
                    cross_weights.append(w_cross)
        if self.norm is not None:
            x = self.norm(x)
        return x, self_weights, cross_weights
