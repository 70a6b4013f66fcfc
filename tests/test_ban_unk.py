"""Never outputting ``<unk>`` (``OutputRules(ban_unk=True)``, ``--no-unk``; OpenNMT's ``-ban_unk_token``):
greedy, beam and sampling on a fixed distribution worked by hand, the label, and the CLI flag."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from qkv.cli import main
from qkv.decoding import OutputRules, beam_search, greedy, sample
from qkv.special import UNK_ID
from test_decoding import FixedLM

PROBS = torch.tensor([0.0, 0.0, 0.2, 0.0, 0.3, 0.0])  # EOS 0.2, token 4 0.3; <unk> (id 3) below
PROBS[UNK_ID] = 0.5  # the most likely token: a word the model could not name


def _unk_first_lm() -> FixedLM:
    return FixedLM(torch.where(PROBS > 0, PROBS.log(), torch.full_like(PROBS, -1e9)))


def test_the_rule_names_itself_and_checks_its_value():
    assert OutputRules(ban_unk=True).active and OutputRules(ban_unk=True).label == "-nounk"
    assert OutputRules(no_repeat_ngram=3, min_len=2, ban_unk=True).label == "-norepeat3-min2-nounk"
    with pytest.raises(ValueError, match="ban_unk must be true or false"):
        OutputRules(ban_unk=1)  # type: ignore[arg-type]


def test_greedy_by_hand():
    """Unconstrained, greedy writes ``<unk>`` at every step (probability 0.5). Banned, the best step is token 4
    (0.3) over EOS (0.2) every time, so greedy runs to ``max_len`` on 4s, scored by the model's own
    log-probabilities."""
    model = _unk_first_lm()
    assert greedy(model, None, max_len=3, prompt=[[4]]).tokens == [[UNK_ID] * 3]
    got = greedy(model, None, max_len=3, prompt=[[4]], rules=OutputRules(ban_unk=True))
    assert got.tokens == [[4, 4, 4]] and got.scores[0] == pytest.approx(3 * math.log(0.3), abs=1e-5)


def test_beam_search_by_hand():
    """``<unk>`` 0.6, token 4 0.35, EOS 0.05, two steps at most: the best two-token output is ``<unk> <unk>``
    (log 0.36) without the rule and ``4 4`` (log 0.1225) with it; ending at once scores only log 0.05."""
    probs = torch.tensor([0.0, 0.0, 0.05, 0.6, 0.35, 0.0])
    model = FixedLM(torch.where(probs > 0, probs.log(), torch.full_like(probs, -1e9)))
    plain = beam_search(model, None, beam=3, max_len=2, prompt=[[4]], length_penalty=0.0)
    assert plain.tokens == [[UNK_ID, UNK_ID]]
    banned = beam_search(model, None, beam=3, max_len=2, prompt=[[4]], length_penalty=0.0,
                         rules=OutputRules(ban_unk=True))  # fmt: skip
    assert banned.tokens == [[4, 4]] and banned.scores[0] == pytest.approx(2 * math.log(0.35), abs=1e-5)


def test_sampling_never_draws_unk():
    model = _unk_first_lm()
    out = sample(model, None, max_len=6, prompt=[[4]] * 300, generator=torch.Generator().manual_seed(0),
                 rules=OutputRules(ban_unk=True))  # fmt: skip
    assert all(UNK_ID not in tokens for tokens in out.tokens)
    plain = sample(model, None, max_len=6, prompt=[[4]] * 300, generator=torch.Generator().manual_seed(0))
    assert sum(UNK_ID in tokens for tokens in plain.tokens) > 100  # half the draws are <unk> without it


def test_evaluate_takes_the_flag_and_records_it(tmp_path: Path, capsys: pytest.CaptureFixture):
    from test_cli_train import SEQ2SEQ

    recipe, run = tmp_path / "reverse.yaml", tmp_path / "run"
    recipe.write_text(SEQ2SEQ)
    assert main(["train", str(recipe), "--out", str(run), "--no-progress"]) == 0
    assert main(["evaluate", str(run), "--split", "test", "--no-unk"]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["ban_unk"] is True
    hyps = (run / "eval" / "test-best-beam1-nounk.hyp.txt").read_text(encoding="utf-8")
    assert "<unk>" not in hyps
