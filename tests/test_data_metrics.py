"""Metrics against hand-worked values and the reference libraries called directly."""

from __future__ import annotations

import math

import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from qkv.data import metrics

HYPS = ["a man rides a horse on the beach", "two dogs play in the snow", "a red car"]
REFS = ["a man is riding a horse on the beach", "two dogs are playing in the snow", "the red car is parked"]


def test_bleu_and_chrf_equal_sacrebleu_with_signature():
    b = metrics.bleu(HYPS, [[r] for r in REFS])
    assert b.value == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)
    assert b.signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    c = metrics.chrf(HYPS, [[r] for r in REFS])
    assert c.value == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score)
    assert metrics.bleu(REFS, [[r] for r in REFS]).value == pytest.approx(100.0)


def test_moses_tokenizer_gives_wu_et_al_s_tokenized_test_set():
    # raw Multi30k test2016 German lines and the same lines in Wu et al. 2021's tokenized test set
    # (github.com/LividWo/Revisit-MMT, data/multi30k-en-de/test.2016.de, BPE joints removed)
    tokenize = metrics.moses_tokenizer("de")
    raw = 'Eine Frau auf einem Boot namens "El Corazon" lässt schwarze Gewichte ins Wasser fallen.'
    wu = "eine frau auf einem boot namens &quot; el corazon &quot; lässt schwarze gewichte ins wasser fallen ."
    assert tokenize(raw) == wu
    assert tokenize("Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.") == (
        "ein mann mit einem orangefarbenen hut , der etwas anstarrt ."
    )
    assert metrics.moses_tokenizer("de", lowercase=False)("Ein Hut.") == "Ein Hut ."


def test_moses_bleu_hand_worked_and_against_sacrebleu_on_tokens():
    # "ein hund läuft schnell" against "ein hund läuft schnell .": every n-gram precision is 1 (4/4, 3/3, 2/2,
    # 1/1), brevity penalty exp(1 - 5/4)
    got = metrics.moses_bleu(["Ein Hund läuft schnell"], [["Ein Hund läuft schnell."]], "de")
    assert got.value == pytest.approx(100 * math.exp(-0.25))
    assert "case:lc|eff:no|tok:none|smooth:none" in got.signature and got.signature.endswith("|moses:de|escape:yes")
    # tokens by hand: the quotes become &apos; tokens (13a keeps them on the word), the colon and the comma
    # split off; no smoothing, so a corpus with no matching 4-gram scores 0 (sacreBLEU's default would not)
    hyps = ["Er sagt: 'Hallo, Welt'.", "Zwei Hunde spielen im Schnee."]
    refs = ["Er sagte: 'Hallo, Welt'.", "Zwei Hunde spielen draußen im Schnee."]
    hand_hyps = ["er sagt : &apos; hallo , welt &apos; .", "zwei hunde spielen im schnee ."]
    hand_refs = ["er sagte : &apos; hallo , welt &apos; .", "zwei hunde spielen draußen im schnee ."]
    want = sacrebleu.corpus_bleu(hand_hyps, [hand_refs], tokenize="none", smooth_method="none", force=True).score
    assert metrics.moses_bleu(hyps, [[r] for r in refs], "de").value == pytest.approx(want)
    assert want != pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], lowercase=True).score)  # not 13a's number
    assert metrics.moses_bleu(["ein hund"], [["ein hund läuft"]], "de").value == 0.0


def test_bleu_with_uneven_reference_counts():
    alt = "a man rides a horse on a beach"
    got = metrics.bleu(HYPS, [[REFS[0], alt], [REFS[1]], [REFS[2]]]).value
    # the single-reference examples repeat their reference in the second stream
    want = sacrebleu.corpus_bleu(HYPS, [REFS, [alt, REFS[1], REFS[2]]]).score
    assert got == pytest.approx(want)


def test_rouge_hand_worked_and_against_rouge_score():
    # hyp "the cat", ref "the cat sat": ROUGE-1 P=1, R=2/3 -> F=0.8; bigrams 1 of 1 vs 1 of 2 -> F=2/3
    r = metrics.rouge(["the cat"], [["the cat sat"]])
    assert r["rouge1"] == pytest.approx(80.0) and r["rouge2"] == pytest.approx(200 / 3)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    want = 100 * sum(scorer.score(ref, hyp)["rougeL"].fmeasure for hyp, ref in zip(HYPS, REFS, strict=True)) / 3
    assert metrics.rouge(HYPS, [[r] for r in REFS])["rougeL"] == pytest.approx(want)
    best = metrics.rouge(["the cat"], [["a dog", "the cat sat"]], prefix="ann_")
    assert best["ann_rouge1"] == pytest.approx(80.0)


def test_edit_distance_and_error_rates_hand_worked():
    assert metrics.edit_distance(list("kitten"), list("sitting")) == 3
    assert metrics.edit_distance([], ["a", "b"]) == 2
    hyps = ["HH AH L OW", "T AH M EY T OW", "K AE T"]
    refs = [["HH EH L OW", "HH AH L OW"], ["T AH M AA T OW"], ["D AO G"]]
    # word 1 matches its 2nd variant (0 edits / 4); word 2: 1 substitution / 6; word 3: 3 edits / 3
    r = metrics.error_rates(hyps, refs)
    assert r["per"] == pytest.approx(100 * 4 / 13)
    assert r["wer"] == pytest.approx(100 * 2 / 3)


def _levenshtein_by_dynamic_programme(a: list[str], b: list[str]) -> int:
    """The plain O(|a| |b|) recurrence (the hand-written edit_distance qkv used before rapidfuzz)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from(["AH", "B", "K", "T", "EY1", "<unk>"]), max_size=12),
    st.lists(st.sampled_from(["AH", "B", "K", "T", "EY1", "<unk>"]), max_size=12),
)
def test_edit_distance_equals_the_dynamic_programme(a, b):
    assert metrics.edit_distance(a, b) == _levenshtein_by_dynamic_programme(a, b)


def test_accuracy_hand_worked():
    r = metrics.accuracy(["1 2 3", "4 5", "7"], ["1 2 3", "4 6 6", "7"])
    assert r["exact_match"] == pytest.approx(200 / 3)
    assert r["token_accuracy"] == pytest.approx(100 * (3 + 1 + 1) / (3 + 3 + 1))


def test_lm_scores():
    r = metrics.lm_scores(10 * math.log(2), 10, num_chars=5)
    assert r["ppl"] == pytest.approx(2.0) and r["bits_per_token"] == pytest.approx(1.0)
    assert r["bpc"] == pytest.approx(2.0) and r["loss"] == pytest.approx(math.log(2))


def test_collect_adds_tokenized_bleu_for_multi30k_only():
    """A Multi30k run's result gets ``bleu_moses_lowercase`` (equal to :func:`moses_bleu`) beside lowercased
    sacreBLEU; a run on the user's own files (no known target language) gets only the latter."""
    from qkv.data.tasks import Example
    from qkv.results.collect import _translation_extras

    examples = [Example("src", r) for r in ["Er sagte: 'Hallo, Welt'.", "Zwei Hunde spielen draußen im Schnee."]]
    hyps = ["Er sagt: 'Hallo, Welt'.", "Zwei Hunde spielen im Schnee."]
    scores, signatures = _translation_extras(hyps, examples, "de")
    assert scores["bleu_lowercase"] == pytest.approx(
        sacrebleu.corpus_bleu(hyps, [[e.tgt for e in examples]], lowercase=True).score
    )
    assert scores["bleu_moses_lowercase"] == metrics.moses_bleu(hyps, [e.references for e in examples], "de").value
    assert scores["bleu_moses_lowercase"] != pytest.approx(scores["bleu_lowercase"])
    assert "moses:de" in signatures["bleu_moses_lowercase"]
    assert set(_translation_extras(hyps, examples, None)[0]) == {"bleu_lowercase"}
    # which tasks get it: Multi30k names its target language; the user's own files do not
    from qkv.data.translation import TranslationTask

    assert TranslationTask(src_lang="en", tgt_lang="de").multi30k
    assert not TranslationTask(files={"train": ["a.src", "a.tgt"]}).multi30k
    assert not TranslationTask(src_file="a.src", tgt_file="a.tgt").multi30k
