"""The walkthrough's numbers are the forward pass's numbers.

References: the model's own forward output (captured by hooks) and PyTorch's ``nn.MultiheadAttention``
loaded with the same weights -- an implementation qkv does not share any code with.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qkv.attention import MultiHeadAttention
from qkv.viz.capture import find_call, record_attention
from qkv.viz.walkthrough import WalkthroughMismatch, to_text, walkthrough
from test_viz_standin import TinySeq2Seq


def _torch_mha(m: MultiHeadAttention) -> nn.MultiheadAttention:
    e = m.q_proj.in_features
    ref = nn.MultiheadAttention(e, m.n_heads, bias=True, batch_first=True).double()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([m.q_proj.weight, m.k_proj.weight, m.v_proj.weight]))
        ref.in_proj_bias.copy_(torch.cat([m.q_proj.bias, m.k_proj.bias, m.v_proj.bias]))
        ref.out_proj.weight.copy_(m.out_proj.weight)
        ref.out_proj.bias.copy_(m.out_proj.bias)
    return ref


@pytest.fixture(scope="module")
def run():
    model = TinySeq2Seq().eval()
    src = torch.tensor([[5, 6, 7, 8, 9, 2, 0, 0]])  # two padding positions
    tgt = torch.tensor([[1, 10, 11, 12, 13]])
    with torch.no_grad(), record_attention(model) as calls:
        output = model(src, tgt, need_weights=True)
    return model, output, calls


@pytest.mark.parametrize("kind", ["encoder_self", "decoder_self", "cross"])
def test_every_token_and_head_matches_pytorch_reference(run, kind):
    model, output, calls = run
    for layer, weights in enumerate(output.attentions[kind]):
        call = find_call(calls, weights)
        ref = _torch_mha(call.module)
        t_q, t_k = call.x_q.size(1), call.x_kv.size(1)
        allowed = torch.ones(t_q, t_k, dtype=torch.bool)
        if call.mask is not None:
            allowed = allowed & call.mask[0, 0]
        if call.is_causal:
            allowed = allowed & torch.ones(t_q, t_k, dtype=torch.bool).tril()
        ref_out, ref_w = ref(
            call.x_q.double(), call.x_kv.double(), call.x_kv.double(), attn_mask=~allowed, average_attn_weights=False
        )  # PyTorch: True = blocked
        for token in range(t_q):
            for head in range(call.module.n_heads):
                w = walkthrough(call, token=token, head=head, kind=kind, layer=layer)
                torch.testing.assert_close(w.step.weights, ref_w[0, head, token], atol=1e-6, rtol=1e-6)
                torch.testing.assert_close(w.out, ref_out[0, token], atol=1e-6, rtol=1e-6)
                # and the forward pass's own numbers
                torch.testing.assert_close(w.step.weights, weights[0, head, token].double(), atol=1e-5, rtol=1e-4)
                torch.testing.assert_close(w.out, call.out[0, token].double(), atol=1e-5, rtol=1e-4)


def test_intermediate_steps_are_the_textbook_formulas(run):
    _, output, calls = run
    call = find_call(calls, output.attentions["cross"][1])
    w = walkthrough(call, token=2, head=3)
    m = call.module
    d = m.head_dim
    x = call.x_q[0, 2].double()
    wq = m.q_proj.weight.double()[3 * d : 4 * d]
    q = x @ wq.T + m.q_proj.bias.double()[3 * d : 4 * d]
    torch.testing.assert_close(w.step.q, q)
    k = call.x_kv[0].double() @ m.k_proj.weight.double()[3 * d : 4 * d].T + m.k_proj.bias.double()[3 * d : 4 * d]
    torch.testing.assert_close(w.step.keys, k)
    torch.testing.assert_close(w.step.dots, k @ q)
    torch.testing.assert_close(w.step.scaled, (k @ q) / d**0.5)
    assert w.step.allowed.tolist() == [True] * 6 + [False] * 2  # padding keys are masked
    assert w.step.weights[6:].tolist() == [0.0, 0.0]
    assert float(w.step.weights.sum()) == pytest.approx(1.0)
    torch.testing.assert_close(w.step.output, w.step.weights @ w.step.values)
    assert w.concat.shape == (m.n_heads * d,)
    text = to_text(w)
    assert "1/√4" in text and "masked" in text


def test_causal_mask_hides_future_tokens(run):
    _, output, calls = run
    call = find_call(calls, output.attentions["decoder_self"][0])
    w = walkthrough(call, token=1, head=0)
    assert w.step.allowed.tolist() == [True, True, False, False, False]


def test_grouped_query_heads_share_keys():
    model = TinySeq2Seq(heads=4, n_kv=2).eval()
    with torch.no_grad(), record_attention(model) as calls:
        out = model(torch.tensor([[4, 5, 6]]), torch.tensor([[1, 7]]), need_weights=True)
    call = find_call(calls, out.attentions["encoder_self"][0])
    w = walkthrough(call, token=0, head=3)
    assert [h.kv_head for h in w.heads] == [0, 0, 1, 1]
    torch.testing.assert_close(w.heads[2].keys, w.heads[3].keys)
    torch.testing.assert_close(
        w.step.weights, out.attentions["encoder_self"][0][0, 3, 0].double(), atol=1e-5, rtol=1e-4
    )


def test_disagreement_with_the_forward_pass_raises(run):
    _, output, calls = run
    call = find_call(calls, output.attentions["encoder_self"][0])
    with torch.no_grad():
        call.module.v_proj.bias.add_(0.5)  # the weights no longer produce what the forward pass returned
    try:
        with pytest.raises(WalkthroughMismatch, match="differs from the forward pass"):
            walkthrough(call, token=0, head=0)
    finally:
        with torch.no_grad():
            call.module.v_proj.bias.sub_(0.5)


def test_bad_token_or_head_is_a_clear_error(run):
    _, output, calls = run
    call = find_call(calls, output.attentions["encoder_self"][0])
    with pytest.raises(IndexError, match="8 query tokens"):
        walkthrough(call, token=8, head=0)
    with pytest.raises(IndexError, match="4 heads"):
        walkthrough(call, token=0, head=4)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("transformer", {}),
        ("transformer", {"positions": "rotary", "n_kv_heads": 2, "norm_first": False}),
        ("gpt", {"positions": "learned"}),
        ("encoder", {}),
    ],
)
def test_real_qkv_models_every_kind_layer_head_token(name, overrides):
    """On qkv's own model family: the walkthrough of every query token of every head equals the forward pass
    (the recomputation raises WalkthroughMismatch otherwise), and its weights are the heatmap's weights."""
    from test_viz_standin import tiny_inspector

    ins = tiny_inspector(name, n_heads=4, **overrides)
    analysis = ins.analyze("the cat sat on a mat")
    assert analysis.attentions
    for kind, layers in analysis.attentions.items():
        for layer, weights in enumerate(layers):
            n_heads, t_q, _ = weights.shape
            for token in range(t_q):
                for head in range(n_heads):
                    w = ins.explain(analysis, kind, layer, head, token)
                    np.testing.assert_allclose(w.step.weights.numpy(), weights[head, token], atol=1e-5)
                    assert w.max_abs_error < 1e-4
    if overrides.get("positions") == "rotary":
        assert any("rotary" in n for n in ins.explain(analysis, "encoder_self", 0, 0, 0).notes)
