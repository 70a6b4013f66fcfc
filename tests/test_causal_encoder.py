"""``causal_encoder``: the encoder's self-attention masked causally, as a decoder-only model's is.

Why it exists: on associative recall (``k3 v1 k7 v0 ... ? k7 -> v0``) causal self-attention learns the
lookup in a few hundred steps and bidirectional self-attention does not in thousands -- PyTorch's own
``nn.TransformerEncoder`` behaves the same way (docs/compare.md, benchmarks/recall_causal_vs_bidirectional.py).
"""

from __future__ import annotations

import pytest
import torch

from qkv.models import ModelConfig, build_model

V = 23


def tiny(causal: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    config = ModelConfig(
        name="transformer",
        d_model=32,
        n_heads=4,
        d_ff=48,
        n_encoder_layers=2,
        n_decoder_layers=1,
        dropout=0.0,
        max_len=64,
        causal_encoder=causal,
    )
    return build_model(config, V, V).eval()


@pytest.mark.parametrize("causal", [True, False])
def test_later_source_tokens_change_earlier_states_only_when_bidirectional(causal):
    model = tiny(causal)
    src = torch.randint(4, V, (2, 9), generator=torch.Generator().manual_seed(1))
    changed = src.clone()
    changed[:, 6] = (changed[:, 6] - 4 + 1) % (V - 4) + 4  # another real token at position 6
    with torch.no_grad():
        before, after = model.encode(src).memory, model.encode(changed).memory  # (B, T_s, E)
    earlier = (after[:, :6] - before[:, :6]).abs().max().item()
    assert (after[:, 6:] - before[:, 6:]).abs().max() > 1e-3  # the change is visible where it should be
    if causal:
        assert earlier < 1e-6
    else:
        assert earlier > 1e-3


def test_causal_encoder_weights_are_lower_triangular_and_rows_sum_to_one():
    model = tiny(True)
    src = torch.randint(4, V, (2, 7), generator=torch.Generator().manual_seed(2))
    tgt = torch.full((2, 1), 1)
    with torch.no_grad():
        weights = model(src, tgt, need_weights=True).attentions["encoder_self"]
    for w in weights:  # (B, H, T_s, T_s) per layer
        upper = torch.triu(torch.ones(7, 7, dtype=torch.bool), diagonal=1)
        assert w[..., upper].abs().max() == 0
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 7))
