"""Heatmaps for every layer and head, head statistics, ablation, and the HTML report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from qkv.errors import UserError
from qkv.viz.attention_report import write_report
from qkv.viz.capture import find_call, record_attention
from qkv.viz.heads import ablate_head, head_importance, head_stats
from qkv.viz.heatmaps import attention_heatmap, heads_grid, write_heatmaps
from test_viz_standin import TinySeq2Seq, tiny_inspector


def test_heatmap_axes_carry_the_real_tokens():
    q, k = ["<bos>", "le", "chat"], ["the", "cat", "sat", "<eos>"]
    w = np.full((3, 4), 0.25)
    fig = attention_heatmap(w, q, k, title="t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == k
    assert [t.get_text() for t in ax.get_yticklabels()] == q
    with pytest.raises(ValueError, match="do not match"):
        attention_heatmap(np.zeros((2, 4)), q, k)


def test_long_inputs_thin_the_labels_and_grow_the_canvas():
    n = 200
    labels = [f"w{i}" for i in range(n)]
    fig = attention_heatmap(np.eye(n), labels, labels)
    shown = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert 30 <= len(shown) <= 60 and shown[0] == "w0" and shown[1] == "w4"
    small = attention_heatmap(np.eye(5), labels[:5], labels[:5])
    assert fig.get_size_inches()[0] > 3 * small.get_size_inches()[0]


@pytest.mark.slow
def test_figures_for_every_layer_and_head(tmp_path):
    ins = tiny_inspector(n_encoder_layers=2, n_decoder_layers=3, n_heads=2)
    analysis = ins.analyze("the cat sat on the mat")
    assert set(analysis.attentions) == {"encoder_self", "decoder_self", "cross"}
    paths = write_heatmaps(analysis.attentions, analysis.labels, tmp_path, formats=("png", "svg"))
    expected = {
        f"{kind}_L{layer}_H{head}.{fmt}"
        for kind, n_layers in (("encoder_self", 2), ("decoder_self", 3), ("cross", 3))
        for layer in range(n_layers)
        for head in range(2)
        for fmt in ("png", "svg")
    }
    names = {p.name for p in tmp_path.iterdir()}
    assert expected <= names
    assert len(expected) == (2 + 3 + 3) * 2 * 2
    grids = {p for p in names if p.endswith("_heads.png")}
    assert len(grids) == 2 + 3 + 3
    assert all(p.stat().st_size > 1000 for p in paths)
    assert (tmp_path / "encoder_self_L0_H0.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # each head's picture shows that head's weights
    assert (tmp_path / "encoder_self_L0_H0.png").read_bytes() != (tmp_path / "encoder_self_L0_H1.png").read_bytes()
    svg = (tmp_path / "cross_L2_H1.svg").read_text()
    assert "<svg" in svg and "mat" in svg  # tokens are in the SVG as text


@pytest.mark.slow
def test_report_writes_greedy_and_beam_and_html(tmp_path):
    ins = tiny_inspector(n_encoder_layers=1, n_decoder_layers=1, n_heads=2)
    summary = write_report(ins, "the <b>cat</b> sat", tmp_path, searches=("greedy", "beam"), formats=("png",))
    assert set(summary["searches"]) == {"greedy", "beam"}
    greedy = 3 * 1 * 2 + 3  # (encoder, decoder, cross) x 1 layer x 2 heads + one grid per layer
    beam = 2 * 1 * 2 + 2  # the encoder reads the same source: its maps are not drawn twice
    assert summary["n_images"] == greedy + beam
    assert len(list((tmp_path / "beam").glob("*_H*.png"))) == 4
    assert not list((tmp_path / "beam").glob("encoder_self*"))
    html = (tmp_path / "attention.html").read_text()
    assert "<b>cat</b>" not in html and "&lt;b&gt;cat&lt;/b&gt;" in html
    assert html.count("data:image/png;base64,") >= 3 + 2
    assert "as for greedy decoding above" in html
    heads = json.loads((tmp_path / "heads.json").read_text())["heads"]
    assert len(heads) == 3 * 1 * 2
    cross = [h for h in heads if h["kind"] == "cross"]  # positions of two sequences are not compared
    assert cross and all(h["previous"] is None and h["distance"] is None and h["entropy"] >= 0 for h in cross)


def test_svg_text_stays_text_and_grids_have_titles_and_a_colour_bar(tmp_path):
    ins = tiny_inspector(n_encoder_layers=1, n_decoder_layers=1, n_heads=2)
    analysis = ins.analyze("the cat sat")
    paths = write_heatmaps(analysis.attentions, analysis.labels, tmp_path, formats=("svg",))
    svg = (tmp_path / "cross_L0_H0.svg").read_text()
    assert "<text" in svg and ">cat<" in svg  # searchable text, not glyph paths
    q, k = analysis.labels["cross"]
    fig = heads_grid(analysis.attentions["cross"][0], q, k, axis_names=("target (query)", "source (key)"))
    texts = {t.get_text() for t in fig.findobj(match=lambda a: hasattr(a, "get_text"))}
    assert {"target (query)", "source (key)", "attention weight"} <= texts
    assert len(paths) == 3 * 2 + 3


def test_head_stats_on_hand_made_patterns():
    t = 5
    prev = torch.zeros(t, t)
    prev[0, 0] = 1.0
    for i in range(1, t):
        prev[i, i - 1] = 1.0
    same = torch.eye(t)
    first = torch.zeros(t, t)
    first[:, 0] = 1.0
    uniform = torch.full((t, t), 1.0 / t)
    stats = head_stats(torch.stack([prev, same, first, uniform]))
    assert stats[0].previous == pytest.approx(4 / 5) and stats[0].distance == pytest.approx(4 / 5)
    assert stats[1].same == pytest.approx(1.0) and stats[1].entropy == pytest.approx(0.0, abs=1e-9)
    assert stats[2].first == pytest.approx(1.0) and stats[2].distance == pytest.approx(sum(range(t)) / t)
    assert stats[3].entropy == pytest.approx(np.log(t))
    # mean |i - j| under uniform attention over 5 positions
    assert stats[3].distance == pytest.approx(np.mean([abs(i - j) for i in range(t) for j in range(t)]))


def test_ablating_a_head_equals_zeroing_its_slice_by_hand():
    model = TinySeq2Seq().eval()
    src, tgt = torch.tensor([[4, 5, 6, 2]]), torch.tensor([[1, 7, 8]])
    with torch.no_grad(), record_attention(model) as calls:
        out = model(src, tgt, need_weights=True)
    call = find_call(calls, out.attentions["encoder_self"][0])
    m = call.module
    # reference: recompute the module's output with head 2's context vectors set to zero
    with torch.no_grad():
        q = m.q_proj(call.x_q).view(1, 4, 4, 4).transpose(1, 2)  # (B, H, T, D)
        k = m.k_proj(call.x_kv).view(1, 4, 4, 4).transpose(1, 2)
        v = m.v_proj(call.x_kv).view(1, 4, 4, 4).transpose(1, 2)
        ctx = torch.softmax(q @ k.transpose(-1, -2) / 2.0, -1) @ v  # (B, H, T, D)
        ctx[:, 2] = 0
        expected = m.out_proj(ctx.transpose(1, 2).reshape(1, 4, 16))
        handle = ablate_head(m, 2)
        try:
            got, _ = m(call.x_q, mask=call.mask)
        finally:
            handle.remove()
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        unablated, _ = m(call.x_q, mask=call.mask)
        torch.testing.assert_close(unablated, call.out)


def test_head_importance_finds_the_only_head_that_matters():
    model = TinySeq2Seq(heads=4, layers=1).eval()
    attn = model.enc[0].self_attn
    with torch.no_grad():  # only head 1 reaches the output
        keep = torch.zeros_like(attn.out_proj.weight)
        keep[:, 4:8] = 1.0
        attn.out_proj.weight.mul_(keep)
    src, tgt = torch.tensor([[4, 5, 6, 2]]), torch.tensor([[1, 7, 8]])
    target = model(src, tgt).logits.detach()

    def score() -> float:
        return -float(((model(src, tgt).logits - target) ** 2).mean())

    rows = head_importance([("enc0", attn)], score)
    drops = [r["drop"] for r in rows]
    assert drops[1] > 0 and drops[0] == drops[2] == drops[3] == pytest.approx(0.0, abs=1e-12)


def test_bad_inputs_are_user_errors():
    ins = tiny_inspector()
    with pytest.raises(UserError, match="empty"):
        ins.analyze("   ")
    with pytest.raises(UserError, match="characters"):
        ins.analyze("cat " * 1000)
    analysis = ins.analyze("the cat")
    with pytest.raises(UserError, match="layer 5 is out of range"):
        ins.explain(analysis, "encoder_self", 5, 0, 0)
    with pytest.raises(UserError, match="no 'bogus' attention"):
        ins.explain(analysis, "bogus", 0, 0, 0)


def test_recurrent_alignments_are_drawn_and_walked_through(tmp_path):
    ins = tiny_inspector("gru-attention", d_model=16)
    analysis = ins.analyze("the cat sat")
    assert list(analysis.attentions) == ["cross"]
    (alignment,) = analysis.attentions["cross"]
    assert alignment.shape[0] == 1 and alignment.shape[2] == 4  # one head; the, cat, sat, <eos>
    np.testing.assert_allclose(alignment.sum(-1), 1.0, atol=1e-5)
    paths = write_heatmaps(analysis.attentions, analysis.labels, tmp_path, formats=("png",))
    assert sorted(p.name for p in paths) == ["cross_L0_H0.png"]  # one head: no 1 x 1 grid beside it
    walk = ins.explain(analysis, "cross", 0, 0, 1)  # Bahdanau's additive score (tests/test_walkthrough_recurrent.py)
    np.testing.assert_allclose(walk.weights.numpy(), alignment[0, 1], atol=1e-5)
