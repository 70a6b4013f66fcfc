"""A minimum output length at decoding time (``OutputRules(min_len=m)``; fairseq's ``--min-len``, Hugging
Face's ``min_new_tokens``): the ban against Hugging Face's ``MinNewTokensLengthLogitsProcessor``, greedy and
beam on a fixed distribution worked by hand, outputs of small random models that end early without the rule
and never with it, and the flags of `qkv evaluate` / `qkv results collect`."""

from __future__ import annotations

import functools
import json
import math
import random
from pathlib import Path

import pytest
import torch

from qkv.cli import main
from qkv.decoding import OutputRules, beam_search, greedy, sample
from qkv.results import load_results
from test_decoding import KIND_IDS, KINDS, SRC, FixedLM, peaky_model

EOS = FixedLM.eos_id


def test_rules_check_their_values_and_name_themselves():
    assert not OutputRules().active and OutputRules().label == ""
    assert OutputRules(min_len=5).label == "-min5"
    assert OutputRules(no_repeat_ngram=3, min_len=5).label == "-norepeat3-min5"
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="min_len"):
            OutputRules(min_len=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no_repeat_ngram"):
        OutputRules(no_repeat_ngram=-2)


def test_ban_equals_hugging_face_min_new_tokens_processor():
    from transformers.generation.logits_process import MinNewTokensLengthLogitsProcessor

    rng = random.Random(0)
    vocab, eos = 6, 2
    for _ in range(200):
        prompt_len, generated, min_len = rng.randint(1, 4), rng.randint(0, 8), rng.randint(0, 8)
        ids = torch.tensor([[rng.randrange(vocab) for _ in range(prompt_len + generated)]])
        expected = MinNewTokensLengthLogitsProcessor(prompt_len, min_len, eos)(ids, torch.zeros(1, vocab))
        got = torch.zeros(1, vocab)
        OutputRules(min_len=min_len).apply(got, [ids[0, prompt_len:].tolist()], eos)
        assert torch.equal(got, expected), (prompt_len, generated, min_len)


def _eos_first_lm() -> tuple[FixedLM, torch.Tensor]:
    """Next-token probabilities that never change: EOS 0.5, token 4 0.3, token 5 0.2."""
    probs = torch.tensor([0.0, 0.0, 0.5, 0.0, 0.3, 0.2])
    return FixedLM(torch.where(probs > 0, probs.log(), torch.full_like(probs, -1e9))), probs


def test_greedy_and_beam_on_a_fixed_distribution_by_hand():
    """Unconstrained, both stop at once (EOS is the most probable token). With ``min_len = 3`` EOS is banned
    for three steps, so the best output is "4 4 4" then EOS, scored log 0.3 * 3 + log 0.5 under the model."""
    model, probs = _eos_first_lm()
    expected_score = 3 * math.log(0.3) + math.log(0.5)
    assert greedy(model, None, max_len=10, prompt=[[3]]).tokens == [[]]
    got = greedy(model, None, max_len=10, prompt=[[3]], rules=OutputRules(min_len=3))
    assert got.tokens == [[4, 4, 4]] and got.finished == [True]
    assert got.scores[0] == pytest.approx(expected_score, abs=1e-5)
    searched = beam_search(model, None, beam=3, max_len=10, prompt=[[3]], rules=OutputRules(min_len=3))
    assert searched.tokens == [[4, 4, 4]] and searched.finished == [True]
    assert searched.scores[0] == pytest.approx(expected_score, abs=1e-5)
    # the rule never asks for more than max_len: the output is cut there, unfinished
    cut = greedy(model, None, max_len=2, prompt=[[3]], rules=OutputRules(min_len=3))
    assert cut.tokens == [[4, 4]] and cut.finished == [False]


def test_sampling_never_draws_eos_before_the_minimum():
    model, _ = _eos_first_lm()
    generator = torch.Generator().manual_seed(0)
    out = sample(model, None, max_len=20, prompt=[[3]] * 200, generator=generator, rules=OutputRules(min_len=4))
    assert min(len(t) for t in out.tokens) >= 4 and all(out.finished)
    plain = sample(model, None, max_len=20, prompt=[[3]] * 200, generator=torch.Generator().manual_seed(0))
    assert min(len(t) for t in plain.tokens) < 4  # half the draws end at once without the rule


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_greedy_and_beam_outputs_reach_the_minimum(kind):
    short_without = 0
    for seed in range(4):
        model = peaky_model(*kind, seed=seed, eos_bias=3.0)  # EOS likely: short outputs
        for search in (functools.partial(greedy, model, SRC), functools.partial(beam_search, model, SRC, beam=3)):
            short_without += sum(len(t) < 5 for t in search(max_len=12).tokens)
            constrained = search(max_len=12, rules=OutputRules(min_len=5))
            assert all(len(t) >= 5 for t in constrained.tokens), constrained.tokens
    assert short_without > 0  # the models do stop early: the rule is what prevents it


def test_a_minimum_that_never_binds_changes_nothing():
    model = peaky_model(*KINDS[1], seed=1, eos_bias=3.0)
    plain_greedy, plain_beam = greedy(model, SRC, max_len=12), beam_search(model, SRC, beam=3, max_len=12)
    shortest = min(len(t) for t in plain_greedy.tokens + plain_beam.tokens)
    rules = OutputRules(min_len=shortest)
    assert greedy(model, SRC, max_len=12, rules=rules).tokens == plain_greedy.tokens
    constrained = beam_search(model, SRC, beam=3, max_len=12, rules=rules)
    assert constrained.tokens == plain_beam.tokens and constrained.scores == pytest.approx(plain_beam.scores)


def test_evaluate_and_collect_name_the_rules(tmp_path: Path, capsys: pytest.CaptureFixture):
    """`qkv evaluate --min-len 4 --no-repeat-ngram 2` and `qkv results collect` with the same flags score
    the same decoding; collect heads with it and keeps the plain one; bad values exit 2 naming the flag."""
    from test_cli_train import SEQ2SEQ

    recipe, run = tmp_path / "reverse.yaml", tmp_path / "run"
    recipe.write_text(SEQ2SEQ)
    assert main(["train", str(recipe), "--out", str(run), "--no-progress"]) == 0
    rules = ["--min-len", "4", "--no-repeat-ngram", "2"]
    assert main(["evaluate", str(run), "--split", "test", *rules]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["min_len"] == 4 and evaluated["no_repeat_ngram"] == 2
    assert (run / "eval" / "test-best-beam1-norepeat2-min4.hyp.txt").is_file()
    out = tmp_path / "results"
    args = ["--command", "qkv train reverse.yaml", "--threads", "1", "--beams", "1", *rules, "--out", str(out)]
    assert main(["results", "collect", str(run), "--recipe", "reverse-tiny", *args]) == 0
    record = load_results(out)[0]
    assert record.decoding == "greedy-norepeat2-min4" and set(record.other_decodings) == {"greedy"}
    assert record.metrics["exact_match"] == pytest.approx(evaluated["exact_match"])
    assert main(["evaluate", str(run), "--min-len", "-1"]) == 2
    assert "--min-len must be an integer >= 0" in capsys.readouterr().err
