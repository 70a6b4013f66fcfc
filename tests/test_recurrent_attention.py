"""Bahdanau (additive) and Luong (dot/general) scoring, checked against the papers' formulas."""

from __future__ import annotations

import torch

from qkv.attention import AdditiveAttention, MultiplicativeAttention, masks


def test_additive_matches_formula_and_masks_padding() -> None:
    att = AdditiveAttention(query_dim=3, key_dim=4, attn_dim=5).double()
    s = torch.randn(2, 3, dtype=torch.float64)
    h = torch.randn(2, 6, 4, dtype=torch.float64)
    keep = masks.padding_mask(torch.tensor([6, 2]), 6)
    context, w = att(s, h, h, keep)
    W_s, W_h, b_h, v = att.query_proj.weight, att.key_proj.weight, att.key_proj.bias, att.energy.weight[0]
    for b in range(2):
        n = int(keep[b].sum())
        scores = torch.stack([v @ torch.tanh(W_s @ s[b] + W_h @ h[b, j] + b_h) for j in range(n)])
        expected_w = torch.softmax(scores, 0)
        torch.testing.assert_close(w[b, :n], expected_w, atol=1e-12, rtol=0)
        assert torch.all(w[b, n:] == 0)
        torch.testing.assert_close(context[b], expected_w @ h[b, :n], atol=1e-12, rtol=0)


def test_multiplicative_general_and_dot() -> None:
    s = torch.randn(2, 4, dtype=torch.float64)
    h = torch.randn(2, 5, 4, dtype=torch.float64)
    general = MultiplicativeAttention(4, 4, "general").double()
    ctx, w = general(s, h, h)
    W_a = general.key_proj.weight
    expected_w = torch.softmax(torch.einsum("bd,de,bte->bt", s, W_a, h), -1)
    torch.testing.assert_close(w, expected_w, atol=1e-12, rtol=0)
    torch.testing.assert_close(ctx, torch.einsum("bt,btd->bd", expected_w, h), atol=1e-12, rtol=0)
    dot = MultiplicativeAttention(4, 4, "dot").double()
    _, w_dot = dot(s, h, h)
    torch.testing.assert_close(w_dot, torch.softmax(torch.einsum("bd,btd->bt", s, h), -1), atol=1e-12, rtol=0)
