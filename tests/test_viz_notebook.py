"""The notebook views (``_repr_html_``): what they draw is the analysis' weights, and text is escaped."""

from __future__ import annotations

import numpy as np

import qkv.viz
from test_viz_standin import tiny_inspector

SCRIPT = "<script>x()</script>"


def test_head_view_draws_one_line_per_visible_weight_in_its_head_colour():
    ins = tiny_inspector(n_heads=2, extra_words=(SCRIPT,))
    view = qkv.viz.head_view(ins, f"the {SCRIPT} cat", layer=1)
    analysis = ins.analyze(f"the {SCRIPT} cat")
    weights = analysis.attentions["cross"][1]  # (H, T_q, T_k): the default kind is cross-attention
    np.testing.assert_array_equal(view.weights, weights)
    html = view._repr_html_()
    assert html.count("<line ") == int((weights >= 0.05).sum())
    assert html.count('stroke="#1f77b4"') == int((weights[0] >= 0.05).sum())
    assert SCRIPT not in html and "&lt;script&gt;" in html


def test_model_view_has_a_map_per_layer_and_head():
    ins = tiny_inspector(n_heads=2, n_encoder_layers=3)
    view = qkv.viz.model_view(ins, "the cat sat", kind="encoder_self")
    html = view._repr_html_()
    assert html.count('class="qkv-mini"') == 3 * 2
    assert html.count("<rect ") == sum(int((w >= 0.02).sum()) for w in view.layers)


def test_walkthroughs_render_in_notebooks():
    ins = tiny_inspector(n_heads=2, extra_words=(SCRIPT,))
    analysis = ins.analyze(f"the {SCRIPT} cat")
    html = ins.explain(analysis, "encoder_self", 0, 1, 1)._repr_html_()
    assert "query token 1" in html and "&lt;script&gt;" in html and SCRIPT not in html
    rnn = tiny_inspector("gru-attention", hidden_size=24, n_rnn_layers=1)
    walk = rnn.explain(rnn.analyze("the cat"), "cross", 0, 0, 1)
    assert "Bahdanau" in walk._repr_html_()


def test_numbers_wrap_between_numbers_not_inside_them():
    from pathlib import Path

    from qkv.viz.html import STYLE

    css = (Path(__file__).resolve().parent.parent / "src/qkv/web/style.css").read_text()
    for sheet in (STYLE, css):
        assert "break-all" not in sheet and "word-break: normal" in sheet
