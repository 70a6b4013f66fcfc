"""Where a token is: sinusoidal, learned and rotary position information.

- Sinusoidal (Vaswani et al. 2017, section 3.5): ``PE(p, 2i) = sin(p / 10000^(2i/E))``,
  ``PE(p, 2i+1) = cos(p / 10000^(2i/E))``, added to the token embeddings. Two column layouts exist in
  checkpoints: ``"interleaved"`` (the paper: sin, cos, sin, cos, ...) and ``"halves"`` (Marian/fairseq:
  every sine first, then every cosine; same frequencies).
- Learned (BERT, GPT-2): one trained vector per position, up to ``max_len``.
- Rotary (Su et al. 2021, "RoFormer"): no addition to the embeddings; each query and key is rotated, pair of
  dimensions by pair, by an angle proportional to its position, so ``q_m . k_n`` depends on ``m - n`` only.
  We pair dimension ``j`` with ``j + D/2`` (the GPT-NeoX / Llama layout).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_table(length: int, dim: int, *, layout: str = "interleaved", base: float = 10000.0) -> Tensor:
    """The ``(length, dim)`` table of Vaswani et al., computed in float64 (cast by the caller)."""
    if dim % 2:
        raise ValueError(f"sinusoidal positions need an even dim, got {dim}")
    pos = torch.arange(length, dtype=torch.float64)[:, None]  # (T, 1)
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (E/2,)
    angle = pos * inv_freq  # (T, E/2)
    if layout == "interleaved":
        return torch.stack([angle.sin(), angle.cos()], dim=-1).reshape(length, dim)  # (T, E/2, 2) -> (T, E)
    if layout == "halves":
        return torch.cat([angle.sin(), angle.cos()], dim=-1)  # (T, E)
    raise ValueError(f"layout must be 'interleaved' or 'halves', got {layout!r}")


class SinusoidalPositions(nn.Module):
    """Fixed sinusoidal positions: ``forward(start, length) -> (length, E)``, the rows of positions
    ``start .. start + length - 1``. No parameters; any length."""

    table: Tensor  # (max_len, E), a non-persistent buffer that grows on demand

    def __init__(self, d_model: int, max_len: int = 512, *, layout: str = "interleaved") -> None:
        super().__init__()
        self.d_model, self.layout = d_model, layout
        self.register_buffer("table", sinusoidal_table(max_len, d_model, layout=layout), persistent=False)

    def forward(self, start: int, length: int) -> Tensor:
        needed = start + length
        if needed > self.table.shape[0]:  # grow on demand: sinusoids are defined for every position
            grown = sinusoidal_table(max(needed, 2 * self.table.shape[0]), self.d_model, layout=self.layout)
            self.table = grown.to(self.table.device)
        return self.table[start:needed]  # (length, E)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, layout={self.layout}"


class LearnedPositions(nn.Module):
    """A trained ``(max_len, E)`` table: ``forward(start, length) -> (length, E)``, a slice of it.

    The range check reads Python integers, never the tensor's values, so ``torch.compile`` traces the
    embeddings without a graph break (a check on ``positions.max()`` cost one on every step)."""

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(max_len, d_model))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, start: int, length: int) -> Tensor:
        if length and start + length > self.weight.shape[0]:
            raise ValueError(
                f"position {start + length - 1} is beyond the learned table (max_len={self.weight.shape[0]}); "
                "raise model.max_len or use shorter sequences"
            )
        return self.weight[start : start + length]  # (length, E)


def learned_position_limit(model: nn.Module) -> int | None:
    """How many positions ``model`` can read: the rows of its (smallest) learned position table, or None
    when it has none (sinusoidal, rotary and recurrent models read any length)."""
    rows = [m.weight.shape[0] for m in model.modules() if isinstance(m, LearnedPositions)]
    return min(rows) if rows else None


class RotaryEmbedding(nn.Module):
    """Rotary position embedding as the attention ``rotary`` hook: ``(q, k, q_start, k_start) -> (q, k)``.

    ``q (B, H, T_q, D)``, ``k (B, H_kv, T_k, D)``; ``q_start`` and ``k_start`` are the absolute positions
    of their first rows (with a KV cache: the cache length). Computed in float32 at least.
    """

    inv_freq: Tensor  # (D/2,) float64, a non-persistent buffer

    def __init__(self, head_dim: int, *, base: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary positions need an even head dim, got {head_dim}")
        self.head_dim, self.base = head_dim, base
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (D/2,)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def rotate(self, x: Tensor, start: int) -> Tensor:
        """Rotate ``x (B, H, T, D)`` whose rows sit at positions ``start, start + 1, ...``."""
        dtype = torch.promote_types(x.dtype, torch.float32)
        positions = torch.arange(start, start + x.size(-2), dtype=torch.float64, device=x.device)  # (T,)
        angle = positions[:, None] * self.inv_freq  # (T, D/2)
        cos = angle.cos().to(dtype)  # (T, D/2)
        sin = angle.sin().to(dtype)
        x1, x2 = x.to(dtype).chunk(2, dim=-1)  # (B, H, T, D/2) each
        rotated = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)  # (B, H, T, D)
        return rotated.to(x.dtype)

    def forward(self, q: Tensor, k: Tensor, q_start: int, k_start: int) -> tuple[Tensor, Tensor]:
        return self.rotate(q, q_start), self.rotate(k, k_start)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, base={self.base:g}"


def embedding_scale(d_model: int, enabled: bool) -> float:
    """Vaswani et al. 2017, section 3.4: token embeddings are multiplied by ``sqrt(d_model)``."""
    return math.sqrt(d_model) if enabled else 1.0
