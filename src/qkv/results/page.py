"""``docs/results.md``, generated from ``results/*/result.json`` (``qkv results page``).

One row per reference run, with the published anchor beside it and a verdict that says plainly where
qkv is behind. A test regenerates the page and checks it equals the committed file, so the table
cannot drift from the evidence.
"""

from __future__ import annotations

from pathlib import Path

from qkv.atomic import atomic_write_text
from qkv.errors import UserError
from qkv.results.anchors import ANCHORS, Anchor, compared_scores
from qkv.results.collect import ResultRecord, load_results
from qkv.results.seeds import SeedRun, find_seed_groups, summarize

HEADER = """# Reference results

Every number here comes from a folder under [`results/`](../results) (the run's resolved config, its
training log, sample outputs and `result.json`), written by `qkv results collect` after the run, and this
page is generated from those folders by `qkv results page` (a test checks it is up to date). Published
numbers are the floor: each row says whether qkv reaches it, and where it does not, by how much.
Intervals are 95% bootstrap intervals over the test examples. The folders of trained translation, G2P and
summarization models collected from 2026-12-07 on also keep every decoded test output (`hypotheses.jsonl`),
so two such rows on the same test set (or one and an extractive baseline) can be tested against each other
example by example: `qkv results paired results/A results/B` (paired bootstrap, Koehn 2004).
"""


def _value(record: ResultRecord, metric: str, anchor: Anchor | None = None) -> str:
    metrics, intervals, _ = compared_scores(record, anchor)
    value = metrics.get(metric)
    if value is None:
        return "–"
    ci = intervals.get(metric)
    return f"{value:.2f}" + (f" [{ci['low']:.2f}, {ci['high']:.2f}]" if ci else "")


def _verdict(record: ResultRecord, anchor: Anchor) -> str:
    metrics, intervals, _ = compared_scores(record, anchor)
    value = metrics.get(anchor.metric)
    if value is None:
        return "not measured"
    gap = value - anchor.value if anchor.higher_is_better else anchor.value - value
    if gap >= 0:
        return f"**reaches it** (+{gap:.2f})"
    ci = intervals.get(anchor.metric)
    if ci and ci["low"] <= anchor.value <= ci["high"]:  # short of it, but not by more than the test set's noise
        return f"**behind** by {-gap:.2f}, inside the 95% interval"
    return f"**behind** by {-gap:.2f}"


def _metrics_text(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in metrics.items() if k != "loss" or len(metrics) <= 4)


SEEDS_HEADER = """## Across seeds

Folders whose resolved configs differ only in `training.seed` (scored on the same split from the same kind
of checkpoint) are one recipe trained under several seeds. A row's 95% interval above covers the test
examples only; another seed moves the score as well, so qkv is only behind a published number when every
seed is, and only past it when every seed is. Each row gives every seed's score, their mean and sample
standard deviation (`qkv results seeds results/A results/B` prints the same for any folders):
"""


def _seed_rows(groups: list[list[SeedRun]]) -> list[str]:
    if not groups:
        return []
    lines = [
        "",
        SEEDS_HEADER,
        "| recipes (seed) | metric, decoding | per seed | mean ± sd | published | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for runs in groups:
        names = ", ".join(f"[{run.record.recipe}](../results/{run.record.recipe}) ({run.seed})" for run in runs)
        try:
            summaries = summarize(runs)
        except UserError as error:  # a seed without the anchor's decoding: said so, the page still generated
            lines.append(f"| {names} | – | – | – | – | not measured: {str(error).splitlines()[0]} |")
            continue
        for summary in summaries:
            published = f"{summary.anchor.value:g}" if summary.anchor else "–"
            lines.append(
                f"| {names} | {summary.metric}, {summary.decoding} | "
                + ", ".join(f"{v:.2f}" for v in summary.values)
                + f" | {summary.mean:.2f} ± {summary.std:.2f} | {published} | {summary.verdict()} |"
            )
    return lines


def render(records: list[ResultRecord], seed_groups: list[list[SeedRun]] | None = None) -> str:
    lines = [
        HEADER,
        "## Against the published numbers",
        "",
        "| recipe | task, split | model | params | metric (ours) | published | verdict | train time | decoding |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        anchors: list[Anchor | None] = [*ANCHORS.get(r.recipe, [])] or [None]
        for anchor in anchors:
            metric = anchor.metric if anchor else next(iter(r.metrics), "")
            published = f"{anchor.value:g} ({anchor.source})" if anchor else "–"
            verdict = _verdict(r, anchor) if anchor else "no published anchor"
            lines.append(
                f"| [{r.recipe}](../results/{r.recipe}) | {r.task}, {r.split} | {r.model} | {r.params:,} | "
                f"{metric} {_value(r, metric, anchor)} | {published} | {verdict} | "
                f"{r.train_seconds / 60:.0f} min, {r.train_steps:,} steps, {r.threads} thread(s) | "
                f"{compared_scores(r, anchor)[2]} |"
            )
    lines += _seed_rows(seed_groups or [])
    lines += ["", "## Every metric, every decoding", ""]
    for r in records:
        lines += [
            f"### {r.recipe}",
            "",
            f"- command: `{r.command}`",
            f"- machine: {r.machine}; commit `{r.commit[:12]}`"
            + (f"; scored from the {r.checkpoint} checkpoint" if r.checkpoint else ""),
            f"- {r.decoding}"
            + (f" on {r.examples:,} {r.split} examples" if r.examples else f" ({r.split})")
            + f": {_metrics_text(r.metrics)}",
        ]
        lines += [f"- {name}: {_metrics_text(metrics)}" for name, metrics in r.other_decodings.items()]
        lines += [f"- signature {k}: `{v}`" for k, v in r.signatures.items()]
        if r.notes:
            lines += [f"- note: {r.notes}"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_page(results_dir: str | Path, out: str | Path) -> str:
    text = render(load_results(results_dir), find_seed_groups(results_dir))
    atomic_write_text(Path(out), text)
    return text
