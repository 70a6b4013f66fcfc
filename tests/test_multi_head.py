"""MultiHeadAttention: parity with torch.nn.MultiheadAttention, invariances, KV cache, GQA."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qkv.attention import KVCache, MultiHeadAttention, masks


def _torch_mha_with_our_weights(mha: MultiHeadAttention, kdim: int | None = None) -> nn.MultiheadAttention:
    E = mha.q_proj.in_features
    ref = nn.MultiheadAttention(E, mha.n_heads, bias=True, batch_first=True, kdim=kdim, vdim=kdim).double()
    with torch.no_grad():
        if kdim is None:
            ref.in_proj_weight.copy_(torch.cat([mha.q_proj.weight, mha.k_proj.weight, mha.v_proj.weight]))
        else:
            ref.q_proj_weight.copy_(mha.q_proj.weight)
            ref.k_proj_weight.copy_(mha.k_proj.weight)
            ref.v_proj_weight.copy_(mha.v_proj.weight)
        ref.in_proj_bias.copy_(torch.cat([mha.q_proj.bias, mha.k_proj.bias, mha.v_proj.bias]))
        ref.out_proj.weight.copy_(mha.out_proj.weight)
        ref.out_proj.bias.copy_(mha.out_proj.bias)
    return ref


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_self_attention_matches_torch_multihead_attention(backend: str) -> None:
    mha = MultiHeadAttention(16, 4, backend=backend).double()
    ref = _torch_mha_with_our_weights(mha)
    x = torch.randn(3, 7, 16, dtype=torch.float64)
    lengths = torch.tensor([7, 5, 2])
    keep = masks.padding_mask(lengths, 7)  # (B, T)
    causal = masks.causal_mask(7)
    out, _ = mha(x, mask=masks.combine(masks.key_mask(keep), causal))
    # torch's convention is the opposite: True = *not* allowed
    expected, _ = ref(x, x, x, key_padding_mask=~keep, attn_mask=~causal, need_weights=False)
    torch.testing.assert_close(out, expected, atol=1e-10, rtol=0)


def test_weights_per_head_and_averaged_match_torch() -> None:
    mha = MultiHeadAttention(12, 3, kv_dim=5).double()  # cross-attention from a 5-dim memory
    ref = _torch_mha_with_our_weights(mha, kdim=5)
    x, memory = torch.randn(2, 4, 12, dtype=torch.float64), torch.randn(2, 6, 5, dtype=torch.float64)
    keep = masks.padding_mask(torch.tensor([6, 3]), 6)
    out, w = mha(x, memory, mask=masks.key_mask(keep), need_weights=True)
    exp_out, exp_w = ref(x, memory, memory, key_padding_mask=~keep, average_attn_weights=False)
    _, exp_avg = ref(x, memory, memory, key_padding_mask=~keep, average_attn_weights=True)
    assert w.shape == (2, 3, 4, 6)
    torch.testing.assert_close(out, exp_out, atol=1e-10, rtol=0)
    torch.testing.assert_close(w, exp_w, atol=1e-10, rtol=0)
    torch.testing.assert_close(w.mean(1), exp_avg, atol=1e-10, rtol=0)


def test_permutation_equivariance_without_positions() -> None:
    mha = MultiHeadAttention(8, 2).double()
    x = torch.randn(1, 5, 8, dtype=torch.float64)
    perm = torch.tensor([3, 0, 4, 1, 2])
    out, _ = mha(x)
    out_perm, _ = mha(x[:, perm])
    torch.testing.assert_close(out_perm, out[:, perm], atol=1e-12, rtol=0)


def test_extra_padding_does_not_change_unpadded_outputs() -> None:
    mha = MultiHeadAttention(8, 2).double()
    x = torch.randn(2, 4, 8, dtype=torch.float64)
    lengths = torch.tensor([4, 3])
    out, _ = mha(x, mask=masks.key_mask(masks.padding_mask(lengths, 4)))
    padded = torch.cat([x, 100 * torch.randn(2, 5, 8, dtype=torch.float64)], dim=1)
    out_padded, _ = mha(padded, mask=masks.key_mask(masks.padding_mask(lengths, 9)))
    torch.testing.assert_close(out_padded[0, :4], out[0], atol=1e-12, rtol=0)
    torch.testing.assert_close(out_padded[1, :3], out[1, :3], atol=1e-12, rtol=0)


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_step_by_step_cached_equals_full_causal(n_kv_heads: int) -> None:
    mha = MultiHeadAttention(16, 4, n_kv_heads=n_kv_heads).double()
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    full, _ = mha(x, is_causal=True)
    cache = KVCache()
    first, _ = mha(x[:, :2], is_causal=True, cache=cache)  # a 2-token prompt, then one token at a time
    steps = [first] + [mha(x[:, t : t + 1], is_causal=True, cache=cache)[0] for t in range(2, 6)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-12, rtol=0)
    assert len(cache) == 6


def test_static_cross_attention_cache_is_computed_once() -> None:
    mha = MultiHeadAttention(8, 2).double()
    x, memory = torch.randn(1, 3, 8, dtype=torch.float64), torch.randn(1, 5, 8, dtype=torch.float64)
    full, _ = mha(x, memory)
    cache = KVCache(static=True)
    step0, _ = mha(x[:, :1], memory, cache=cache)
    k_before = cache.k
    rest = [mha(x[:, t : t + 1], None, cache=cache)[0] for t in (1, 2)]  # memory no longer needed
    assert cache.k is k_before
    torch.testing.assert_close(torch.cat([step0, *rest], 1), full, atol=1e-12, rtol=0)


def test_grouped_query_attention_equals_mha_with_shared_kv_weights() -> None:
    gqa = MultiHeadAttention(16, 4, n_kv_heads=2).double()
    mha = MultiHeadAttention(16, 4).double()
    D = 4
    with torch.no_grad():
        mha.q_proj.load_state_dict(gqa.q_proj.state_dict())
        mha.out_proj.load_state_dict(gqa.out_proj.state_dict())
        for name in ("k_proj", "v_proj"):
            src, dst = getattr(gqa, name), getattr(mha, name)
            # kv head h serves query heads 2h and 2h+1
            w = src.weight.view(2, D, 16).repeat_interleave(2, dim=0).reshape(16, 16)  # (H * D, E)
            b = src.bias.view(2, D).repeat_interleave(2, dim=0).reshape(16)
            dst.weight.copy_(w)
            dst.bias.copy_(b)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    torch.testing.assert_close(gqa(x, is_causal=True)[0], mha(x, is_causal=True)[0], atol=1e-12, rtol=0)


def test_cache_reorder_follows_beams() -> None:
    cache = KVCache()
    k = torch.arange(3.0).view(3, 1, 1, 1)
    cache.append(k, k)
    cache.reorder(torch.tensor([2, 2, 0]))
    assert cache.k.flatten().tolist() == [2.0, 2.0, 0.0]


def test_cache_equals_concatenation_through_appends_and_reorders() -> None:
    """Random appends (prompt-sized and one-token) and beam reorders (rows dropped and duplicated, sometimes
    two in a row before an append): the cache always equals the plain ``index_select`` / ``torch.cat``
    reference, whether read after a reorder or only at the next append."""
    gen = torch.Generator().manual_seed(0)
    cache, ref_k, ref_v, batch = KVCache(), torch.empty(4, 2, 0, 3), torch.empty(4, 2, 0, 5), 4
    for step in range(60):
        if step % 3 == 2 or step % 7 == 3:  # a beam step: keep/duplicate rows (sometimes twice in a row)
            rows = int(torch.randint(1, 7, (1,), generator=gen))
            index = torch.randint(0, batch, (rows,), generator=gen)
            cache.reorder(index)
            ref_k, ref_v, batch = ref_k.index_select(0, index), ref_v.index_select(0, index), rows
        else:
            t = 1 if step > 5 else int(torch.randint(1, 20, (1,), generator=gen))
            k, v = torch.randn(batch, 2, t, 3, generator=gen), torch.randn(batch, 2, t, 5, generator=gen)
            got_k, got_v = cache.append(k, v)
            ref_k, ref_v = torch.cat([ref_k, k], dim=2), torch.cat([ref_v, v], dim=2)
            assert torch.equal(got_k, ref_k) and torch.equal(got_v, ref_v)
        if step % 4 == 0:  # reading applies a pending reorder; otherwise the next append does
            assert torch.equal(cache.k, ref_k) and torch.equal(cache.v, ref_v)
        assert len(cache) == ref_k.size(2)


def test_constructor_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="multiple of n_kv_heads"):
        MultiHeadAttention(12, 4, n_kv_heads=3)
