"""The attention math: a hand-worked example, reference == fused, gradcheck, invariances."""

from __future__ import annotations

import math

import pytest
import torch

from qkv.attention import attend, masks
from qkv.attention.core import reference_attention

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def test_two_tokens_one_head_by_hand() -> None:
    # q = [1, 0], keys [1, 0] and [0, 1], values [1, 2] and [3, 4], d_k = 2.
    q = torch.tensor([[[[1.0, 0.0]]]])  # (1, 1, 1, 2)
    k = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # (1, 1, 2, 2)
    v = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    # scores = [1, 0] / sqrt(2); softmax = [e^a, 1] / (e^a + 1) with a = 1/sqrt(2)
    a = 1 / math.sqrt(2)
    w0 = math.exp(a) / (math.exp(a) + 1)
    expected_out = [w0 * 1 + (1 - w0) * 3, w0 * 2 + (1 - w0) * 4]
    for backend in ("reference", "fused"):
        out, _ = attend(q, k, v, backend=backend)
        assert out[0, 0, 0].tolist() == pytest.approx(expected_out, abs=1e-6)
    _, weights = attend(q, k, v, need_weights=True)
    assert weights[0, 0, 0].tolist() == pytest.approx([w0, 1 - w0], abs=1e-7)


def test_hand_worked_causal_and_explicit_scale() -> None:
    q = torch.ones(1, 1, 2, 1)
    k = torch.tensor([[[[0.0], [2.0]]]])
    v = torch.tensor([[[[10.0], [20.0]]]])
    out, w = attend(q, k, v, is_causal=True, scale=1.0, need_weights=True)
    # token 0 sees only key 0 -> 10; token 1: scores [0, 2], weights [1, e^2] / (1 + e^2)
    p = math.exp(2) / (1 + math.exp(2))
    assert out[0, 0, :, 0].tolist() == pytest.approx([10.0, 10 * (1 - p) + 20 * p], abs=1e-5)
    assert w[0, 0, 0].tolist() == pytest.approx([1.0, 0.0])


def _case(name: str, dtype: torch.dtype):
    """(q, k, v, mask, is_causal) for each mask situation the contract covers."""
    g = torch.Generator().manual_seed(1)
    B, H, D = 3, 2, 8

    def rnd(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype, requires_grad=True)

    lengths = torch.tensor([6, 3, 1])
    if name == "none":
        return rnd(B, H, 6, D), rnd(B, H, 6, D), rnd(B, H, 6, D), None, False
    if name == "padding":
        return rnd(B, H, 6, D), rnd(B, H, 6, D), rnd(B, H, 6, D), masks.key_mask(masks.padding_mask(lengths, 6)), False
    if name == "causal":
        return rnd(B, H, 6, D), rnd(B, H, 6, D), rnd(B, H, 6, D), None, True
    if name == "padding+causal":
        return rnd(B, H, 6, D), rnd(B, H, 6, D), rnd(B, H, 6, D), masks.key_mask(masks.padding_mask(lengths, 6)), True
    if name == "cross":
        return rnd(B, H, 4, D), rnd(B, H, 7, D), rnd(B, H, 7, D), masks.key_mask(masks.padding_mask(lengths, 7)), False
    if name == "cached-single-query":
        keep = masks.key_mask(masks.padding_mask(lengths + 3, 9))
        return rnd(B, H, 1, D), rnd(B, H, 9, D), rnd(B, H, 9, D), keep, True
    if name == "fully-masked-rows":
        mask = torch.rand(B, 1, 5, 6, generator=g) > 0.4
        mask[0, :, 1] = False  # every key of query 1 in sequence 0 is masked
        mask[2] = False  # a whole sequence with nothing to attend to
        return rnd(B, H, 5, D), rnd(B, H, 6, D), rnd(B, H, 6, D), mask, False
    if name == "gqa":
        return rnd(B, 4, 5, D), rnd(B, 2, 5, D), rnd(B, 2, 5, D), None, True
    raise KeyError(name)


CASES = ["none", "padding", "causal", "padding+causal", "cross", "cached-single-query", "fully-masked-rows", "gqa"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES)
def test_reference_equals_fused_outputs_and_gradients(case: str, dtype: torch.dtype) -> None:
    q, k, v, mask, is_causal = _case(case, dtype)
    out_ref, _ = attend(q, k, v, mask=mask, is_causal=is_causal, backend="reference")
    out_fused, _ = attend(q, k, v, mask=mask, is_causal=is_causal, backend="fused")
    assert not torch.isnan(out_ref).any() and not torch.isnan(out_fused).any()
    torch.testing.assert_close(out_ref, out_fused, atol=TOL[dtype], rtol=0)
    upstream = torch.randn_like(out_ref)
    grads_ref = torch.autograd.grad(out_ref, (q, k, v), upstream)
    grads_fused = torch.autograd.grad(out_fused, (q, k, v), upstream)
    for g_ref, g_fused in zip(grads_ref, grads_fused, strict=True):
        assert not torch.isnan(g_ref).any() and not torch.isnan(g_fused).any()
        torch.testing.assert_close(g_ref, g_fused, atol=TOL[dtype], rtol=0)


def test_reference_matches_pytorch_math_backend_independently() -> None:
    # An independent reference: PyTorch's float-mask additive formulation.
    q, k, v, mask, _ = _case("padding", torch.float64)
    additive = torch.zeros(mask.shape, dtype=torch.float64).masked_fill(~mask, float("-inf"))
    expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)) + additive, dim=-1) @ v
    out, _ = attend(q, k, v, mask=mask, backend="reference")
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


def test_fully_masked_rows_give_zeros_not_nan() -> None:
    q, k, v, mask, _ = _case("fully-masked-rows", torch.float32)
    for backend in ("reference", "fused"):
        out, _ = attend(q, k, v, mask=mask, backend=backend)
        assert torch.all(out[0, :, 1] == 0) and torch.all(out[2] == 0)
    _, w = attend(q, k, v, mask=mask, need_weights=True)
    assert torch.all(w[2] == 0)


def test_gradcheck_reference_float64() -> None:
    q, k, v, mask, _ = _case("padding+causal", torch.float64)
    q, k, v = (x[:2, :, :4, :3].detach().clone().requires_grad_() for x in (q, k, v))
    m = mask[:2, ..., :4]

    def f(q, k, v):
        return attend(q, k, v, mask=m, is_causal=True, backend="reference")[0]

    assert torch.autograd.gradcheck(f, (q, k, v))


@pytest.mark.parametrize("case", ["padding", "padding+causal", "cross", "fully-masked-rows"])
def test_weight_rows_sum_to_one_and_are_zero_on_masked_keys(case: str) -> None:
    q, k, v, mask, is_causal = _case(case, torch.float64)
    _, w = attend(q, k, v, mask=mask, is_causal=is_causal, need_weights=True)
    full = masks.combine(mask, masks.causal_mask(q.size(-2), k.size(-2)) if is_causal else None)
    full = full.expand_as(w)
    assert torch.all(w[~full] == 0)
    sums = w.sum(-1)
    has_key = full.any(-1)
    torch.testing.assert_close(sums[has_key], torch.ones_like(sums[has_key]))
    assert torch.all(sums[~has_key] == 0)


def test_causal_later_tokens_do_not_change_earlier_outputs() -> None:
    q, k, v = (torch.randn(1, 2, 6, 4, dtype=torch.float64) for _ in range(3))
    out, _ = attend(q, k, v, is_causal=True)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 4:] += 5.0
    v2[:, :, 4:] -= 3.0
    out2, _ = attend(q, k2, v2, is_causal=True)
    torch.testing.assert_close(out[:, :, :4], out2[:, :, :4], atol=1e-12, rtol=0)
    assert not torch.allclose(out[:, :, 4:], out2[:, :, 4:])


def test_causal_mask_bottom_right_alignment() -> None:
    m = masks.causal_mask(2, 4)
    assert m.tolist() == [[True, True, True, False], [True, True, True, True]]
    assert masks.causal_mask(3).tolist() == torch.tril(torch.ones(3, 3, dtype=torch.bool)).tolist()


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_one_newest_query_attends_like_the_last_row_of_the_full_causal_attention(monkeypatch, backend) -> None:
    """Cached decoding: the query at the newest position may see every key, so no mask reaches the kernel."""
    q, k, v = (torch.randn(2, 3, 5, 4, dtype=torch.float64) for _ in range(3))
    full, _ = attend(q, k, v, is_causal=True, backend="reference")  # (B, H, 5, D)
    sdpa_masks = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording_sdpa(*args, **kwargs):
        sdpa_masks.append(kwargs.get("attn_mask"))
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording_sdpa)
    last, _ = attend(q[:, :, -1:], k, v, is_causal=True, backend=backend)  # (B, H, 1, D)
    torch.testing.assert_close(last, full[:, :, -1:], atol=1e-12, rtol=0)
    assert sdpa_masks == ([None] if backend == "fused" else [])


def test_half_precision_softmax_is_upcast() -> None:
    q, k, v = (torch.randn(1, 1, 4, 8, dtype=torch.bfloat16) for _ in range(3))
    out, w = attend(q, k, v, need_weights=True)
    assert w.dtype == torch.float32 and out.dtype == torch.bfloat16
    expected, _ = reference_attention(q.double(), k.double(), v.double())
    torch.testing.assert_close(out.double(), expected, atol=2e-2, rtol=0)
    _, w64 = attend(q.double(), k.double(), v.double(), need_weights=True)
    assert w64.dtype == torch.float64


def test_fused_refuses_weights_and_bad_inputs_are_named() -> None:
    q = torch.randn(1, 1, 2, 4)
    with pytest.raises(ValueError, match="fused backend"):
        attend(q, q, q, need_weights=True, backend="fused")
    with pytest.raises(ValueError, match="backend"):
        attend(q, q, q, backend="flash")
    with pytest.raises(TypeError, match="boolean"):
        attend(q, q, q, mask=torch.ones(2, 2))
    with pytest.raises(ValueError, match="multiple of key/value heads"):
        attend(torch.randn(1, 3, 2, 4), torch.randn(1, 2, 2, 4), torch.randn(1, 2, 2, 4))


def test_dropout_only_when_asked() -> None:
    q, k, v = (torch.randn(1, 1, 8, 4) for _ in range(3))
    a, _ = attend(q, k, v, backend="reference")
    b, _ = attend(q, k, v, backend="reference")
    assert torch.equal(a, b)
    torch.manual_seed(3)
    c, _ = attend(q, k, v, dropout_p=0.5, backend="reference")
    assert not torch.allclose(a, c)
