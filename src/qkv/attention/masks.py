"""Every attention mask in qkv is built here.

Convention (one, everywhere): a mask is a **boolean** tensor, ``True`` = *may attend*, broadcastable
to the scores' shape ``(B, H, T_q, T_k)``. Masks are combined with logical *and*.

The causal mask is aligned **bottom-right**: when the keys outnumber the queries (decoding with a KV
cache, where the ``T_q`` new queries are the last ``T_q`` positions of a ``T_k``-long sequence),
query ``i`` may attend to keys ``j <= i + (T_k - T_q)``. With ``T_q == T_k`` this is the usual lower
triangle.

Notation: ``B`` batch, ``H`` heads, ``T_q``/``T_k`` query/key lengths.
"""

from __future__ import annotations

import torch
from torch import Tensor


def padding_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """``(B, T)`` mask that is True on the first ``lengths[b]`` positions of row ``b``."""
    max_len = int(lengths.max()) if max_len is None else max_len
    positions = torch.arange(max_len, device=lengths.device)  # (T,)
    return positions[None, :] < lengths[:, None]  # (B, T)


def tokens_mask(tokens: Tensor, pad_id: int) -> Tensor:
    """``(B, T)`` mask that is True where ``tokens`` is not padding."""
    return tokens != pad_id


def key_mask(keep: Tensor) -> Tensor:
    """Turn a ``(B, T_k)`` keep-mask over keys into ``(B, 1, 1, T_k)``, broadcastable over heads and queries."""
    return keep[:, None, None, :]  # (B, 1, 1, T_k)


def causal_mask(t_q: int, t_k: int | None = None, device: torch.device | str | None = None) -> Tensor:
    """``(T_q, T_k)`` lower-triangular mask aligned bottom-right (see the module docstring)."""
    t_k = t_q if t_k is None else t_k
    if t_k < t_q:
        raise ValueError(f"causal_mask needs T_k >= T_q (queries are the last T_q positions), got {t_q=} {t_k=}")
    query_pos = torch.arange(t_k - t_q, t_k, device=device)  # absolute positions of the queries (T_q,)
    key_pos = torch.arange(t_k, device=device)  # (T_k,)
    return key_pos[None, :] <= query_pos[:, None]  # (T_q, T_k)


def combine(*masks: Tensor | None) -> Tensor | None:
    """Logical *and* of the given masks (``None`` entries are ignored; all ``None`` gives ``None``)."""
    result: Tensor | None = None
    for mask in masks:
        if mask is None:
            continue
        if mask.dtype != torch.bool:
            raise TypeError(f"masks must be boolean (True = may attend), got dtype {mask.dtype}")
        result = mask if result is None else result & mask
    return result
