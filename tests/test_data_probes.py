"""Probes: each answer checked by an independent solver; lengths, distances and seeds as promised."""

from __future__ import annotations

import statistics

import pytest

from qkv.data import get_task
from qkv.errors import UserError


def solve_listops(tokens: list[str]) -> int:
    """Independent evaluator: a stack machine over the token list."""
    ops = {"[MAX": max, "[MIN": min, "[MED": statistics.median_low, "[SM": lambda xs: sum(xs) % 10}
    stack: list = []
    for tok in tokens:
        if tok in ops:
            stack.append([tok])
        elif tok == "]":
            op, *args = stack.pop()
            value = ops[op](args)
            if not stack:
                return value
            stack[-1].append(value)
        else:
            stack[-1].append(int(tok))
    raise AssertionError("unbalanced expression")


def test_copy_reverse_sort_answers_and_lengths():
    for name, solve in (("copy", lambda s: s), ("reverse", lambda s: s[::-1]), ("sort", lambda s: sorted(s, key=int))):
        task = get_task(name, length=17, num_examples=50, num_eval_examples=10)
        for e in task.examples("train"):
            src = e.src.split()
            assert len(src) == 17 and e.tgt.split() == solve(src)
    delayed = get_task("copy", length=20, distance=8, num_examples=5).examples("train")[0]
    assert delayed.src.split()[-8:] == ["_"] * 8 and delayed.src.split()[:12] == delayed.tgt.split()


def test_assoc_recall_answer_and_controlled_distance():
    task = get_task("assoc-recall", length=42, num_examples=200)
    for e in task.examples("train"):
        toks = e.src.split()
        assert len(toks) == 42 and toks[-2] == "?"
        pairs = dict(zip(toks[0:-2:2], toks[1:-2:2], strict=True))
        assert len(pairs) == 20  # distinct keys
        assert e.tgt == pairs[toks[-1]]
        assert toks.index(toks[-1]) == len(toks) - 1 - e.meta["token_distance"]
    for d in (1, 7, 20):
        for e in get_task("assoc-recall", length=42, distance=d, num_examples=30).examples("test"):
            toks = e.src.split()
            assert len(toks) - 1 - toks.index(toks[-1]) == 2 * d + 1 and e.meta["distance"] == d
    with pytest.raises(UserError, match=r"distance must be 1\.\.20"):
        get_task("assoc-recall", length=42, distance=21)


def test_selective_copy_and_listops():
    for e in get_task("selective-copy", length=30, num_tokens=5, num_examples=50).examples("train"):
        toks = e.src.split()
        assert len(toks) == 30 and [t for t in toks if t != "."] == e.tgt.split()
    lengths = []
    for e in get_task("listops", length=100, num_examples=200).examples("train"):
        toks = e.src.split()
        lengths.append(len(toks))
        assert len(toks) <= 100 and int(e.tgt) == solve_listops(toks)
    assert statistics.mean(lengths) > 50  # the length option controls the size


def test_seeded_determinism_splits_and_tokenizer():
    a = get_task("reverse", length=10, seed=3).examples("train")
    b = get_task("reverse", length=10, seed=3).examples("train")
    c = get_task("reverse", length=10, seed=4).examples("train")
    assert a == b and a != c
    task = get_task("assoc-recall", length=12)
    assert task.examples("train")[:5] != task.examples("test")[:5]
    src_tok, tgt_tok = task.build_tokenizers(task.examples("train"))
    for e in task.examples("test"):
        assert 3 not in src_tok.encode(e.src) and src_tok.decode(src_tok.encode(e.src)) == e.src
    exs = task.examples("test")[:4]
    hyps = [exs[0].tgt, "v99", exs[2].tgt, "x"]
    assert task.score(hyps, exs)["exact_match"] == pytest.approx(50.0)
    by = task.score_by("distance", [e.tgt for e in exs], exs)
    assert all(v["exact_match"] == 100.0 for v in by.values())


def test_bad_probe_options():
    with pytest.raises(UserError, match="distance is not an option"):
        get_task("sort", distance=3)
    with pytest.raises(UserError, match="num_keys >= 20"):
        get_task("assoc-recall", length=42, num_keys=10)
