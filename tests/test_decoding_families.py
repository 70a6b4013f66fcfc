"""One decoding for every family: the same searches on Transformer encoder-decoders, decoder-only LMs
(prompt continuation) and recurrent models, checked against each model's own teacher-forced forward."""

from __future__ import annotations

import pytest
import torch

from qkv.decoding import beam_search, greedy, sample, sequence_log_probs
from qkv.models import ModelConfig, build_model
from qkv.special import BOS_ID, EOS_ID, PAD_ID

SRC = torch.tensor([[4, 5, 6, 7, EOS_ID], [5, 6, EOS_ID, PAD_ID, PAD_ID], [7, 4, 4, EOS_ID, PAD_ID]])
PROMPTS = [[BOS_ID, 4, 5, 6], [BOS_ID], [BOS_ID, 7, 7]]
SEQ2SEQ = ["transformer", "gru-attention", "lstm-attention"]


def tiny(name: str, seed: int = 0, vocab: int = 10):
    torch.manual_seed(seed)
    config = ModelConfig(
        name=name,
        d_model=16,
        n_heads=2,
        d_ff=32,
        n_encoder_layers=2,
        n_decoder_layers=2,
        hidden_size=16,
        dropout=0.0,
        max_len=64,
    )
    model = build_model(config, 10, vocab).eval()
    with torch.no_grad():  # sharper, more varied distributions than a fresh init gives
        for parameter in model.parameters():
            parameter.mul_(4.0)
    return model


def forward_log_probs(model, src, outputs, prompts=None) -> list[float]:
    """log P(tokens + EOS-if-finished) for each row from the model's full ``forward`` (no decoding state)."""
    scores = []
    for row, (tokens, finished) in enumerate(outputs):
        prefix = [BOS_ID] if prompts is None else prompts[row]
        seq = prefix + tokens + ([EOS_ID] if finished else [])
        with torch.no_grad():
            if src is None:
                logits = model(torch.tensor([seq[:-1]])).logits
            else:
                logits = model(src[row : row + 1], torch.tensor([seq[:-1]])).logits  # (1, T, V)
        log_probs = logits[0].log_softmax(-1)  # (T, V)
        targets = torch.tensor(seq[1:])
        picked = log_probs[torch.arange(len(targets)), targets]
        scores.append(float(picked[len(prefix) - 1 :].sum()))
    return scores


@pytest.mark.parametrize("name", SEQ2SEQ)
@pytest.mark.parametrize("seed", [0, 1])
def test_seq2seq_beam_one_is_greedy_and_beam_beats_greedy(name, seed):
    model = tiny(name, seed)
    g = greedy(model, SRC, max_len=6)
    assert beam_search(model, SRC, beam=1, max_len=6).tokens == g.tokens
    b = beam_search(model, SRC, beam=4, max_len=6, length_penalty=0.0, early_stopping=False)
    g_ref = forward_log_probs(model, SRC, list(zip(g.tokens, g.finished, strict=True)))
    b_ref = forward_log_probs(model, SRC, list(zip(b.tokens, b.finished, strict=True)))
    assert g.scores == pytest.approx(g_ref, abs=1e-4)
    assert b.scores == pytest.approx(b_ref, abs=1e-4)
    assert all(bs >= gs - 1e-5 for bs, gs in zip(b_ref, g_ref, strict=True))


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_seq2seq_sampling_top_k_one_is_greedy(name):
    model = tiny(name, 2)
    got = sample(model, SRC, max_len=6, top_k=1, generator=torch.Generator().manual_seed(0))
    assert got.tokens == greedy(model, SRC, max_len=6).tokens


def test_lm_prompt_continuation_batched_equals_one_prompt_at_a_time():
    """Prompts of different lengths in one batch: each continues exactly as it would alone."""
    model = tiny("gpt", 0)
    got = greedy(model, None, max_len=5, prompt=PROMPTS)
    for row, prompt in enumerate(PROMPTS):
        alone = greedy(model, None, max_len=5, prompt=[prompt])
        assert alone.tokens[0] == got.tokens[row]
        assert alone.scores[0] == pytest.approx(got.scores[row], abs=1e-4)
    ref = forward_log_probs(model, None, list(zip(got.tokens, got.finished, strict=True)), prompts=PROMPTS)
    assert got.scores == pytest.approx(ref, abs=1e-4)


def test_lm_greedy_continuation_by_hand():
    """Greedy continuation recomputed with the full forward: argmax of the last position, appended, repeated."""
    model = tiny("gpt", 1)
    seq = list(PROMPTS[0])
    with torch.no_grad():
        for _ in range(5):
            next_token = int(model(torch.tensor([seq])).logits[0, -1].argmax())
            if next_token == EOS_ID:
                break
            seq.append(next_token)
    assert greedy(model, None, max_len=5, prompt=[PROMPTS[0]]).tokens[0] == seq[len(PROMPTS[0]) :]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lm_beam_one_is_greedy_and_beam_beats_greedy(seed):
    model = tiny("gpt", seed)
    g = greedy(model, None, max_len=6, prompt=PROMPTS)
    assert beam_search(model, None, beam=1, max_len=6, prompt=PROMPTS).tokens == g.tokens
    b = beam_search(model, None, beam=3, max_len=6, prompt=PROMPTS, length_penalty=0.0, early_stopping=False)
    b_ref = sequence_log_probs(model, None, b.tokens, prompt=PROMPTS, add_eos=b.finished)
    assert b.scores == pytest.approx(b_ref, abs=1e-4)
    assert all(bs >= gs - 1e-5 for bs, gs in zip(b.scores, g.scores, strict=True))
    s = sample(model, None, max_len=6, prompt=PROMPTS, top_k=1, generator=torch.Generator().manual_seed(0))
    assert s.tokens == g.tokens


def test_lm_needs_a_prompt_and_seq2seq_needs_a_source():
    with pytest.raises(ValueError, match="prompt"):
        greedy(tiny("gpt"), None, max_len=3)
    with pytest.raises(ValueError, match="src"):
        greedy(tiny("gru"), None, max_len=3)


def test_lm_prompt_as_a_tensor_equals_lists():
    model = tiny("gpt", 3)
    prompts = [[BOS_ID, 4, 5], [BOS_ID, 6, 6]]
    as_lists = sample(model, None, max_len=4, prompt=prompts, generator=torch.Generator().manual_seed(1))
    as_tensor = sample(model, None, max_len=4, prompt=torch.tensor(prompts), generator=torch.Generator().manual_seed(1))
    assert as_tensor.tokens == as_lists.tokens
    assert (
        greedy(model, None, max_len=4, prompt=torch.tensor(prompts)).tokens
        == greedy(model, None, max_len=4, prompt=prompts).tokens
    )


@pytest.mark.parametrize("name", [*SEQ2SEQ, "gpt", "gru", "lstm"])
def test_every_family_implements_the_decoding_protocol(name):
    from qkv.decoding import DecodingModel, as_decoding_model

    model = tiny(name)
    assert isinstance(model, DecodingModel) and as_decoding_model(model) is model


def test_an_encoder_only_model_is_not_a_decoding_model():
    from qkv.decoding import as_decoding_model

    encoder = build_model(ModelConfig(name="encoder", d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1), 10, 0)
    with pytest.raises(TypeError, match=r"^EncoderOnly does not implement the decoding interface \(missing: "):
        as_decoding_model(encoder)


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_reorder_within_rows_keeps_the_encoder_side_and_decodes_the_same(name):
    """``same_rows=True`` (beams moved within their input) skips copying what the encoder computed; the
    next step's logits equal those after a full reorder, which copies everything."""
    model = tiny(name)
    expand = torch.arange(3).repeat_interleave(2)  # (6,): two beams per input
    within = torch.tensor([1, 1, 2, 3, 5, 4])  # beams swapped/duplicated, each inside its own input's block
    tokens = torch.tensor([[4], [5], [6], [7], [4], [5]])  # (6, 1)
    logits = []
    for same_rows in (False, True):
        with torch.no_grad():
            encoded = model.encode(SRC)
            state = model.init_state(encoded, 3)
            _, state = model.decode_step(torch.full((3, 1), BOS_ID), encoded, state)
            encoded, state = model.reorder(encoded, state, expand)
            _, state = model.decode_step(tokens, encoded, state)
            kept, state = model.reorder(encoded, state, within, same_rows=same_rows)
            assert (kept is encoded) == same_rows  # no copy of the encoder side when the rows stay
            out, _ = model.decode_step(tokens, kept, state)
            logits.append(out)
    torch.testing.assert_close(logits[0], logits[1], rtol=0, atol=0)
