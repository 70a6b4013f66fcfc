"""Attention from first principles: the math (:mod:`.core`), masks (:mod:`.masks`), multi-head
attention (:mod:`.multi_head`), the KV cache (:mod:`.kv_cache`) and the recurrent models' attention
(:mod:`.recurrent`)."""

from qkv.attention import masks
from qkv.attention.core import BACKENDS, attend, fused_attention, masked_softmax, reference_attention
from qkv.attention.kv_cache import KVCache
from qkv.attention.multi_head import MultiHeadAttention
from qkv.attention.recurrent import AdditiveAttention, MultiplicativeAttention

__all__ = [
    "BACKENDS",
    "AdditiveAttention",
    "KVCache",
    "MultiHeadAttention",
    "MultiplicativeAttention",
    "attend",
    "fused_attention",
    "masked_softmax",
    "masks",
    "reference_attention",
]
