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
