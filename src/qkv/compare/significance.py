"""Uncertainty of a test score: bootstrap confidence intervals and paired bootstrap tests.

A corpus metric is computed from per-example *sufficient statistics*: their column sums determine it
(WER = wrong words / words; PER = edits / reference phonemes; BLEU = n-gram matches, totals and lengths;
chrF = character n-gram counts; ROUGE and exact match = mean of a per-example value). Resampling the
test examples with replacement and recomputing the metric from the resampled sums gives

- a **95% confidence interval** (percentile bootstrap; Efron & Tibshirani 1993), and
- a **paired bootstrap test** between two systems scored on the same examples (Koehn 2004, "Statistical
  Significance Tests for Machine Translation Evaluation"; the variant sacreBLEU's ``--paired-bs`` uses:
  the resampled differences, shifted to mean zero, approximate the null distribution; the p-value is the
  share of them at least as large in magnitude as the observed difference).

BLEU and chrF statistics and their aggregation are sacreBLEU's own, so a resample of every example
reproduces ``sacrebleu.corpus_bleu`` exactly.

Both describe *test-set* noise only: which examples happened to be drawn, for one trained model each. Two
more tools keep a report's verdicts honest:

- :func:`holm` adjusts the p-values of every pair a table tests at once (Holm 1979, "A Simple Sequentially
  Rejective Multiple Test Procedure"), so that 6 pairs at alpha 0.05 do not give ~26% false alarms;
- :func:`seed_test` compares the scores of several training seeds per model (Welch's t-test), the
  seed-to-seed variation a single run cannot show.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

N_RESAMPLES = 1000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class ExampleStats:
    """``table (N, K)``: K statistics per test example; ``aggregate(column sums (K,)) -> metric``."""

    metric: str
    table: np.ndarray
    aggregate: Callable[[np.ndarray], float]

    def score(self, index: np.ndarray | None = None) -> float:
        rows = self.table if index is None else self.table[index]
        return float(self.aggregate(rows.sum(axis=0)))


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class PairedTest:
    """System A against system B on the same examples: ``delta = A - B`` and its two-sided p-value."""

    delta: float
    p_value: float
    low: float  # 95% interval of the difference
    high: float

    def significant(self, alpha: float = 1 - CONFIDENCE) -> bool:
        return self.p_value < alpha

    def to_dict(self) -> dict[str, float | bool]:
        return {
            "delta": self.delta,
            "p_value": self.p_value,
            "low": self.low,
            "high": self.high,
            "significant": self.significant(),
        }


@dataclass(frozen=True)
class SeedTest:
    """Scores of A's seeds against B's (independent runs): ``delta = mean(A) - mean(B)``, Welch's p-value."""

    delta: float
    p_value: float
    n_a: int
    n_b: int

    def significant(self, alpha: float = 1 - CONFIDENCE) -> bool:
        return self.p_value < alpha

    def to_dict(self) -> dict[str, float | int | bool]:
        return {
            "delta": self.delta,
            "p_value": self.p_value,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "significant": self.significant(),
        }


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order: sorted ascending, the i-th smallest
    (from 0) of m is multiplied by ``m - i``, kept at least as large as the one before it, capped at 1.
    Rejecting where the adjusted p < alpha keeps the chance of any false verdict below alpha."""
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: p_values[j])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def seed_test(a: Sequence[float], b: Sequence[float]) -> SeedTest:
    """Welch's two-sided t-test (unequal variances) between two models' per-seed scores; needs two seeds
    each. Seeds that agree exactly (no spread on either side) give p = 0 when the means differ, else 1."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"seed test needs at least two seeds per model: got {len(a)} and {len(b)}")
    delta = float(np.mean(a) - np.mean(b))
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return SeedTest(delta, 0.0 if delta != 0 else 1.0, len(a), len(b))
    p_value = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return SeedTest(delta, p_value, len(a), len(b))


def p_text(p_value: float, n_resamples: int = N_RESAMPLES) -> str:
    """``p = 0.023``, or ``p ≤ 0.001`` at a bootstrap's floor (1 / (R + 1): no resample as extreme)."""
    if p_value <= 1 / (n_resamples + 1) + 1e-12:
        return f"p ≤ {1 / (n_resamples + 1):.3f}"
    return f"p = {p_value:.3f}"


def resample_indices(n: int, n_resamples: int = N_RESAMPLES, seed: int = 12345) -> np.ndarray:
    """``(R, N)`` example indices drawn with replacement (fixed seed: a report is reproducible)."""
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def _scores(stats: ExampleStats, indices: np.ndarray) -> np.ndarray:
    sums = stats.table[indices].sum(axis=1)  # (R, N, K) -> (R, K)
    return np.array([stats.aggregate(row) for row in sums])


def bootstrap_interval(stats: ExampleStats, n_resamples: int = N_RESAMPLES, seed: int = 12345) -> Interval:
    """The metric on all examples and its percentile-bootstrap 95% interval."""
    samples = _scores(stats, resample_indices(len(stats.table), n_resamples, seed))
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(stats.score(), float(low), float(high))


def paired_test(a: ExampleStats, b: ExampleStats, n_resamples: int = N_RESAMPLES, seed: int = 12345) -> PairedTest:
    """Paired bootstrap of ``metric(A) - metric(B)`` over the same resampled examples."""
    if a.table.shape[0] != b.table.shape[0]:
        raise ValueError(f"paired test needs the same examples: {a.table.shape[0]} vs {b.table.shape[0]}")
    indices = resample_indices(len(a.table), n_resamples, seed)
    deltas = _scores(a, indices) - _scores(b, indices)  # (R,)
    observed = a.score() - b.score()
    extreme = np.abs(deltas - deltas.mean()) >= abs(observed) - 1e-12
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return PairedTest(observed, float((extreme.sum() + 1) / (n_resamples + 1)), float(low), float(high))


# ---- per-example statistics of each metric ----------------------------------------------------------
def _percent_ratio(sums: np.ndarray) -> float:
    return 100.0 * sums[0] / max(sums[1], 1e-12)


def _ratio_stats(metric: str, numerators: Sequence[float], denominators: Sequence[float]) -> ExampleStats:
    table = np.column_stack([np.asarray(numerators, dtype=np.float64), np.asarray(denominators, dtype=np.float64)])
    return ExampleStats(metric, table, _percent_ratio)


def _sacrebleu_stats(metric: str, hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> ExampleStats:
    from sacrebleu.metrics import BLEU, CHRF

    from qkv.data.metrics import reference_streams

    scorer = {"bleu": BLEU(), "bleu_lowercase": BLEU(lowercase=True), "chrf": CHRF()}[metric]
    table = np.asarray(scorer._extract_corpus_statistics(list(hyps), reference_streams(refs)), dtype=np.float64)
    return ExampleStats(metric, table, lambda sums: scorer._compute_score_from_stats(list(sums)).score)


def example_stats(metric: str, hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> ExampleStats:
    """Per-example statistics of ``metric`` (a name :mod:`qkv.data.metrics` reports) for ``hyps`` vs ``refs``.

    ``refs[i]`` holds every reference of example ``i``, as for the task's own scoring.
    """
    from qkv.data import metrics

    if metric in ("bleu", "bleu_lowercase", "chrf"):  # bleu_lowercase: as `qkv results collect` scores it
        return _sacrebleu_stats(metric, hyps, refs)
    if metric in ("wer", "per"):
        closest = [metrics.closest_reference(h, rs) for h, rs in zip(hyps, refs, strict=True)]  # (edits, length)
        if metric == "wer":
            return _ratio_stats(metric, [e != 0 for e, _ in closest], [1] * len(closest))
        return _ratio_stats(metric, [e for e, _ in closest], [n for _, n in closest])
    if metric in ("rouge1", "rouge2", "rougeL"):
        per_example = [f / 100.0 for f in metrics.rouge_per_example(hyps, refs)[metric]]  # F1 in [0, 1]
        return _ratio_stats(metric, per_example, [1] * len(per_example))
    if metric in ("exact_match", "token_accuracy"):
        pairs = [metrics.token_matches(h, rs[0]) for h, rs in zip(hyps, refs, strict=True)]  # (exact, matched, n)
        if metric == "exact_match":
            return _ratio_stats(metric, [p[0] for p in pairs], [1] * len(pairs))
        return _ratio_stats(metric, [p[1] for p in pairs], [p[2] for p in pairs])
    raise ValueError(f"no bootstrap statistics for metric {metric!r}")


def task_example_stats(task: object, metric: str, hyps: Sequence[str], examples: Sequence) -> ExampleStats:
    """:func:`example_stats` with the references ``task.score`` uses (``task.metric_references`` when it has one)."""
    references = getattr(task, "metric_references", None)
    refs = references(list(examples)) if references else [e.references for e in examples]
    return example_stats(metric, hyps, refs)


SUPPORTED = (
    "bleu",
    "bleu_lowercase",
    "chrf",
    "wer",
    "per",
    "rouge1",
    "rouge2",
    "rougeL",
    "exact_match",
    "token_accuracy",
)
