"""The walkthrough of Bahdanau (additive) and Luong (multiplicative) attention: a hand-worked case, and
every target position of small recurrent models checked against their forward pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qkv.attention.recurrent import AdditiveAttention
from qkv.errors import UserError
from qkv.viz.recurrent_walkthrough import record_recurrent, recurrent_walkthrough, to_text
from test_viz_standin import tiny_inspector


def test_additive_score_by_hand():
    # W = U = identity, b = 0, v = (1, 1): e_j = tanh(s_1 + h_j1) + tanh(s_2 + h_j2)
    attn = AdditiveAttention(2, 2, 2)
    with torch.no_grad():
        attn.query_proj.weight.copy_(torch.eye(2))
        attn.key_proj.weight.copy_(torch.eye(2))
        attn.key_proj.bias.zero_()
        attn.energy.weight.copy_(torch.tensor([[1.0, 1.0]]))
    s = torch.tensor([[1.0, 0.0]])  # (B, D_q)
    h = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (B, T, D_k)
    with record_recurrent(attn) as calls:
        attn(s, h, h)
    w = recurrent_walkthrough(calls[0], token=0)
    e = [math.tanh(2) + math.tanh(0), math.tanh(1) + math.tanh(1)]  # 0.9640, 1.5232
    weights = [math.exp(x) / sum(math.exp(y) for y in e) for x in e]
    np.testing.assert_allclose(w.scores.numpy(), e, atol=1e-6)
    np.testing.assert_allclose(w.hidden.numpy(), [[math.tanh(2), 0.0], [math.tanh(1), math.tanh(1)]], atol=1e-6)
    np.testing.assert_allclose(w.weights.numpy(), weights, atol=1e-6)
    np.testing.assert_allclose(w.context.numpy(), [weights[0], weights[1]], atol=1e-6)  # Σ w_j h_j
    assert "vᵀ tanh(W s + U h_j + b)" in to_text(w)


@pytest.mark.parametrize(("name", "family"), [("gru-attention", "additive"), ("gru-luong", "multiplicative")])
def test_every_position_matches_the_forward_pass(name, family):
    ins = tiny_inspector(name, hidden_size=24, n_rnn_layers=1)
    analysis = ins.analyze("the cat sat on a mat")
    weights = analysis.attentions["cross"][0][0]  # (T_t, T_s): the forward pass's alignments
    q_labels, k_labels = analysis.labels["cross"]
    assert weights.shape == (len(q_labels), len(k_labels))
    for token in range(len(q_labels)):
        w = ins.explain(analysis, "cross", 0, 0, token)
        assert w.family == family and w.max_abs_error < 1e-5
        np.testing.assert_allclose(w.weights.numpy(), weights[token], atol=1e-5)
        np.testing.assert_allclose(w.context.numpy(), (w.weights[:, None] * w.values).sum(0).numpy(), atol=1e-10)
        d = w.to_dict()
        assert d["query_token"] == q_labels[token] and len(d["weighted_values"]) == len(k_labels)
    if family == "additive":  # the query of step i is the previous state: at step 0 the initial state
        assert "previous hidden state" in w.query_name


def test_a_model_without_attention_says_so():
    ins = tiny_inspector("gru", hidden_size=24, n_rnn_layers=1)
    assert not ins.has_attention
    with pytest.raises(UserError, match="has no attention"):
        ins.analyze("the cat")


@pytest.mark.slow
def test_cli_on_gru_runs(tmp_path, capsys):
    from qkv.cli import main
    from qkv.training import train
    from qkv.training.config import from_dict

    runs = {}
    for name in ("gru-attention", "gru"):
        config = from_dict(
            {
                "task": {
                    "name": "reverse",
                    "options": {"length": 4, "num_examples": 32, "num_eval_examples": 4, "vocab_size": 6},
                },
                "model": {"name": name, "hidden_size": 16, "d_model": 16, "n_rnn_layers": 1, "dropout": 0.0},
                "training": {"max_steps": 2, "max_tokens": 100, "device": "cpu"},
                "eval": {"every": 2, "max_examples": 4, "max_len": 6},
            }
        )
        runs[name] = str(tmp_path / name)
        train(config, runs[name], progress=False)
    capsys.readouterr()
    assert main(["explain", runs["gru-attention"], "1 2 3", "--token", "1", "--html", str(tmp_path / "e.html")]) == 0
    out = capsys.readouterr().out
    assert "Bahdanau (additive) attention" in out and "checked against the forward pass" in out
    assert "Bahdanau" in (tmp_path / "e.html").read_text()
    for argv in (
        ["explain", runs["gru"], "1 2 3", "--html", ""],
        ["attention", runs["gru"], "1 2 3", "--out", str(tmp_path / "att")],
        ["serve", runs["gru"], "--port", "0"],
    ):
        assert main(argv) == 2, argv
        assert "has no attention" in capsys.readouterr().err
