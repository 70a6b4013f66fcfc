"""Two reference results on the same test set, compared example by example: a paired bootstrap test.

Two rows of ``docs/results.md`` whose 95% intervals overlap may still differ reliably: the intervals
treat the two systems as independent, while both were scored on the *same* examples. The paired bootstrap
(Koehn 2004, "Statistical Significance Tests for Machine Translation Evaluation";
:func:`qkv.compare.significance.paired_test`) resamples those examples once for both systems and asks how
often a difference as large as the observed one arises by chance.

It needs nothing but the two evidence folders and the dataset: each folder's ``hypotheses.jsonl``
(written by :mod:`qkv.results.collect`) holds every output of its headline decoding, and its
``config.yaml`` names the task whose references score them. An extractive baseline's folder keeps no
outputs (they are the dataset's own sentences): they are extracted again by the ``qkv baseline`` command
its record names. Before testing, each folder's outputs are re-scored and must reproduce the score its
``result.json`` records, so outputs and record provably belong together.
"""

from __future__ import annotations

import argparse
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from qkv.compare.significance import CONFIDENCE
from qkv.errors import UserError

if TYPE_CHECKING:
    from qkv.compare.significance import ExampleStats
    from qkv.data.tasks import Example, Seq2SeqTask

from qkv.results.collect import HYPOTHESES_FILE, RESULT_FILE, ResultRecord, read_hypotheses, read_record

RECORD_TOLERANCE = 1e-6  # re-scored outputs must reproduce result.json's value to this (absolute) precision
# error rates and the language models' losses; every other metric is a score (--metric may name a metric other
# than the task's primary one, so task.higher_is_better cannot decide; `qkv results seeds` asks this too)
LOWER_IS_BETTER = ("wer", "per", "loss", "ppl", "bits_per_token", "bpc")


@dataclass(frozen=True)
class PairedComparison:
    """Row A against row B on ``metric``: both scores, ``delta = A - B`` with its 95% interval and p-value."""

    metric: str
    a: str
    b: str
    score_a: float
    score_b: float
    delta: float
    low: float
    high: float
    p_value: float
    examples: int
    higher_is_better: bool

    @property
    def better(self) -> str | None:
        """The recipe that is ahead at the 5% level, or None when the difference could be chance."""
        if self.p_value >= 1 - CONFIDENCE or self.delta == 0:
            return None
        a_ahead = (self.delta > 0) == self.higher_is_better
        return self.a if a_ahead else self.b

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "a": self.a,
            "b": self.b,
            "score_a": self.score_a,
            "score_b": self.score_b,
            "delta": self.delta,
            "low": self.low,
            "high": self.high,
            "p_value": self.p_value,
            "examples": self.examples,
            "higher_is_better": self.higher_is_better,
            "better": self.better,
        }

    def summary(self) -> str:
        verdict = f"{self.better} is ahead" if self.better else "no reliable difference"
        return (
            f"{self.metric} {self.a} {self.score_a:.2f} vs {self.b} {self.score_b:.2f}: "
            f"A - B = {self.delta:+.2f} (95% interval {self.low:+.2f} to {self.high:+.2f}), "
            f"p = {self.p_value:.4f} over {self.examples:,} paired examples: {verdict}"
        )


def _open_task(folder: Path) -> Seq2SeqTask:
    from qkv.data.tasks import is_seq2seq
    from qkv.training.config import load_config
    from qkv.training.run import open_task

    config_path = folder / "config.yaml"
    if not config_path.is_file():
        raise UserError(f"{folder}: no config.yaml naming the task (a folder written by `qkv results collect`)")
    task = open_task(load_config(config_path).task)
    if not is_seq2seq(task):
        raise UserError(f"{folder}: task {task.name!r} is scored teacher-forced; a paired test needs decoded outputs")
    return task


def _kept_outputs(folder: Path) -> list[str]:
    if not (folder / HYPOTHESES_FILE).is_file():
        raise UserError(
            f"{folder}: no {HYPOTHESES_FILE}",
            hint="result folders collected before the outputs were kept have none; re-run "
            "`qkv results collect` on the run (its checkpoints are needed once)",
        )
    return read_hypotheses(folder)


class _BaselineParser(argparse.ArgumentParser):
    """`qkv baseline`'s own parser, raising instead of printing its usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def baseline_command(folder: Path, record: ResultRecord) -> argparse.Namespace:
    """The arguments of the `qkv baseline` command an extractive baseline's record names (its dataset is
    ``.task``); a command that cannot be parsed is a UserError naming the folder."""
    from qkv.cli import baseline_cmd

    parser = _BaselineParser(prog="qkv baseline", add_help=False)
    baseline_cmd.add_arguments(parser)
    words = shlex.split(record.command)
    try:
        if words[:2] != ["qkv", "baseline"]:
            raise ValueError("not a `qkv baseline` command")
        args = parser.parse_args(words[2:])
    except ValueError as error:
        raise UserError(
            f"{folder / RESULT_FILE}: an extractive baseline whose command {record.command!r} cannot be run "
            f"again ({error}), so its outputs cannot be extracted again"
        ) from None
    return args


def _baseline_outputs(folder: Path, record: ResultRecord) -> tuple[Seq2SeqTask, list[str]]:
    """An extractive baseline keeps no outputs -- they are the dataset's own sentences, which stay out of the
    repo -- so they are extracted again, by the `qkv baseline` command its record names, from the dataset
    under ``QKV_DATA`` (a ``--data-dir`` in the recorded command named a folder on the machine that ran it)."""
    from qkv.data.baselines import run_baseline
    from qkv.data.summarization import SummarizationTask

    args = baseline_command(folder, record)
    task = SummarizationTask(dataset=args.task)
    _, hyps = run_baseline(task, record.split, args.method, args.n, skip_greeting=not args.keep_greeting)
    return task, hyps


def _row(folder: Path, record: ResultRecord) -> tuple[Seq2SeqTask, list[str]]:
    """The task that scores a folder's outputs, and the outputs."""
    if record.decoding == "extractive":
        return _baseline_outputs(folder, record)
    return _open_task(folder), _kept_outputs(folder)


def _row_stats(
    folder: Path, record: ResultRecord, task: Seq2SeqTask, hyps: list[str], metric: str
) -> tuple[ExampleStats, list[Example]]:
    """Per-example statistics of ``metric`` for the folder's outputs, checked against its recorded score,
    and the examples they score."""
    from qkv.compare.significance import task_example_stats
    from qkv.training.run import split_examples

    examples = split_examples(task, record.split, None)
    if len(hyps) != len(examples):
        raise UserError(
            f"{folder / HYPOTHESES_FILE}: {len(hyps):,} outputs for {len(examples):,} {record.split} examples"
        )
    if metric not in record.metrics:
        raise UserError(f"{folder / RESULT_FILE}: no metric {metric!r} (it has {', '.join(record.metrics)})")
    stats = task_example_stats(task, metric, hyps, examples)
    rescored = stats.score()
    if not math.isclose(rescored, record.metrics[metric], rel_tol=0.0, abs_tol=RECORD_TOLERANCE):
        raise UserError(
            f"{folder}: its outputs score {metric} {rescored:.4f} but {RESULT_FILE} records "
            f"{record.metrics[metric]:.4f}: the two do not belong together"
        )
    return stats, examples


def _same_examples(a: list[Example], b: list[Example], fold_case: bool) -> bool:
    """Whether two rows scored the same examples: the same references, and sources equal or one the start of
    the other (a recipe may cut long sources: summarization's ``max_src_chars`` with ``truncate``). On lowercased
    BLEU both are compared up to case, so a model trained on lowercased text (tokenizer ``lowercase-bpe``, whose
    task lowercases its references) pairs with one trained on cased text."""
    fold = str.lower if fold_case else str
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        src_x, src_y = fold(x.src), fold(y.src)
        if [fold(r) for r in x.references] != [fold(r) for r in y.references]:
            return False
        if not (src_x.startswith(src_y) or src_y.startswith(src_x)):
            return False
    return True


def compare_results(a: str | Path, b: str | Path, metric: str | None = None, seed: int = 12345) -> PairedComparison:
    """Paired bootstrap test of result folder ``a`` against ``b`` (same task and split) on ``metric``
    (default: the task's primary metric)."""
    from qkv.compare.significance import SUPPORTED, paired_test

    folder_a, folder_b = Path(a), Path(b)
    record_a, record_b = read_record(folder_a), read_record(folder_b)
    if (record_a.task, record_a.split) != (record_b.task, record_b.split):
        raise UserError(
            f"{folder_a} is {record_a.task} {record_a.split}, {folder_b} is {record_b.task} {record_b.split}: "
            "a paired test needs the same test examples"
        )
    if metric is not None and metric not in SUPPORTED:
        raise UserError(f"metric {metric!r} has no per-example statistics; choose one of {', '.join(SUPPORTED)}")
    (task_a, hyps_a), (task_b, hyps_b) = _row(folder_a, record_a), _row(folder_b, record_b)
    metric = metric or task_a.primary_metric
    if metric not in SUPPORTED:
        raise UserError(f"metric {metric!r} has no per-example statistics; choose one of {', '.join(SUPPORTED)}")
    stats_a, examples_a = _row_stats(folder_a, record_a, task_a, hyps_a, metric)
    stats_b, examples_b = _row_stats(folder_b, record_b, task_b, hyps_b, metric)
    if not _same_examples(examples_a, examples_b, fold_case=metric == "bleu_lowercase"):
        raise UserError(
            f"{folder_a} and {folder_b} are scored on different {record_a.split} examples (another dataset or "
            "language direction under the same task name): a paired test needs the same ones"
        )
    test = paired_test(stats_a, stats_b, seed=seed)
    return PairedComparison(
        metric=metric,
        a=record_a.recipe,
        b=record_b.recipe,
        score_a=stats_a.score(),
        score_b=stats_b.score(),
        delta=test.delta,
        low=test.low,
        high=test.high,
        p_value=test.p_value,
        examples=len(stats_a.table),
        higher_is_better=metric not in LOWER_IS_BETTER,
    )
