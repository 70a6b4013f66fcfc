"""The key/value cache for incremental decoding.

Self-attention in a decoder: at step ``t`` the new token's key and value are *appended* and the query
attends to everything so far -- ``O(T)`` work per step instead of recomputing ``O(T²)``.
Cross-attention: the keys and values come from the encoder output, so they are computed once
(``static=True``) and reused at every step.

Tensors are ``(B, H_kv, T_k, D)``.
"""

from __future__ import annotations

import torch
from torch import Tensor


class KVCache:
    """Cached keys and values of one attention layer."""

    def __init__(self, static: bool = False) -> None:
        self.static = static
        self.k: Tensor | None = None  # (B, H_kv, T_k, D)
        self.v: Tensor | None = None  # (B, H_kv, T_k, D)

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.size(-2)

    @property
    def is_filled(self) -> bool:
        return self.k is not None

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Add the new keys/values (``(B, H_kv, t, D)``) and return all of them so far."""
        if self.static and self.k is not None:
            raise RuntimeError("a static (cross-attention) cache is filled once and then only read")
        if self.k is None or self.v is None:
            self.k, self.v = k, v
        else:
            self.k = torch.cat([self.k, k], dim=-2)  # (B, H_kv, T_k + t, D)
            self.v = torch.cat([self.v, v], dim=-2)  # (B, H_kv, T_k + t, D)
        return self.k, self.v

    def reorder(self, index: Tensor) -> None:
        """Select (or duplicate) batch rows, e.g. to follow the surviving beams."""
        if self.k is not None and self.v is not None:
            self.k = self.k.index_select(0, index)
            self.v = self.v.index_select(0, index)
