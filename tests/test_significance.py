"""Bootstrap intervals and paired tests (qkv.compare.significance) against independent references:
sacreBLEU's own corpus scores, scipy's bootstrap, the task metrics, and hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu
from scipy import stats as scipy_stats

from qkv.compare.significance import (
    bootstrap_interval,
    example_stats,
    paired_test,
    resample_indices,
)
from qkv.data import metrics

HYPS = [
    "a man is riding a bike",
    "two dogs play in the snow",
    "a woman sings",
    "the child eats an apple",
    "people walk on a street",
    "a cat sleeps on the sofa",
]
REFS = [
    ["a man rides a bicycle"],
    ["two dogs are playing in the snow"],
    ["a woman is singing"],
    ["a child is eating an apple"],
    ["people are walking down the street"],
    ["a cat is sleeping on a couch"],
]


@pytest.mark.parametrize("metric", ["bleu", "chrf"])
def test_sacrebleu_statistics_reproduce_the_corpus_score_and_any_resample(metric):
    stats = example_stats(metric, HYPS, REFS)
    scorer = sacrebleu.corpus_bleu if metric == "bleu" else sacrebleu.corpus_chrf
    assert stats.score() == pytest.approx(scorer(HYPS, [[r[0] for r in REFS]]).score, abs=1e-9)
    index = np.array([0, 0, 3, 5, 5, 2])
    resampled = scorer([HYPS[i] for i in index], [[REFS[i][0] for i in index]]).score
    assert stats.score(index) == pytest.approx(resampled, abs=1e-9)


def test_g2p_statistics_reproduce_wer_and_per_with_several_references():
    hyps = ["K AE T", "D AO G", "B ER D Z", "F IH SH"]
    refs = [["K AE T"], ["D AA G", "D AO G"], ["B ER D"], ["F IH SH", "F IY SH"]]
    expected = metrics.error_rates(hyps, refs)
    assert example_stats("wer", hyps, refs).score() == pytest.approx(expected["wer"])  # 1 of 4 wrong = 25
    assert example_stats("wer", hyps, refs).score() == pytest.approx(25.0)
    assert example_stats("per", hyps, refs).score() == pytest.approx(expected["per"])  # 1 edit / 12 phonemes
    assert example_stats("per", hyps, refs).score() == pytest.approx(100 / 12)


def test_rouge_statistics_are_the_mean_of_rouge_score():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    expected = 100 * np.mean([scorer.score(r[0], h)["rougeL"].fmeasure for h, r in zip(HYPS, REFS, strict=True)])
    assert example_stats("rougeL", HYPS, REFS).score() == pytest.approx(expected)


def test_interval_of_a_mean_agrees_with_scipy_percentile_bootstrap():
    rng = np.random.default_rng(0)
    correct = (rng.random(400) < 0.7).astype(float)  # 400 words, 70% right
    hyps = ["A" if c else "B" for c in correct]
    ours = bootstrap_interval(example_stats("exact_match", hyps, [["A"]] * len(hyps)), n_resamples=4000)
    ref = scipy_stats.bootstrap(
        (100 * correct,), np.mean, n_resamples=4000, method="percentile", random_state=1
    ).confidence_interval
    assert ours.value == pytest.approx(100 * correct.mean())
    assert ours.low == pytest.approx(ref.low, abs=0.8)
    assert ours.high == pytest.approx(ref.high, abs=0.8)
    # and both agree with the normal approximation p +- 1.96 sqrt(p(1-p)/n) (about +-4.5 points here)
    half = 100 * 1.96 * np.sqrt(correct.mean() * (1 - correct.mean()) / len(correct))
    assert (ours.high - ours.low) / 2 == pytest.approx(half, rel=0.1)


def test_paired_test_hand_worked_cases():
    refs = [["X"]] * 50
    same = example_stats("exact_match", ["X"] * 25 + ["Y"] * 25, refs)
    identical = paired_test(same, same)
    assert identical.delta == 0.0 and identical.p_value == 1.0 and not identical.significant()
    better = example_stats("exact_match", ["X"] * 45 + ["Y"] * 5, refs)  # 90% vs 50%, right wherever B is
    result = paired_test(better, same)
    assert result.delta == pytest.approx(40.0)
    assert result.p_value < 0.01 and result.significant()
    assert result.low > 0  # the whole interval of the difference is above zero
    # one example apart out of 50 is not a significant difference
    close = paired_test(example_stats("exact_match", ["X"] * 26 + ["Y"] * 24, refs), same)
    assert close.delta == pytest.approx(2.0) and not close.significant()


def test_paired_test_refuses_different_example_sets():
    a = example_stats("exact_match", ["X"] * 3, [["X"]] * 3)
    b = example_stats("exact_match", ["X"] * 4, [["X"]] * 4)
    with pytest.raises(ValueError, match="same examples"):
        paired_test(a, b)


def test_resampling_is_reproducible_and_uniform():
    a, b = resample_indices(10, 200, seed=3), resample_indices(10, 200, seed=3)
    assert np.array_equal(a, b) and a.shape == (200, 10)
    counts = np.bincount(a.ravel(), minlength=10)
    assert counts.min() > 150 and counts.max() < 250  # 2,000 draws over 10 examples: ~200 each


# ---- several tests at once, and seeds ---------------------------------------------------------------
def test_holm_adjusts_by_hand():
    """Holm 1979, worked by hand: p sorted 0.01, 0.03, 0.04 of m = 3 -> 3 x 0.01 = 0.03, 2 x 0.03 = 0.06,
    1 x 0.04 = 0.04 raised to the 0.06 before it; returned in the input's order."""
    from qkv.compare.significance import holm

    assert holm([0.04, 0.01, 0.03]) == pytest.approx([0.06, 0.03, 0.06])
    assert holm([0.5, 0.9]) == [1.0, 1.0]  # capped at 1
    assert holm([0.02]) == [0.02]  # one test: nothing to adjust
    assert holm([]) == []


def test_seed_test_is_welchs_t_test_worked_by_hand():
    """[1, 2, 3] vs [4, 5, 6]: variances 1 and 1, standard error sqrt(1/3 + 1/3), t = -3 / 0.8165 = -3.674;
    Welch-Satterthwaite degrees of freedom (2/3)^2 / ((1/3)^2 / 2 * 2) = 4; p from Student's t with 4 df."""
    from qkv.compare.significance import seed_test

    result = seed_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    t = -3.0 / np.sqrt(2 / 3)
    assert result.delta == -3.0 and (result.n_a, result.n_b) == (3, 3)
    assert result.p_value == pytest.approx(2 * scipy_stats.t.sf(abs(t), 4), rel=1e-9)
    assert result.significant()  # p = 0.021
    assert not seed_test([1.0, 5.0], [2.0, 4.0]).significant()  # equal means: p = 1
    assert seed_test([2.0, 2.0], [3.0, 3.0]).p_value == 0.0  # no spread at all, different means
    with pytest.raises(ValueError, match="at least two seeds"):
        seed_test([1.0], [2.0, 3.0])


def test_p_text_prints_the_bootstrap_floor_as_a_bound():
    from qkv.compare.significance import p_text

    assert p_text(1 / 1001) == "p ≤ 0.001"  # no resample as extreme as the observed difference
    assert p_text(2 / 1001) == "p = 0.002"
    assert p_text(0.31) == "p = 0.310"
