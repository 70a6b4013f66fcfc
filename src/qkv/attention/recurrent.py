"""The attention of the recurrent encoder-decoders that came before the Transformer.

* :class:`AdditiveAttention` -- Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly
  Learning to Align and Translate": ``score(s, h_j) = vᵀ tanh(W_s s + W_h h_j)``.
* :class:`MultiplicativeAttention` -- Luong, Pham & Manning 2015, "Effective Approaches to
  Attention-based Neural Machine Translation": ``dot`` ``score = sᵀ h_j`` and ``general``
  ``score = sᵀ W_a h_j``.

Both follow the same contract as the Transformer's attention: one query (the decoder state ``s``)
searches the keys (encoder states ``h_j``), softmax turns scores into weights, and the weights mix the
values: ``forward(query (B, D_q), keys (B, T, D_k), values (B, T, D_v), mask (B, T)) ->
(context (B, D_v), weights (B, T))``. Masked positions (False) get weight 0; the softmax is the same
:func:`~qkv.attention.core.masked_softmax` the Transformer uses.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from qkv.attention.core import masked_softmax


def _mix(weights: Tensor, values: Tensor) -> Tensor:
    """Weighted sum of the values: ``(B, T) x (B, T, D_v) -> (B, D_v)``."""
    return torch.bmm(weights.unsqueeze(1).to(values.dtype), values).squeeze(1)  # (B, 1, D_v) -> (B, D_v)


class AdditiveAttention(nn.Module):
    """Bahdanau ("concat") attention: ``vᵀ tanh(W_q q + W_k k_j)``."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, attn_dim, bias=True)
        self.energy = nn.Linear(attn_dim, 1, bias=False)  # the vector v

    def precompute_keys(self, keys: Tensor) -> Tensor:
        """``W_k k_j`` for every source position, ``(B, T, attn_dim)`` -- once per sentence, not per step."""
        return self.key_proj(keys)

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor,
        mask: Tensor | None = None,
        projected_keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        projected_keys = self.precompute_keys(keys) if projected_keys is None else projected_keys
        hidden = torch.tanh(self.query_proj(query).unsqueeze(1) + projected_keys)  # (B, T, attn_dim)
        scores = self.energy(hidden).squeeze(-1)  # (B, T)
        weights = masked_softmax(scores, mask)  # (B, T)
        return _mix(weights, values), weights


class MultiplicativeAttention(nn.Module):
    """Luong attention: ``dot`` (``qᵀ k_j``, needs equal dims) or ``general`` (``qᵀ W_a k_j``)."""

    def __init__(self, query_dim: int, key_dim: int, kind: Literal["general", "dot"] = "general") -> None:
        super().__init__()
        if kind not in ("general", "dot"):
            raise ValueError(f"kind must be 'general' or 'dot', got {kind!r}")
        if kind == "dot" and query_dim != key_dim:
            raise ValueError(f"dot attention needs query_dim == key_dim, got {query_dim} and {key_dim}")
        self.kind = kind
        self.key_proj = nn.Linear(key_dim, query_dim, bias=False) if kind == "general" else None

    def precompute_keys(self, keys: Tensor) -> Tensor:
        """``W_a k_j`` for every source position (identity for ``dot``), ``(B, T, D_q)``."""
        return keys if self.key_proj is None else self.key_proj(keys)

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor,
        mask: Tensor | None = None,
        projected_keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        projected_keys = self.precompute_keys(keys) if projected_keys is None else projected_keys
        scores = torch.bmm(projected_keys, query.unsqueeze(-1)).squeeze(-1)  # (B, T, D_q) x (B, D_q, 1) -> (B, T)
        weights = masked_softmax(scores, mask)  # (B, T)
        return _mix(weights, values), weights
