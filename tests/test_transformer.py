"""The Transformer family: invariances (cached == full, causality, padding), attention as data, parity
with PyTorch's own Transformer layers, and the config's validation."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from qkv.models import Attentions, ModelConfig, build_model
from qkv.models.builder import decoder_layer, encoder_layer
from qkv.models.positions import RotaryEmbedding, sinusoidal_table
from qkv.special import BOS_ID, PAD_ID

POSITIONS = ["sinusoidal", "learned", "rotary", "none"]
V = 23


def tiny(name: str, **overrides) -> nn.Module:
    options = {
        "name": name,
        "d_model": 32,
        "n_heads": 4,
        "d_ff": 48,
        "n_encoder_layers": 2,
        "n_decoder_layers": 2,
        "dropout": 0.1,
        "max_len": 64,
    }
    options.update(overrides)
    torch.manual_seed(0)
    return build_model(ModelConfig(**options), V, V).eval()


def random_tokens(b: int, t: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, V, (b, t), generator=g)


def decode_in_chunks(model, src, tgt, chunks):
    """Feed ``tgt`` through decode_step in the given chunk sizes; return the concatenated logits."""
    encoded = model.encode(src)
    state = model.init_state(encoded, tgt.size(0))
    logits, start = [], 0
    for size in chunks:
        step_logits, state = model.decode_step(tgt[:, start : start + size], encoded, state)
        logits.append(step_logits)
        start += size
    assert start == tgt.size(1)
    return torch.cat(logits, dim=1)


# -- cached step-by-step decoding == the full forward pass ----------------------------------------------
@pytest.mark.parametrize("positions", POSITIONS)
@pytest.mark.parametrize("norm_first", [True, False])
def test_cached_decoding_matches_full_forward_encoder_decoder(positions, norm_first):
    model = tiny("transformer", positions=positions, norm_first=norm_first, n_kv_heads=2)
    src = random_tokens(3, 9, seed=1)
    src[0, 6:] = PAD_ID
    tgt = random_tokens(3, 7, seed=2)
    tgt[:, 0] = BOS_ID
    with torch.no_grad():
        full = model(src, tgt).logits  # (B, T_t, V)
        one_by_one = decode_in_chunks(model, src, tgt, [1] * 7)
        chunked = decode_in_chunks(model, src, tgt, [3, 1, 2, 1])
    torch.testing.assert_close(one_by_one, full, atol=1e-5, rtol=0)
    torch.testing.assert_close(chunked, full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("positions", POSITIONS)
@pytest.mark.parametrize("norm_first", [True, False])
def test_cached_decoding_matches_full_forward_decoder_only(positions, norm_first):
    model = tiny("gpt", positions=positions, norm_first=norm_first)
    tokens = random_tokens(2, 8, seed=3)
    with torch.no_grad():
        full = model(tokens).logits
        assert model.encode(None) is None
        one_by_one = decode_in_chunks(model, None, tokens, [1] * 8)
        prompt_then_steps = decode_in_chunks(model, None, tokens, [5, 1, 1, 1])
    torch.testing.assert_close(one_by_one, full, atol=1e-5, rtol=0)
    torch.testing.assert_close(prompt_then_steps, full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["transformer", "gpt"])
def test_reorder_follows_selected_rows(name):
    """After reorder(index), decoding continues as if the selected rows had been decoded all along."""
    model = tiny(name, positions="rotary")
    src = random_tokens(2, 6, seed=4) if name == "transformer" else None
    tgt = random_tokens(2, 6, seed=5)
    index = torch.tensor([1, 0, 1])
    with torch.no_grad():
        encoded = model.encode(src)
        state = model.init_state(encoded, 2)
        _, state = model.decode_step(tgt[:, :3], encoded, state)
        encoded, state = model.reorder(encoded, state, index)
        rest, _ = model.decode_step(tgt[index, 3:], encoded, state)
        full = model(src[index], tgt[index]).logits if src is not None else model(tgt[index]).logits
    torch.testing.assert_close(rest, full[:, 3:], atol=1e-5, rtol=0)


# -- causality and padding ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["transformer", "gpt"])
@pytest.mark.parametrize("positions", POSITIONS)
def test_future_target_tokens_do_not_change_earlier_logits(name, positions):
    model = tiny(name, positions=positions)
    src = random_tokens(2, 5, seed=6)
    tgt = random_tokens(2, 8, seed=7)
    changed = tgt.clone()
    changed[:, 5] = (changed[:, 5] + 1 - 4) % (V - 4) + 4  # a different real token at position 5
    run = (lambda t: model(src, t).logits) if name == "transformer" else (lambda t: model(t).logits)
    with torch.no_grad():
        before, after = run(tgt), run(changed)
    torch.testing.assert_close(after[:, :5], before[:, :5], atol=1e-6, rtol=0)
    assert (after[:, 5:] - before[:, 5:]).abs().max() > 1e-3  # the test can see a change when there is one


@pytest.mark.parametrize("positions", POSITIONS)
def test_extra_source_padding_changes_nothing(positions):
    model = tiny("transformer", positions=positions)
    src = random_tokens(2, 6, seed=8)
    src[1, 4:] = PAD_ID
    padded = torch.cat([src, torch.full((2, 5), PAD_ID)], dim=1)
    tgt = random_tokens(2, 5, seed=9)
    with torch.no_grad():
        torch.testing.assert_close(model(padded, tgt).logits, model(src, tgt).logits, atol=1e-5, rtol=0)
        # row 1 alone, unpadded, gives the same as inside the padded batch
        alone = model(src[1:, :4], tgt[1:]).logits
        torch.testing.assert_close(model(padded, tgt).logits[1:], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("positions", POSITIONS)
def test_encoder_only_ignores_padding(positions):
    model = tiny("encoder", positions=positions)
    tokens = random_tokens(2, 7, seed=10)
    tokens[0, 5:] = PAD_ID
    with torch.no_grad():
        batch = model(tokens).logits
        alone = model(tokens[:1, :5]).logits
        more_padding = model(torch.cat([tokens, torch.full((2, 4), PAD_ID)], dim=1)).logits
    torch.testing.assert_close(batch[:1, :5], alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(more_padding[:, :7][tokens != PAD_ID], batch[tokens != PAD_ID], atol=1e-5, rtol=0)


# -- attention of every layer and head, as data --------------------------------------------------------
def test_every_layer_and_head_is_returned():
    model = tiny("transformer", n_encoder_layers=3, n_decoder_layers=2)
    src = random_tokens(2, 6, seed=11)
    src[0, 4:] = PAD_ID
    tgt = random_tokens(2, 5, seed=12)
    with torch.no_grad():
        out = model(src, tgt, need_weights=True)
        plain = model(src, tgt)
    torch.testing.assert_close(out.logits, plain.logits, atol=1e-5, rtol=0)  # reference == fused backend
    assert plain.attentions is None
    att = out.attentions
    assert [len(att[k]) for k in ("encoder_self", "decoder_self", "cross")] == [3, 2, 2]
    for w in att["encoder_self"]:
        assert w.shape == (2, 4, 6, 6)
        assert w[0, :, :, 4:].abs().max() == 0  # padding keys get no weight
    for w in att["decoder_self"]:
        assert w.shape == (2, 4, 5, 5)
        assert torch.triu(w, diagonal=1).abs().max() == 0  # no weight on the future
    for w in att["cross"]:
        assert w.shape == (2, 4, 5, 6)
        assert w[0, :, :, 4:].abs().max() == 0
    for w in att["encoder_self"] + att["decoder_self"] + att["cross"]:
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-5, rtol=0)


def test_attentions_are_a_typed_value_readable_as_a_mapping():
    with torch.no_grad():
        both = tiny("transformer")(random_tokens(1, 4, seed=1), random_tokens(1, 3, seed=2), need_weights=True)
        lm = tiny("gpt")(random_tokens(1, 4, seed=3), need_weights=True)
    att = both.attentions
    assert isinstance(att, Attentions) and list(att) == ["encoder_self", "decoder_self", "cross"]
    assert att["cross"] is att.cross and dict(att.items())["encoder_self"] is att.encoder_self
    assert list(lm.attentions) == ["decoder_self"] and lm.attentions.cross is None and len(lm.attentions) == 1
    assert "cross" not in lm.attentions and lm.attentions.get("cross") is None
    with pytest.raises(KeyError):
        lm.attentions["cross"]


def test_first_layer_weights_match_a_hand_computation():
    """softmax(q kᵀ / sqrt(D)) from the first layer's own projections, computed here independently."""
    model = tiny("encoder", positions="learned", norm_first=True)
    tokens = random_tokens(1, 5, seed=13)
    with torch.no_grad():
        weights = model(tokens, need_weights=True).attentions["encoder_self"][0]  # (1, H, T, T)
        x = model.encoder.embed.tokens.weight[tokens[0]] * model.encoder.embed.scale
        x = x + model.encoder.embed.positions.weight[:5]
        layer = model.encoder.layers[0]
        h = layer.self_attn_norm(x)
        q = layer.self_attn.q_proj(h).view(5, 4, 8).transpose(0, 1)  # (H, T, D)
        k = layer.self_attn.k_proj(h).view(5, 4, 8).transpose(0, 1)  # (H, T, D)
        expected = torch.softmax(q @ k.transpose(1, 2) / 8**0.5, dim=-1)  # (H, T, T)
    torch.testing.assert_close(weights[0], expected, atol=1e-6, rtol=0)


# -- parity with PyTorch's own Transformer layers -------------------------------------------------------
def _copy_attention(ours, theirs: nn.MultiheadAttention) -> None:
    w_q, w_k, w_v = theirs.in_proj_weight.chunk(3)
    b_q, b_k, b_v = theirs.in_proj_bias.chunk(3)
    for proj, w, b in ((ours.q_proj, w_q, b_q), (ours.k_proj, w_k, b_k), (ours.v_proj, w_v, b_v)):
        proj.weight.copy_(w)
        proj.bias.copy_(b)
    ours.out_proj.load_state_dict(theirs.out_proj.state_dict())


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_layers_match_pytorch_transformer_layers(norm_first, activation):
    torch.manual_seed(0)
    e, h, ff = 16, 4, 40
    config = ModelConfig(d_model=e, n_heads=h, d_ff=ff, activation=activation, dropout=0.0, norm_first=norm_first)
    ours_enc, ours_dec = encoder_layer(config).eval(), decoder_layer(config, cross_attention=True).eval()
    theirs_options = {"dropout": 0.0, "activation": activation, "batch_first": True, "norm_first": norm_first}
    theirs_enc = nn.TransformerEncoderLayer(e, h, ff, **theirs_options).eval()
    theirs_dec = nn.TransformerDecoderLayer(e, h, ff, **theirs_options).eval()
    with torch.no_grad():
        _copy_attention(ours_enc.self_attn, theirs_enc.self_attn)
        _copy_attention(ours_dec.self_attn, theirs_dec.self_attn)
        _copy_attention(ours_dec.cross_attn, theirs_dec.multihead_attn)
        for ours, theirs in ((ours_enc, theirs_enc), (ours_dec, theirs_dec)):
            ours.ff.fc1.load_state_dict(theirs.linear1.state_dict())
            ours.ff.fc2.load_state_dict(theirs.linear2.state_dict())
        ours_enc.self_attn_norm.load_state_dict(theirs_enc.norm1.state_dict())
        ours_enc.ff_norm.load_state_dict(theirs_enc.norm2.state_dict())
        ours_dec.self_attn_norm.load_state_dict(theirs_dec.norm1.state_dict())
        ours_dec.cross_attn_norm.load_state_dict(theirs_dec.norm2.state_dict())
        ours_dec.ff_norm.load_state_dict(theirs_dec.norm3.state_dict())

        src, tgt = torch.randn(2, 7, e), torch.randn(2, 5, e)
        keep = torch.ones(2, 7, dtype=torch.bool)
        keep[1, 5:] = False
        memory, _ = ours_enc(src, mask=keep[:, None, None, :])
        expected_memory = theirs_enc(src, src_key_padding_mask=~keep)
        torch.testing.assert_close(memory[keep], expected_memory[keep], atol=1e-5, rtol=1e-5)
        out, _, _ = ours_dec(tgt, memory, memory_mask=keep[:, None, None, :])
        causal = nn.Transformer.generate_square_subsequent_mask(5)
        expected = theirs_dec(tgt, memory, tgt_mask=causal, memory_key_padding_mask=~keep)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


# -- positions -------------------------------------------------------------------------------------------
def test_sinusoidal_table_matches_the_paper_formula():
    table = sinusoidal_table(10, 8)
    for pos in (0, 3, 9):
        for i in range(4):
            angle = pos / 10000 ** (2 * i / 8)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-12)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-12)
    halves = sinusoidal_table(10, 8, layout="halves")
    torch.testing.assert_close(halves, torch.cat([table[:, 0::2], table[:, 1::2]], dim=1))


def test_sinusoidal_positions_extend_past_max_len():
    from qkv.models.positions import SinusoidalPositions

    positions = SinusoidalPositions(8, max_len=4, layout="halves")
    torch.testing.assert_close(positions(3, 7), sinusoidal_table(10, 8, layout="halves")[3:])


def test_rotary_scores_depend_only_on_relative_position():
    rotary = RotaryEmbedding(8)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(m: int, n: int) -> float:
        q_m, _ = rotary(q, q, m, m)
        _, k_n = rotary(k, k, n, n)
        return (q_m * k_n).sum().item()

    assert score(5, 2) == pytest.approx(score(13, 10), abs=1e-5)
    assert score(5, 2) != pytest.approx(score(5, 4), abs=1e-3)
    assert score(0, 0) == pytest.approx((q * k).sum().item(), abs=1e-6)  # position 0: no rotation


# -- embeddings sharing, config validation ---------------------------------------------------------------
def test_tied_and_shared_embeddings_are_one_matrix():
    model = tiny("transformer", share_embeddings=True, tie_embeddings=True)
    assert model.lm_head.weight is model.decoder.embed.tokens.weight
    assert model.encoder.embed.tokens is model.decoder.embed.tokens
    untied = tiny("transformer", tie_embeddings=False)
    assert untied.lm_head.weight is not untied.decoder.embed.tokens.weight
    n_tied = sum(p.numel() for p in model.parameters())
    n_untied = sum(p.numel() for p in untied.parameters())
    assert n_untied - n_tied == 2 * V * 32  # one output matrix and one source embedding fewer


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"d_model": 30, "n_heads": 4}, "model.d_model"),
        ({"n_kv_heads": 3}, "model.n_kv_heads"),
        ({"positions": "alibi"}, "model.positions"),
        ({"activation": "tanh"}, "model.activation"),
        ({"dropout": 1.5}, "model.dropout"),
        ({"d_ff": "big"}, "model.d_ff"),
        ({"norm_first": "yes"}, "model.norm_first"),
        ({"name": "gpt", "n_decoder_layers": 0}, "model.n_decoder_layers"),
        ({"name": "gru", "attention": "cosine"}, "model.attention"),
    ],
)
def test_config_errors_name_the_field(change, field):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**change).validate()


def test_config_round_trips_and_rejects_unknown_keys():
    config = ModelConfig(name="gpt", positions="rotary", activation="silu")
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="model.n_layer"):
        ModelConfig.from_dict({"name": "gpt", "n_layer": 3})
    assert ModelConfig(name="lstm-attention").input_feeding is True  # recurrent presets fill unset fields
    assert dataclasses.replace(ModelConfig(name="gru-attention"), bidirectional=False).bidirectional is False


# -- the remaining knobs ---------------------------------------------------------------------------------
def test_bias_off_removes_every_bias():
    model = tiny("transformer", bias=False)
    assert [n for n, _ in model.named_parameters() if n.endswith("bias")] == []
    assert any(n.endswith("bias") for n, _ in tiny("transformer").named_parameters())


@pytest.mark.parametrize(
    ("name", "formula"),
    [
        ("relu", lambda x: x.clamp(min=0)),
        ("gelu", lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))),
        ("gelu_tanh", lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))),
        ("silu", lambda x: x / (1 + torch.exp(-x))),
    ],
)
def test_feed_forward_activations_follow_their_formulas(name, formula):
    from qkv.models.feed_forward import FeedForward

    torch.manual_seed(0)
    ff = FeedForward(8, 16, activation=name)
    x = torch.randn(2, 3, 8)
    expected = ff.fc2(formula(ff.fc1(x)))
    torch.testing.assert_close(ff(x), expected, atol=1e-6, rtol=0)


def test_dropout_acts_in_training_only():
    model = tiny("gpt", dropout=0.3, attention_dropout=0.2, activation_dropout=0.1)
    tokens = random_tokens(2, 6, seed=14)
    with torch.no_grad():
        torch.testing.assert_close(model(tokens).logits, model(tokens).logits)
        model.train()
        assert (model(tokens).logits - model(tokens).logits).abs().max() > 1e-3


def test_attention_backend_names_come_from_one_list():
    from qkv.attention import BACKENDS

    assert BACKENDS == ("auto", "reference", "fused")
    for backend in BACKENDS:
        assert ModelConfig(attention_backend=backend).validate().attention_backend == backend
    with pytest.raises(
        ValueError, match=r"^model\.attention_backend must be one of auto, reference, fused, got 'flash'$"
    ):
        ModelConfig(attention_backend="flash").validate()


def test_learned_positions_are_a_slice_and_refuse_past_the_table():
    from qkv.models.positions import LearnedPositions

    table = LearnedPositions(6, max_len=5)
    torch.testing.assert_close(table(2, 3), table.weight[2:5])
    with pytest.raises(ValueError, match="position 5 is beyond the learned table"):
        table(3, 3)


def test_a_gpt_with_learned_positions_traces_as_one_graph():
    """``torch.compile`` (``training.compile``) sees the whole forward pass: no data-dependent check breaks it."""
    import torch._dynamo

    model = build_model(
        ModelConfig(name="gpt", d_model=16, n_heads=2, n_decoder_layers=2, d_ff=32, max_len=32, positions="learned"),
        src_vocab=0,
        tgt_vocab=20,
    )
    explanation = torch._dynamo.explain(model)(torch.randint(4, 20, (2, 10)))
    assert explanation.graph_break_count == 0, explanation.break_reasons


def test_the_decoder_step_compiles_as_one_graph_with_beam_reorders():
    """``torch.compile(decode_step, fullgraph=True, dynamic=True)`` traces a step whose caches carry a pending
    beam reorder and a growing length without any graph break, and beam search through it returns exactly
    what it returns eagerly. ``backend="eager"`` checks the tracing only (no inductor code generation, which
    ``benchmarks/beam_levers.py --lever compiled-step`` uses and times)."""
    from qkv.decoding import beam_search

    torch.manual_seed(0)
    model = build_model(
        ModelConfig(name="transformer", d_model=16, n_heads=2, n_encoder_layers=2, n_decoder_layers=2, d_ff=32),
        12,
        12,
    ).eval()
    src = torch.randint(4, 12, (3, 7), generator=torch.Generator().manual_seed(1))
    eager = beam_search(model, src, beam=3, max_len=8)
    model.decode_step = torch.compile(model.decode_step, fullgraph=True, dynamic=True, backend="eager")
    compiled = beam_search(model, src, beam=3, max_len=8)
    assert compiled.tokens == eager.tokens and compiled.finished == eager.finished
    assert compiled.scores == pytest.approx(eager.scores, abs=1e-5)
