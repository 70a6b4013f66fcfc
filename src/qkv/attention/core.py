"""Scaled dot-product attention, from first principles (Vaswani et al. 2017, "Attention Is All You Need").

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V

Two backends behind one contract, proven equal by the tests:

* ``"reference"`` -- :func:`reference_attention`, the explicit computation you can read beside the
  equation above. It can always return the attention weights. Scores and softmax are computed in at
  least float32 (half precision is upcast; float64 stays float64).
* ``"fused"`` -- :func:`torch.nn.functional.scaled_dot_product_attention`, PyTorch's fused kernels
  (FlashAttention / memory-efficient / math). It never materialises the weights, so asking it for them
  is an error -- never a silent switch to the other backend.

``"auto"`` (the default) picks ``"fused"`` unless weights are requested.

Masks are boolean, True = may attend (see :mod:`qkv.attention.masks`). A query whose every key is
masked gets an all-zero output (and all-zero weights) on both backends -- never NaN.

Notation: ``B`` batch, ``H`` query heads, ``H_kv`` key/value heads (``H % H_kv == 0``: grouped-query
attention), ``T_q``/``T_k`` query/key lengths, ``D`` head dim.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from qkv.attention.masks import causal_mask, combine

Backend = Literal["auto", "reference", "fused"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)  # the one list of backend names (configs validate against it)


def masked_softmax(scores: Tensor, mask: Tensor | None, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` that ignores masked entries (mask True = keep).

    Rows with no allowed entry get all-zero weights instead of NaN. Computed in at least float32.
    """
    scores = scores.to(torch.promote_types(scores.dtype, torch.float32))
    if mask is None:
        return torch.softmax(scores, dim=dim)
    row_has_key = mask.any(dim=dim, keepdim=True)
    scores = scores.masked_fill(~mask, float("-inf"))
    scores = scores.masked_fill(~row_has_key, 0.0)  # an all -inf row would give NaN
    weights = torch.softmax(scores, dim=dim)
    return weights.masked_fill(~row_has_key, 0.0)


def _repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """Share each key/value head with ``n_rep`` query heads (grouped-query attention)."""
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)  # (B, H_kv, T, D) -> (B, H, T, D)


def reference_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> tuple[Tensor, Tensor]:
    """The equation, line by line: ``softmax(Q Kᵀ · scale, masked) V``. Returns ``(out, weights)``.

    ``q (B, H, T_q, D)``, ``k, v (B, H_kv, T_k, D)``; ``mask`` broadcastable to ``(B, H, T_q, T_k)``.
    """
    scale = 1.0 / math.sqrt(q.size(-1)) if scale is None else scale
    compute_dtype = torch.promote_types(q.dtype, torch.float32)
    n_rep = q.size(1) // k.size(1)
    k, v = _repeat_kv(k, n_rep), _repeat_kv(v, n_rep)  # (B, H, T_k, D)

    scores = q.to(compute_dtype) @ k.to(compute_dtype).transpose(-2, -1) * scale  # (B, H, T_q, T_k)
    weights = masked_softmax(scores, mask)  # (B, H, T_q, T_k), rows sum to 1 (or 0 if fully masked)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    out = dropped @ v.to(compute_dtype)  # (B, H, T_q, D)
    return out.to(q.dtype), weights


def fused_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> Tensor:
    """PyTorch's fused ``scaled_dot_product_attention`` with qkv's mask contract (rows with no key -> 0)."""
    gqa = q.size(1) != k.size(1)
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=scale, enable_gqa=gqa)
    row_has_key = mask.any(dim=-1, keepdim=True)  # (.., T_q, 1)
    # SDPA would produce NaN for a row with no allowed key: let such rows see everything, then zero them.
    safe_mask = mask | ~row_has_key
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=safe_mask, dropout_p=dropout_p, scale=scale, enable_gqa=gqa
    )  # (B, H, T_q, D)
    return out.masked_fill(~row_has_key, 0.0)


def _check(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"q, k, v must be (B, H, T, D); got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if k.shape[:3] != v.shape[:3]:
        raise ValueError(f"k and v must agree on (B, H_kv, T_k); got {tuple(k.shape)} and {tuple(v.shape)}")
    if q.size(-1) != k.size(-1):
        raise ValueError(f"q and k must have the same head dim; got {q.size(-1)} and {k.size(-1)}")
    if q.size(1) % k.size(1) != 0:
        raise ValueError(f"query heads ({q.size(1)}) must be a multiple of key/value heads ({k.size(1)})")
    if mask is not None and mask.dtype != torch.bool:
        raise TypeError(f"mask must be boolean (True = may attend), got {mask.dtype}")


def attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    mask: Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    scale: float | None = None,
    need_weights: bool = False,
    backend: Backend = "auto",
) -> tuple[Tensor, Tensor | None]:
    """Scaled dot-product attention. Returns ``(out (B, H, T_q, D), weights (B, H, T_q, T_k) | None)``.

    Args:
        q, k, v: ``(B, H, T_q, D)``, ``(B, H_kv, T_k, D)``, ``(B, H_kv, T_k, D)``.
        mask: boolean, True = may attend, broadcastable to ``(B, H, T_q, T_k)``.
        is_causal: add a causal mask, aligned bottom-right when ``T_k > T_q`` (cached decoding).
        dropout_p: dropout on the weights (pass 0 in eval mode).
        scale: multiplies the scores; default ``1/sqrt(D)``.
        need_weights: also return the softmax weights (reference backend only).
        backend: ``"reference"``, ``"fused"`` or ``"auto"`` (fused unless weights are requested).
    """
    _check(q, k, v, mask, backend)
    if backend == "auto":
        backend = "reference" if need_weights else "fused"
    if need_weights and backend == "fused":
        raise ValueError(
            "the fused backend never materialises attention weights; use backend='reference' "
            "(or 'auto') when need_weights=True"
        )
    t_q, t_k = q.size(-2), k.size(-2)
    if is_causal and t_q == 1:  # one query at the newest position (cached decoding) may see every key
        is_causal = False
    if backend == "fused" and is_causal and mask is None and t_q == t_k:
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=dropout_p, is_causal=True, scale=scale, enable_gqa=q.size(1) != k.size(1)
        )
        return out, None
    if is_causal:
        mask = combine(mask, causal_mask(t_q, t_k, device=q.device))
    if backend == "fused":
        return fused_attention(q, k, v, mask, dropout_p, scale), None
    out, weights = reference_attention(q, k, v, mask, dropout_p, scale)
    return out, (weights if need_weights else None)
