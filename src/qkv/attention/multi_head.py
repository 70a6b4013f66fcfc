"""Multi-head attention (Vaswani et al. 2017, §3.2.2), with grouped-query attention
(Ainslie et al. 2023, "GQA") and multi-query attention (Shazeer 2019) as options.

    head_i   = Attention(X_q W_Q^i, X_kv W_K^i, X_kv W_V^i)
    MHA(X)   = Concat(head_1, ..., head_H) W_O

The four projections are plain ``nn.Linear`` layers named ``q_proj``, ``k_proj``, ``v_proj``,
``out_proj``; the attention itself is :func:`qkv.attention.attend`. Per-head weights come back as data,
``(B, H, T_q, T_k)``, never averaged over heads and never stored on the module.

Notation: ``B`` batch, ``T_q``/``T_k`` query/key lengths, ``E`` model dim, ``H`` query heads, ``H_kv``
key/value heads, ``D`` head dim.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from qkv.attention.core import BACKENDS, Backend, attend
from qkv.attention.kv_cache import KVCache

# rotary(q, k, q_start, k_start) -> (q, k): rotates per-head q (B, H, T_q, D) and k (B, H_kv, t, D)
# whose first positions are q_start and k_start.
RotaryFn = Callable[[Tensor, Tensor, int, int], tuple[Tensor, Tensor]]


class MultiHeadAttention(nn.Module):
    """Self- or cross-attention with ``n_heads`` query heads and ``n_kv_heads`` key/value heads.

    Args:
        d_model: model dim ``E`` (input of ``q_proj`` and output of ``out_proj``).
        n_heads: query heads ``H``.
        n_kv_heads: key/value heads ``H_kv`` (default ``H``; ``1`` = multi-query; must divide ``H``).
        head_dim: ``D`` (default ``E // H``).
        bias: biases on the four projections.
        dropout: dropout on the attention weights (training only).
        kv_dim: input dim of the keys/values (cross-attention from a differently sized encoder).
        backend: ``"auto"`` (fused unless weights are asked for), ``"reference"`` or ``"fused"``.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        *,
        n_kv_heads: int | None = None,
        head_dim: int | None = None,
        bias: bool = True,
        dropout: float = 0.0,
        kv_dim: int | None = None,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if head_dim is None:
            if d_model % n_heads != 0:
                raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
            head_dim = d_model // n_heads
        if n_heads % n_kv_heads != 0:
            raise ValueError(f"n_heads ({n_heads}) must be a multiple of n_kv_heads ({n_kv_heads})")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        kv_dim = d_model if kv_dim is None else kv_dim
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.dropout, self.backend = dropout, backend
        self.q_proj = nn.Linear(d_model, n_heads * head_dim, bias=bias)
        self.k_proj = nn.Linear(kv_dim, n_kv_heads * head_dim, bias=bias)
        self.v_proj = nn.Linear(kv_dim, n_kv_heads * head_dim, bias=bias)
        self.out_proj = nn.Linear(n_heads * head_dim, d_model, bias=bias)

    def split_heads(self, x: Tensor, n_heads: int) -> Tensor:
        """``(B, T, n_heads * D)`` -> ``(B, n_heads, T, D)``."""
        b, t, _ = x.shape
        return x.view(b, t, n_heads, self.head_dim).transpose(1, 2)  # (B, n_heads, T, D)

    def project_kv(self, x_kv: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of ``x_kv (B, T_k, E_kv)``, each ``(B, H_kv, T_k, D)``."""
        k = self.split_heads(self.k_proj(x_kv), self.n_kv_heads)  # (B, H_kv, T_k, D)
        v = self.split_heads(self.v_proj(x_kv), self.n_kv_heads)  # (B, H_kv, T_k, D)
        return k, v

    def forward(
        self,
        x_q: Tensor,
        x_kv: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
        cache: KVCache | None = None,
        rotary: RotaryFn | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``x_q (B, T_q, E)`` to ``x_kv (B, T_k, E_kv)`` (``x_q`` itself when ``None``).

        ``mask`` is boolean (True = may attend), broadcastable to ``(B, H, T_q, T_k)`` where ``T_k``
        includes cached keys. With a self-attention ``cache``, the new keys/values are appended to it
        and ``x_q`` holds the newest ``T_q`` positions; with a static (cross-attention) cache that is
        already filled, ``x_kv`` is not needed. Returns ``(out (B, T_q, E), weights (B, H, T_q, T_k) | None)``.
        """
        x_kv = x_q if x_kv is None else x_kv
        q = self.split_heads(self.q_proj(x_q), self.n_heads)  # (B, H, T_q, D)
        past = 0 if cache is None or cache.static else len(cache)
        if cache is not None and cache.static and cache.k is not None and cache.v is not None:  # filled
            k, v = cache.k, cache.v  # (B, H_kv, T_k, D), computed once from the encoder output
        else:
            k, v = self.project_kv(x_kv)  # (B, H_kv, t, D)
            if rotary is not None:
                q, k = rotary(q, k, past, past)
            if cache is not None:
                k, v = cache.append(k, v)  # (B, H_kv, past + t, D)
        if rotary is not None and cache is not None and cache.static:
            raise ValueError("rotary positions apply to self-attention, not to cross-attention")

        out, weights = attend(
            q,
            k,
            v,
            mask=mask,
            is_causal=is_causal,
            dropout_p=self.dropout if self.training else 0.0,
            need_weights=need_weights,
            backend=self.backend,
        )  # (B, H, T_q, D)
        b, _, t_q, _ = out.shape
        out = out.transpose(1, 2).reshape(b, t_q, self.n_heads * self.head_dim)  # (B, T_q, H * D)
        return self.out_proj(out), weights
