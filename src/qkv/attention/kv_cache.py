"""The key/value cache for incremental decoding.

Self-attention in a decoder: at step ``t`` the new token's key and value are *appended* and the query
attends to everything so far -- ``O(T)`` work per step instead of recomputing ``O(T²)``.
Cross-attention: the keys and values come from the encoder output, so they are computed once
(``static=True``) and reused at every step.

Tensors are ``(B, H_kv, T_k, D)``. Beam search reorders the rows between steps, then the next step
appends: done one after the other that is two copies of the whole cache (``index_select``, then
``torch.cat``). A self-attention cache therefore only *notes* a reorder, and the next append copies the
selected rows and the new position into one fresh, contiguous tensor: one copy per step.
"""

from __future__ import annotations

import torch
from torch import Tensor


class KVCache:
    """Cached keys and values of one attention layer."""

    def __init__(self, static: bool = False) -> None:
        self.static = static
        self._k: Tensor | None = None  # (B, H_kv, T_k, D), rows as of the last append
        self._v: Tensor | None = None  # (B, H_kv, T_k, D)
        self._rows: Tensor | None = None  # (B',) a reorder not yet applied: row i is old row _rows[i]

    def __len__(self) -> int:
        return 0 if self._k is None else self._k.size(-2)

    @property
    def is_filled(self) -> bool:
        return self._k is not None

    @property
    def k(self) -> Tensor | None:
        """The cached keys ``(B, H_kv, T_k, D)``, or ``None`` before the first append."""
        self._apply_reorder()
        return self._k

    @property
    def v(self) -> Tensor | None:
        """The cached values ``(B, H_kv, T_k, D)``, or ``None`` before the first append."""
        self._apply_reorder()
        return self._v

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Add the new keys/values (``(B, H_kv, t, D)``) and return all of them so far."""
        if self.static and self._k is not None:
            raise RuntimeError("a static (cross-attention) cache is filled once and then only read")
        if self._k is None or self._v is None:
            self._k, self._v = k, v
        elif self._rows is None:
            self._k = torch.cat([self._k, k], dim=-2)  # (B, H_kv, T_k + t, D)
            self._v = torch.cat([self._v, v], dim=-2)  # (B, H_kv, T_k + t, D)
        else:  # the noted reorder and the append in one copy
            self._k, self._v = _select_and_extend(self._k, self._rows, k), _select_and_extend(self._v, self._rows, v)
            self._rows = None
        return self._k, self._v

    def reorder(self, index: Tensor) -> None:
        """Select (or duplicate) batch rows, e.g. to follow the surviving beams."""
        if self._k is None:
            return
        if self.static:  # read at every step: reorder now
            assert self._v is not None
            self._k, self._v = self._k.index_select(0, index), self._v.index_select(0, index)
        else:  # compose with a reorder still pending; applied by the next append (or read)
            self._rows = index if self._rows is None else self._rows.index_select(0, index)

    def _apply_reorder(self) -> None:
        if self._rows is not None and self._k is not None and self._v is not None:
            self._k, self._v = self._k.index_select(0, self._rows), self._v.index_select(0, self._rows)
            self._rows = None


def _select_and_extend(cached: Tensor, rows: Tensor, new: Tensor) -> Tensor:
    """``cat([cached[rows], new], dim=-2)`` written as one copy of ``cached`` (``(B, H, T, D)``, ``new``
    ``(B', H, t, D)``) into a fresh ``(B', H, T + t, D)`` tensor."""
    if torch.compiler.is_compiling():  # Dynamo cannot trace `out=` into a slice; inductor fuses cat + select itself
        return torch.cat([cached.index_select(0, rows), new], dim=-2)  # (B', H, T + t, D)
    b, h, t, d = cached.shape
    out = cached.new_empty(rows.numel(), h, t + new.size(-2), d)  # (B', H, T + t, D)
    torch.index_select(cached, 0, rows, out=out[:, :, :t])
    out[:, :, t:] = new
    return out
