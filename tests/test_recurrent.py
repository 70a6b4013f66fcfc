"""Recurrent encoder-decoders: cached decoding == teacher forcing, padding invariance, alignments as data,
and one step of Bahdanau and Luong recomputed by hand from PyTorch's own cells."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qkv.models.builder import build_model
from qkv.models.config import RECURRENT_NAMES, ModelConfig
from qkv.models.recurrent import RecurrentSeq2Seq
from qkv.special import BOS_ID, EOS_ID, PAD_ID

# (cell, attention, bidirectional, input_feeding): every decoder path, both cells
VARIANTS = [
    (cell, attention, bidirectional, feeding)
    for cell in ("gru", "lstm")
    for attention, bidirectional, feeding in [
        ("none", False, False),  # Sutskever / Cho
        ("none", True, False),
        ("additive", True, False),  # Bahdanau
        ("general", False, True),  # Luong with input feeding
        ("general", True, False),
        ("dot", False, True),
    ]
]
IDS = [f"{c}-{a}-{'bi' if b else 'uni'}{'-feed' if f else ''}" for c, a, b, f in VARIANTS]


def make_model(cell, attention, bidirectional, feeding, layers=2, seed=0) -> RecurrentSeq2Seq:
    torch.manual_seed(seed)
    model = RecurrentSeq2Seq(
        12,
        14,
        embed_dim=8,
        hidden_size=10,
        num_layers=layers,
        cell=cell,
        bidirectional=bidirectional,
        attention=attention,
        input_feeding=feeding,
        dropout=0.3,
    )
    return model.eval()  # dropout present but off, as in decoding


SRC = torch.tensor([[4, 5, 6, 7, 8, EOS_ID], [9, 5, EOS_ID, PAD_ID, PAD_ID, PAD_ID], [6, 6, 7, EOS_ID, PAD_ID, PAD_ID]])
TGT = torch.tensor([[BOS_ID, 8, 7, 6, 5, 4], [BOS_ID, 5, 9, PAD_ID, PAD_ID, PAD_ID], [BOS_ID, 7, 6, 6, 11, PAD_ID]])


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
@pytest.mark.parametrize("chunk", [1, 2, 4])
def test_cached_decode_step_equals_teacher_forced_forward(variant, chunk):
    model = make_model(*variant)
    with torch.no_grad():
        full = model(SRC, TGT).logits  # (B, T_t, V)
        encoded = model.encode(SRC)
        state = model.init_state(encoded, SRC.size(0))
        pieces = []
        for start in range(0, TGT.size(1), chunk):
            logits, state = model.decode_step(TGT[:, start : start + chunk], encoded, state)
            pieces.append(logits)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_padding_changes_nothing(variant):
    """Extra source padding, and sharing a batch with longer rows, leave every real logit unchanged."""
    model = make_model(*variant)
    padded = F.pad(SRC, (0, 5), value=PAD_ID)  # five more PAD columns
    with torch.no_grad():
        base = model(SRC, TGT).logits
        more = model(padded, TGT).logits
        torch.testing.assert_close(more, base, atol=1e-6, rtol=0)
        for row in range(SRC.size(0)):  # each row alone, with no padding at all
            length = int((SRC[row] != PAD_ID).sum())
            alone = model(SRC[row : row + 1, :length], TGT[row : row + 1]).logits
            torch.testing.assert_close(alone[0], base[row], atol=1e-5, rtol=0)


ATTENTIVE = [(v, i) for v, i in zip(VARIANTS, IDS, strict=True) if v[1] != "none"]


@pytest.mark.parametrize("variant", [v for v, _ in ATTENTIVE], ids=[i for _, i in ATTENTIVE])
def test_alignments_are_cross_attention_rows_summing_to_one_and_zero_on_padding(variant):
    model = make_model(*variant)
    with torch.no_grad():
        out = model(SRC, TGT, need_weights=True)
    assert set(out.attentions) == {"cross"} and len(out.attentions["cross"]) == 1
    weights = out.attentions["cross"][0]
    assert weights.shape == (3, 1, TGT.size(1), SRC.size(1))  # (B, 1 head, T_t, T_s)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 1, TGT.size(1)), atol=1e-6, rtol=0)
    padded = (SRC == PAD_ID)[:, None, None, :].expand_as(weights)
    assert torch.all(weights[padded] == 0)
    assert torch.all(weights[~padded] > 0)


def test_attention_free_model_has_no_alignments():
    model = make_model("gru", "none", False, False)
    assert model(SRC, TGT, need_weights=True).attentions is None


def test_bahdanau_step_by_hand():
    """One GRU step of Bahdanau et al. 2015 recomputed from nn.GRUCell with the model's weights."""
    model = make_model("gru", "additive", True, False, layers=1)
    enc, dec = model.encoder, model.decoder
    src, tgt = SRC[1:2, :3], TGT[1:2, :2]  # one row, no padding
    with torch.no_grad():
        # bidirectional encoder, by hand: forward and backward GRUs over the row
        emb = enc.embedding(src)[0]  # (T_s, E)
        fwd = torch.nn.GRUCell(8, 10)
        bwd = torch.nn.GRUCell(8, 10)
        for cell, suffix in ((fwd, ""), (bwd, "_reverse")):
            cell.weight_ih.copy_(getattr(enc.rnn, "weight_ih_l0" + suffix))
            cell.weight_hh.copy_(getattr(enc.rnn, "weight_hh_l0" + suffix))
            cell.bias_ih.copy_(getattr(enc.rnn, "bias_ih_l0" + suffix))
            cell.bias_hh.copy_(getattr(enc.rnn, "bias_hh_l0" + suffix))
        h, states_f = torch.zeros(1, 10), []
        for x in emb:
            h = fwd(x[None], h)
            states_f.append(h[0])
        h, states_b = torch.zeros(1, 10), []
        for x in emb.flip(0):
            h = bwd(x[None], h)
            states_b.append(h[0])
        annotations = torch.cat([torch.stack(states_f), torch.stack(states_b[::-1])], dim=-1)  # (T_s, 20)
        s = torch.tanh(model.bridge(torch.cat([states_f[-1], states_b[-1]])))  # initial decoder state (10,)

        cell = torch.nn.GRUCell(8 + 20, 10)
        cell.weight_ih.copy_(dec.rnn.weight_ih_l0)
        cell.weight_hh.copy_(dec.rnn.weight_hh_l0)
        cell.bias_ih.copy_(dec.rnn.bias_ih_l0)
        cell.bias_hh.copy_(dec.rnn.bias_hh_l0)
        attn = dec.attention
        expected = []
        for y_prev in tgt[0]:
            e = dec.embedding.weight[y_prev]  # (8,)
            scores = (
                attn.energy.weight[0]
                @ torch.tanh(attn.query_proj.weight @ s + annotations @ attn.key_proj.weight.T + attn.key_proj.bias).T
            )  # (T_s,): v^T tanh(W s_{i-1} + U h_j)
            alpha = torch.softmax(scores, dim=0)
            c = alpha @ annotations  # (20,)
            s = cell(torch.cat([e, c])[None], s[None])[0]
            r = torch.tanh(dec.readout(torch.cat([s, c, e])))
            expected.append(dec.out_proj(r))
        got = model(src, tgt).logits[0]
    torch.testing.assert_close(got, torch.stack(expected), atol=1e-5, rtol=0)


def test_luong_general_with_input_feeding_by_hand():
    """Luong et al. 2015: h_t = LSTM([e; h~_{t-1}]), score = h_t^T W_a h_s, h~_t = tanh(W_c [c_t; h_t])."""
    model = make_model("lstm", "general", False, True, layers=1)
    enc, dec = model.encoder, model.decoder
    src, tgt = SRC[2:3, :4], TGT[2:3, :4]
    with torch.no_grad():
        ref_enc = torch.nn.LSTM(8, 10, batch_first=True)
        ref_enc.load_state_dict(enc.rnn.state_dict())
        outputs, (h, c) = ref_enc(enc.embedding(src))  # (1, T_s, 10)
        keys = outputs[0]  # (T_s, 10)
        cell = torch.nn.LSTMCell(8 + 10, 10)
        cell.weight_ih.copy_(dec.rnn.weight_ih_l0)
        cell.weight_hh.copy_(dec.rnn.weight_hh_l0)
        cell.bias_ih.copy_(dec.rnn.bias_ih_l0)
        cell.bias_hh.copy_(dec.rnn.bias_hh_l0)
        h, c = h[0], c[0]  # (1, 10): the unidirectional encoder's final state starts the decoder
        feed = torch.zeros(1, 10)
        expected = []
        for y_prev in tgt[0]:
            e = dec.embedding.weight[y_prev][None]  # (1, 8)
            h, c = cell(torch.cat([e, feed], dim=-1), (h, c))
            scores = keys @ dec.attention.key_proj.weight.T @ h[0]  # (T_s,)
            context = torch.softmax(scores, dim=0) @ keys  # (10,)
            feed = torch.tanh(dec.combine.weight @ torch.cat([context, h[0]]))[None]  # (1, 10)
            expected.append(dec.out_proj(feed[0]))
        got = model(src, tgt).logits[0]
    torch.testing.assert_close(got, torch.stack(expected), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", RECURRENT_NAMES)
def test_build_model_follows_the_recurrent_presets(name):
    config = ModelConfig(name=name, d_model=8, hidden_size=10, n_rnn_layers=2, dropout=0.0).validate()
    model = build_model(config, 12, 14)
    assert model.cell == config.rnn_cell and model.attention == config.attention
    assert model.encoder.dirs == (2 if config.bidirectional else 1)
    assert model.decoder.input_feeding == config.input_feeding
    assert model.encoder.rnn.num_layers == 2 and model.decoder.rnn.hidden_size == 10
    assert model(SRC, TGT).logits.shape == (3, TGT.size(1), 14)
    assert (model.pad_id, model.bos_id, model.eos_id) == (PAD_ID, BOS_ID, EOS_ID)
    other = build_model(config, 12, 14, pad_id=5, bos_id=6, eos_id=7)  # a checkpoint's own ids reach the model
    assert (other.pad_id, other.bos_id, other.eos_id) == (5, 6, 7)
    assert other.decoder.embedding.padding_idx == 5 and other.encoder.embedding.padding_idx == 5


def test_input_feeding_without_luong_attention_is_rejected():
    with pytest.raises(ValueError, match="input feeding"):
        RecurrentSeq2Seq(5, 5, attention="additive", input_feeding=True)


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_future_target_tokens_do_not_change_earlier_logits(variant):
    model = make_model(*variant)
    changed = TGT.clone()
    changed[:, 3:] = torch.randint(4, 14, (3, TGT.size(1) - 3))
    with torch.no_grad():
        base, other = model(SRC, TGT).logits, model(SRC, changed).logits
    torch.testing.assert_close(other[:, :3], base[:, :3], atol=0, rtol=0)
    assert not torch.allclose(other[:, 3:], base[:, 3:])
