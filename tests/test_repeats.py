"""Blocking repeated n-grams at decoding time: the bans by hand and against Hugging Face's
``NoRepeatNGramLogitsProcessor``, greedy on a fixed distribution worked by hand, and greedy and beam outputs
of small random models that repeat n-grams without the ban and never with it."""

from __future__ import annotations

import functools
import random

import pytest
import torch

from qkv.decoding import OutputRules, beam_search, greedy
from qkv.decoding.repeats import repeated_ngram_bans
from test_decoding import KIND_IDS, KINDS, SRC, FixedLM, peaky_model


def test_bans_by_hand():
    tokens = [1, 2, 3, 1, 2]
    assert repeated_ngram_bans(tokens, 3) == [3]  # "1 2" was followed by 3: "1 2 3" must not come again
    assert repeated_ngram_bans(tokens, 2) == [3]  # "2" was followed by 3
    assert sorted(set(repeated_ngram_bans(tokens, 1))) == [1, 2, 3]  # unigrams: nothing already said
    assert repeated_ngram_bans(tokens, 6) == []  # no 6-gram yet
    assert repeated_ngram_bans([7, 7], 2) == [7]
    with pytest.raises(ValueError):
        repeated_ngram_bans(tokens, 0)


def test_bans_equal_hugging_face_no_repeat_ngram_processor():
    from transformers.generation.logits_process import NoRepeatNGramLogitsProcessor

    rng = random.Random(0)
    vocab = 5
    for _ in range(300):
        n, length = rng.randint(1, 4), rng.randint(0, 12)
        tokens = [rng.randrange(vocab) for _ in range(length)]
        scores = torch.zeros(1, vocab)
        if length:
            scores = NoRepeatNGramLogitsProcessor(n)(torch.tensor([tokens]), scores)
        expected = {t for t in range(vocab) if scores[0, t] == float("-inf")}
        assert set(repeated_ngram_bans(tokens, n)) == expected, (tokens, n)


def test_greedy_on_a_fixed_distribution_by_hand():
    """The next-token probabilities never change (4: 0.5, 6: 0.2, 7: 0.15, 5: 0.1, 3: 0.05), so plain greedy
    says 4 forever. With bigrams banned: 4, 4 (no bigram yet), then "4 4" is taken so 6; "6 4" is new so 4;
    after 4 both 4 and 6 have followed, so 7; then 4."""
    probs = torch.tensor([0.0, 0.0, 0.0, 0.05, 0.5, 0.1, 0.2, 0.15])
    model = FixedLM(probs.clamp_min(1e-9).log())
    assert greedy(model, None, max_len=6, prompt=[[3]]).tokens == [[4] * 6]
    got = greedy(model, None, max_len=6, prompt=[[3]], rules=OutputRules(no_repeat_ngram=2))
    assert got.tokens == [[4, 4, 6, 4, 7, 4]]
    # scores stay the model's own log-probabilities of what it said (as teacher forcing would score it)
    assert got.scores[0] == pytest.approx(torch.log(probs[[4, 4, 6, 4, 7, 4]]).sum().item(), rel=1e-5)


def _has_repeat(tokens: list[int], n: int) -> bool:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) != len(set(grams))


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_greedy_and_beam_never_repeat_an_ngram_with_the_ban(kind, n):
    repeats_without = 0
    for seed in range(4):
        model = peaky_model(*kind, seed=seed, eos_bias=-3.0)  # long outputs, so repeats are likely
        greedy_search = functools.partial(greedy, model, SRC)
        for search in (greedy_search, functools.partial(beam_search, model, SRC, beam=3)):
            repeats_without += sum(_has_repeat(t, n) for t in search(max_len=12).tokens)
            for tokens in search(max_len=12, rules=OutputRules(no_repeat_ngram=n)).tokens:
                assert not _has_repeat(tokens, n), tokens
    assert repeats_without > 0  # the models do repeat: the ban is what removes it


def test_a_ban_that_never_fires_changes_nothing():
    model = peaky_model(*KINDS[1], seed=1)
    for n in (13, 50):  # longer than any output of max_len 12
        assert (
            greedy(model, SRC, max_len=12, rules=OutputRules(no_repeat_ngram=n)).tokens
            == greedy(model, SRC, max_len=12).tokens
        )
        plain = beam_search(model, SRC, beam=3, max_len=12)
        banned = beam_search(model, SRC, beam=3, max_len=12, rules=OutputRules(no_repeat_ngram=n))
        assert banned.tokens == plain.tokens and banned.scores == pytest.approx(plain.scores)
