"""The input layer of every Transformer: token embedding (optionally scaled), plus absolute positions,
plus segment (token-type) embeddings, then an optional LayerNorm and dropout.

Vaswani et al. 2017, sections 3.4-3.5: ``x = sqrt(E) * W_emb[token] + PE(position)``, then dropout.
BERT (Devlin et al. 2019, section 3) adds a token-type embedding and a LayerNorm. Rotary positions
(Su et al. 2021) are not added here: they rotate queries and keys inside attention.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Embeddings(nn.Module):
    """``tokens (B, T) -> (B, T, E)``. Submodules are injected so that matrices can be shared
    (encoder/decoder/output tying) and so that each checkpoint's variant is a plain argument."""

    def __init__(
        self,
        tokens: nn.Embedding,
        *,
        positions: nn.Module | None = None,
        scale: float = 1.0,
        token_types: nn.Embedding | None = None,
        norm: nn.Module | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.tokens = tokens
        self.positions = positions
        self.scale = scale
        self.token_types = token_types
        self.norm = norm
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: Tensor, *, start: int = 0, token_types: Tensor | None = None) -> Tensor:
        """Embed ``tokens (B, T)`` sitting at positions ``start .. start + T - 1``."""
        x = self.tokens(tokens) * self.scale  # (B, T, E)
        if self.positions is not None:
            x = x + self.positions(start, tokens.size(1)).to(x.dtype)  # (B, T, E) + (T, E)
        if self.token_types is not None:
            if token_types is None:
                token_types = torch.zeros_like(tokens)
            x = x + self.token_types(token_types)  # (B, T, E)
        if self.norm is not None:
            x = self.norm(x)
        return self.dropout(x)

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"
