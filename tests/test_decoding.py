"""Decoding written once: greedy, beam search and sampling on recurrent seq2seq models.

Expected values come from hand-worked distributions, brute-force enumeration of every output, and the
model's own teacher-forced scores -- never from pasted search output.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import qkv.decoding.beam as beam_module
from qkv.decoding import (
    beam_search,
    greedy,
    length_penalty_factor,
    sample,
    sampling_distribution,
    sequence_log_probs,
    top_k_filter,
    top_p_filter,
)
from qkv.models.recurrent import RecurrentSeq2Seq
from qkv.special import BOS_ID, EOS_ID, PAD_ID

SRC = torch.tensor([[4, 5, 6, 7, EOS_ID], [5, 6, EOS_ID, PAD_ID, PAD_ID], [7, 4, 4, EOS_ID, PAD_ID]])
KINDS = [("gru", "none", False, False), ("lstm", "additive", True, False), ("gru", "general", False, True)]
KIND_IDS = ["gru", "lstm-bahdanau", "gru-luong-feed"]


def peaky_model(cell, attention, bidirectional, feeding, *, seed=0, vocab=9, eos_bias=1.0) -> RecurrentSeq2Seq:
    """A random tiny model with sharp, varied next-token distributions and some chance to stop."""
    torch.manual_seed(seed)
    model = RecurrentSeq2Seq(
        10,
        vocab,
        embed_dim=8,
        hidden_size=12,
        cell=cell,
        bidirectional=bidirectional,
        attention=attention,
        input_feeding=feeding,
    ).eval()
    with torch.no_grad():
        model.decoder.out_proj.weight.mul_(4.0)
        model.decoder.out_proj.bias[EOS_ID] += eos_bias
    return model


# -- beam search ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_size_one_is_greedy(kind, seed):
    model = peaky_model(*kind, seed=seed)
    expected = greedy(model, SRC, max_len=7)
    got = beam_search(model, SRC, beam=1, max_len=7, length_penalty=1.0)
    assert got.tokens == expected.tokens and got.finished == expected.finished
    assert got.scores == pytest.approx(expected.scores, abs=1e-5)


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("seed", range(4))
def test_beam_never_less_probable_than_greedy(kind, seed):
    model = peaky_model(*kind, seed=seed, eos_bias=0.0)
    g = greedy(model, SRC, max_len=6)
    b = beam_search(model, SRC, beam=4, max_len=6, length_penalty=0.0, early_stopping=False)
    g_scores = sequence_log_probs(model, SRC, g.tokens, add_eos=g.finished)
    b_scores = sequence_log_probs(model, SRC, b.tokens, add_eos=b.finished)
    assert b.scores == pytest.approx(b_scores, abs=1e-4)  # reported scores are the model's log-probabilities
    assert g.scores == pytest.approx(g_scores, abs=1e-4)
    for beam_score, greedy_score in zip(b_scores, g_scores, strict=True):
        assert beam_score >= greedy_score - 1e-5


def _all_outputs(vocab: int, max_len: int):
    """Every output a search can return: token lists ending in EOS (finished) or of length max_len (not)."""
    symbols = [t for t in range(vocab) if t != EOS_ID]
    for n in range(max_len):
        for tokens in itertools.product(symbols, repeat=n):
            yield list(tokens), True
    for tokens in itertools.product(symbols, repeat=max_len):
        yield list(tokens), False


def _teacher_forced_scores(model, src_row, outputs) -> list[float]:
    """log P(output) for every output at once through ``model.forward`` (not the decoding interface)."""
    targets = [tokens + [EOS_ID] * finished for tokens, finished in outputs]
    width = max(len(t) for t in targets)
    tgt_in = torch.tensor([[BOS_ID] + t[:-1] + [PAD_ID] * (width - len(t)) for t in targets])  # (N, width)
    tgt_out = torch.tensor([t + [PAD_ID] * (width - len(t)) for t in targets])  # (N, width)
    with torch.no_grad():
        log_probs = model(src_row.expand(len(outputs), -1), tgt_in).logits.log_softmax(-1)  # (N, width, V)
    picked = log_probs.gather(-1, tgt_out.unsqueeze(-1)).squeeze(-1)  # (N, width)
    real = torch.arange(width)[None, :] < torch.tensor([len(t) for t in targets])[:, None]  # (N, width)
    return (picked * real).sum(-1).tolist()


def test_wide_beam_finds_the_exact_best_output_by_brute_force():
    """With a beam as wide as the search space, beam search is exact: compare with scoring every output."""
    vocab, max_len = 5, 3  # 4 non-EOS symbols: at most 4**2 = 16 live prefixes, beam 20 keeps them all
    model = peaky_model("gru", "additive", True, False, seed=3, vocab=vocab, eos_bias=0.5)
    outputs = list(_all_outputs(vocab, max_len))
    raw = [_teacher_forced_scores(model, SRC[row : row + 1], outputs) for row in range(SRC.size(0))]
    for alpha, form in itertools.product((0.0, 1.0, -0.5), ("gnmt", "power")):
        got = beam_search(
            model, SRC, beam=20, max_len=max_len, length_penalty=alpha, length_penalty_form=form, early_stopping=False
        )
        for row in range(SRC.size(0)):
            normalized = [
                s / length_penalty_factor(len(t) + f, alpha, form) for s, (t, f) in zip(raw[row], outputs, strict=True)
            ]
            best = max(range(len(outputs)), key=normalized.__getitem__)
            assert got.normalized_scores[row] == pytest.approx(normalized[best], abs=1e-4)
            assert (got.tokens[row], got.finished[row]) == outputs[best]


def test_length_penalty_is_gnmt():
    assert length_penalty_factor(7, 1.0) == pytest.approx(2.0)  # (5 + 7) / 6
    assert length_penalty_factor(3, 0.6) == pytest.approx((8 / 6) ** 0.6)
    assert length_penalty_factor(10, 0.0) == 1.0


def test_length_penalty_power_form_is_fairseq_and_hugging_face():
    assert length_penalty_factor(7, 1.0, "power") == 7.0
    assert length_penalty_factor(3, 0.6, "power") == pytest.approx(3**0.6)
    assert length_penalty_factor(10, 0.0, "power") == 1.0
    with pytest.raises(ValueError, match="length_penalty_form must be 'gnmt' or 'power', got 'gnm'"):
        beam_search(peaky_model("gru", "additive", True, False, seed=3), SRC, beam=2, length_penalty_form="gnm")


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_exhaustive_stopping_never_ranks_worse_than_early_stopping(kind):
    model = peaky_model(*kind, seed=5, eos_bias=0.5)
    early = beam_search(model, SRC, beam=3, max_len=8, length_penalty=1.0, early_stopping=True)
    full = beam_search(model, SRC, beam=3, max_len=8, length_penalty=1.0, early_stopping=False)
    for e, f in zip(early.normalized_scores, full.normalized_scores, strict=True):
        assert f >= e - 1e-6


@pytest.mark.parametrize("form", ["gnmt", "power"])
def test_the_stopping_bound_is_the_best_normalised_score_still_reachable(form):
    """A live beam with log-probability -6 after 3 tokens, max_len 10: its best finished score divides -6 by the
    largest ``lp`` reachable (length 10) when ``alpha > 0`` and by the smallest (length 4) when ``alpha < 0``.
    Hand-worked: power ``-6 / 10 = -0.6`` and ``-6 / (1 / 4) = -24``; GNMT ``-6 / (15 / 6) = -2.4`` and
    ``-6 * (9 / 6) = -9``."""
    expected = {("power", 1.0): -0.6, ("power", -1.0): -24.0, ("gnmt", 1.0): -2.4, ("gnmt", -1.0): -9.0}
    for alpha in (1.0, -1.0):
        bound = beam_module._best_possible(-6.0, 3, 10, alpha, form)
        assert bound == pytest.approx(expected[form, alpha])
        lengths = range(4, 11)  # every finished length still reachable
        assert bound == pytest.approx(max(-6.0 / length_penalty_factor(n, alpha, form) for n in lengths))


@pytest.mark.parametrize("alpha", [0.0, 2.0, -1.0])
@pytest.mark.parametrize(("kind", "seed"), [(KINDS[0], 0), (KINDS[0], 1), (KINDS[1], 0)])
def test_the_stopping_bound_only_saves_work(monkeypatch, alpha, kind, seed):
    """``early_stopping=False`` stops when no live beam can win: never searching on must give the same result."""
    model = peaky_model(*kind, seed=seed, eos_bias=1.0)
    bounded = beam_search(model, SRC, beam=3, max_len=9, length_penalty=alpha, early_stopping=False)
    monkeypatch.setattr(beam_module, "_best_possible", lambda *args: float("inf"))
    unbounded = beam_search(model, SRC, beam=3, max_len=9, length_penalty=alpha, early_stopping=False)
    assert bounded.tokens == unbounded.tokens
    assert bounded.normalized_scores == pytest.approx(unbounded.normalized_scores, abs=1e-6)


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_batched_beam_equals_one_row_at_a_time(kind):
    model = peaky_model(*kind, seed=1, eos_bias=0.8)
    batched = beam_search(model, SRC, beam=3, max_len=7)
    for row in range(SRC.size(0)):
        alone = beam_search(model, SRC[row : row + 1], beam=3, max_len=7)
        assert alone.tokens[0] == batched.tokens[row]
        assert alone.scores[0] == pytest.approx(batched.scores[row], abs=1e-5)


def test_search_stops_at_eos_and_respects_max_len():
    model = peaky_model("gru", "none", False, False, seed=0, eos_bias=0.0)
    with torch.no_grad():
        model.decoder.out_proj.bias[EOS_ID] -= 100.0  # never stops by itself
    for hyps in (greedy(model, SRC, max_len=4), beam_search(model, SRC, beam=2, max_len=4)):
        assert all(len(t) == 4 for t in hyps.tokens) and not any(hyps.finished)
    with torch.no_grad():
        model.decoder.out_proj.bias[EOS_ID] += 300.0  # always stops at once
    for hyps in (greedy(model, SRC, max_len=4), beam_search(model, SRC, beam=2, max_len=4)):
        assert hyps.tokens == [[], [], []] and all(hyps.finished)
        assert hyps.scores == pytest.approx([0.0] * 3, abs=1e-4)


def test_forced_prompt_prefix_is_scored_but_not_returned():
    """A seq2seq prompt forces the start of the target; tokens after it match greedy from that prefix."""
    model = peaky_model("lstm", "additive", True, False, seed=2, eos_bias=0.3)
    prompt = [[4, 5], [], [6]]
    got = greedy(model, SRC, max_len=5, prompt=prompt)
    for row in range(3):
        alone = greedy(model, SRC[row : row + 1], max_len=5, prompt=[prompt[row]])
        assert alone.tokens[0] == got.tokens[row]
        expected = sequence_log_probs(
            model, SRC[row : row + 1], [got.tokens[row]], prompt=[prompt[row]], add_eos=got.finished[row]
        )
        assert got.scores[row] == pytest.approx(expected[0], abs=1e-5)
    assert beam_search(model, SRC, beam=1, max_len=5, prompt=prompt).tokens == got.tokens


# -- sampling --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_sampling_with_top_k_one_is_greedy(kind):
    model = peaky_model(*kind, seed=4)
    expected = greedy(model, SRC, max_len=7)
    got = sample(model, SRC, max_len=7, top_k=1, temperature=1.7, generator=torch.Generator().manual_seed(0))
    assert got.tokens == expected.tokens
    assert got.scores == pytest.approx(expected.scores, abs=1e-5)


PROBS = torch.tensor([0.05, 0.5, 0.1, 0.2, 0.15])  # by hand: sorted 0.5, 0.2, 0.15, 0.1, 0.05


def test_top_k_filter_by_hand():
    dist = sampling_distribution(PROBS.log(), top_k=2)
    torch.testing.assert_close(dist, torch.tensor([0, 0.5, 0, 0.2, 0]) / 0.7)


def test_top_p_filter_by_hand():
    # mass ranked above each token: 0.5 -> 0, 0.2 -> 0.5, 0.15 -> 0.7, 0.1 -> 0.85: p = 0.75 keeps the top three
    dist = sampling_distribution(PROBS.log(), top_p=0.75)
    torch.testing.assert_close(dist, torch.tensor([0, 0.5, 0, 0.2, 0.15]) / 0.85)
    # p below the top token's mass keeps just that token
    torch.testing.assert_close(sampling_distribution(PROBS.log(), top_p=0.3), torch.tensor([0.0, 1, 0, 0, 0]))
    assert torch.equal(top_p_filter(PROBS.log(), 1.0), PROBS.log())
    # near the boundary, with probabilities exact in binary: the top two hold exactly 0.75
    dyadic = torch.tensor([0.0625, 0.5, 0.125, 0.25, 0.0625])
    expected = torch.tensor([0, 0.5, 0, 0.25, 0]) / 0.75
    torch.testing.assert_close(sampling_distribution(dyadic.log(), top_p=0.74), expected)
    torch.testing.assert_close(
        sampling_distribution(dyadic.log(), top_p=0.76), torch.tensor([0, 0.5, 0.125, 0.25, 0]) / 0.875
    )


def test_temperature_then_filters_by_hand():
    # T = 2: p^(1/2) renormalised; then top-k 3 keeps 0.5, 0.2, 0.15 (ranks don't change with T)
    root = PROBS.sqrt()
    expected = torch.where(PROBS >= 0.15, root, torch.zeros(5))
    dist = sampling_distribution(PROBS.log(), temperature=2.0, top_k=3)
    torch.testing.assert_close(dist, expected / expected.sum())
    # T = 2 flattens the top-p mass too: sqrt-probs 0.707,0.447,0.387,0.316,0.224 of 2.081 -> 0.340, 0.215, ...
    # the top two hold 0.555 < 0.6, the top three 0.741: top_p = 0.6 keeps three
    dist = sampling_distribution(PROBS.log(), temperature=2.0, top_p=0.6)
    torch.testing.assert_close(dist, expected / expected.sum())


def test_filters_on_a_batch_and_bad_arguments():
    logits = torch.stack([PROBS.log(), PROBS.flip(0).log()])  # (2, V)
    filtered = top_k_filter(logits, 1)
    assert torch.isfinite(filtered).sum(dim=-1).tolist() == [1, 1]
    assert filtered[0].argmax() == 1 and filtered[1].argmax() == 3
    for bad in ({"temperature": 0.0}, {"top_k": 0}, {"top_p": 0.0}, {"top_p": 1.5}):
        with pytest.raises(ValueError):
            sampling_distribution(PROBS.log(), **bad)


class FixedLM(torch.nn.Module):
    """A decoder-only "model" whose next-token logits are always the same: what sampling draws is testable."""

    kind, pad_id, bos_id, eos_id = "lm", PAD_ID, 1, 2

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(logits, requires_grad=False)

    def encode(self, src):
        return None

    def init_state(self, encoded, batch_size):
        return torch.zeros(batch_size)

    def decode_step(self, tokens, encoded, state):
        return self.logits.expand(tokens.size(0), tokens.size(1), -1), state + tokens.size(1)

    def reorder(self, encoded, state, index, *, same_rows=False):
        return encoded, state.index_select(0, index)


def test_sampling_draws_from_the_filtered_distribution():
    probs = torch.tensor([0.0, 0.0, 0.0, 0.05, 0.5, 0.1, 0.2, 0.15])  # no PAD/BOS/EOS: never stops early
    model = FixedLM(torch.where(probs > 0, probs.log(), torch.full_like(probs, -1e9)))
    n = 4000
    out = sample(model, None, max_len=1, prompt=[[1]] * n, top_p=0.75, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(torch.tensor([t[0] for t in out.tokens]), minlength=8).float() / n
    expected = torch.tensor([0, 0, 0, 0, 0.5, 0, 0.2, 0.15]) / 0.85
    torch.testing.assert_close(counts, expected, atol=0.03, rtol=0)  # ~4 standard deviations
    assert out.scores[0] == pytest.approx(math.log(probs[out.tokens[0][0]]), abs=1e-5)  # unfiltered model score


def test_sampling_is_reproducible_with_a_generator():
    model = peaky_model("gru", "additive", False, False, seed=0, eos_bias=-1.0)
    with torch.no_grad():
        model.decoder.out_proj.weight.div_(4.0)  # flat enough for draws to differ
    one = sample(model, SRC, max_len=6, generator=torch.Generator().manual_seed(7))
    two = sample(model, SRC, max_len=6, generator=torch.Generator().manual_seed(7))
    other = sample(model, SRC, max_len=6, generator=torch.Generator().manual_seed(8))
    assert one.tokens == two.tokens and one.tokens != other.tokens
    assert one.scores == pytest.approx(sequence_log_probs(model, SRC, one.tokens, add_eos=one.finished), abs=1e-4)
