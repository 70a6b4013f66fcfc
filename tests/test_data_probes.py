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
    with pytest.raises(UserError, match="echo_keys are options of assoc-recall only"):
        get_task("copy", echo_keys=True)
    with pytest.raises(UserError, match="distance is not an option"):
        get_task("sort", distance=3)
    with pytest.raises(UserError, match="num_keys >= 20"):
        get_task("assoc-recall", length=42, num_keys=10)


def solve_recall(tokens: list[str]) -> tuple[list[str], list[int]]:
    """Independent solver of multi-query recall: (answers, token distance of each query to its key)."""
    end = tokens.index("?")
    where = {tok: i for i, tok in enumerate(tokens[:end]) if tok.startswith("k")}
    queries = tokens[end + 1 :]
    answers = [tokens[where[q] + 1] for q in queries]
    return answers, [end + 1 + j - where[q] for j, q in enumerate(queries)]


def test_assoc_recall_pairs_among_filler_and_multi_query():
    task = get_task("assoc-recall", length=68, num_pairs=8, num_queries=3, num_examples=300, num_eval_examples=50)
    assert task.slots == 32 and "_" in task.symbols()  # 32 two-token slots, "?", three query keys
    seen = set()
    for e in task.examples("train") + task.examples("test"):
        toks = e.src.split()
        assert len(toks) == 68 and toks[-4] == "?"
        context = toks[:-4]
        assert sum(t.startswith("k") for t in context) == 8 and context.count("_") == 64 - 16
        for i in range(0, 64, 2):  # a pair fills a whole slot, or the slot is filler
            assert (context[i].startswith("k") and context[i + 1].startswith("v")) or context[i : i + 2] == ["_"] * 2
        assert len(set(toks[-3:])) == 3  # three distinct keys asked
        answers, distances = solve_recall(toks)
        assert e.tgt.split() == answers and e.meta["token_distances"] == distances
        seen.update(distances)
    assert min(seen) <= 6 and max(seen) >= 60  # the distance spans the context, the load stays 8 pairs


def test_assoc_recall_echoed_keys_put_each_value_after_its_key():
    plain = get_task("assoc-recall", length=40, num_pairs=6, num_queries=3, num_examples=50)
    echoed = get_task("assoc-recall", length=40, num_pairs=6, num_queries=3, num_examples=50, echo_keys=True)
    for p, e in zip(plain.examples("train"), echoed.examples("train"), strict=True):
        toks = e.src.split()
        assert toks == p.src.split()  # the same questions; only the answer's form changes
        answers, _ = solve_recall(toks)
        asked = toks[toks.index("?") + 1 :]
        assert e.tgt.split() == [tok for pair in zip(asked, answers, strict=True) for tok in pair]
        assert e.meta == p.meta
    single = get_task("assoc-recall", length=12, echo_keys=True, num_examples=20)
    for e in single.examples("test"):
        toks = e.src.split()
        assert e.tgt.split() == [toks[-1], solve_recall(toks)[0][0]]


def test_assoc_recall_mixed_training_lengths():
    task = get_task("assoc-recall", length=69, num_pairs=8, min_train_length=18, num_examples=400)
    lengths = [len(e.src.split()) for e in task.examples("train")]
    assert min(lengths) == 18 and max(lengths) == 68 and 30 < statistics.mean(lengths) < 56  # uniform slots 8..33
    for e in task.examples("train"):
        answers, distances = solve_recall(e.src.split())
        assert e.tgt.split() == answers and e.meta["token_distances"] == distances
    assert {len(e.src.split()) for e in task.examples("test")} == {68}  # evaluation at the full length


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"length": 20, "num_pairs": 10}, r"num_pairs must be 1\.\.9"),
        ({"length": 20, "num_pairs": 4, "num_queries": 5}, r"num_queries must be 1\.\.4"),
        ({"length": 20, "num_pairs": 4, "distance": 2}, "distance is for the single-query task"),
        ({"length": 20, "echo_keys": True, "distance": 2}, "distance is for the single-query task"),
        ({"length": 20, "num_pairs": 4, "min_train_length": 8}, r"min_train_length must be 10\.\.20"),
        ({"length": 20, "min_train_length": 12}, "min_train_length needs num_pairs"),
    ],
)
def test_bad_recall_options(options, message):
    with pytest.raises(UserError, match=message):
        get_task("assoc-recall", **options)
    with pytest.raises(UserError, match="options of assoc-recall only"):
        get_task("copy", num_pairs=3)
