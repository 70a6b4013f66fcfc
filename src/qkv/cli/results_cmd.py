"""`qkv results collect RUN --recipe NAME`, `qkv results paired A B`, `qkv results seeds A B ...` and
`qkv results page`: reference results as evidence.

``collect`` scores a finished run on its test split (greedy and beam 5 for seq2seq) and writes
``results/<recipe>/`` (config, training log, samples, every output, ``result.json``); ``paired`` tests two
such folders against each other on the same examples; ``seeds`` summarises one recipe trained under several
seeds (mean, spread, where the published number lies); ``page`` regenerates ``docs/results.md`` from every
``results/*/result.json``. See :mod:`qkv.results`.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from qkv.cli.rules_args import add_rule_arguments, rules_from_args

HELP = (
    "write a run's reference result into results/<recipe>/, test two results against each other, "
    "summarise one recipe across seeds, or regenerate docs/results.md from results/"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    collect = sub.add_parser("collect", help="score a finished run and write results/<recipe>/")
    collect.add_argument("run", help="run directory written by `qkv train`")
    collect.add_argument("--recipe", required=True, help="recipe name (configs/<recipe>.yaml)")
    collect.add_argument("--command", required=True, help="the exact command that trained the run")
    collect.add_argument("--threads", type=int, required=True, help="torch threads the run trained with")
    collect.add_argument("--split", default="test")
    collect.add_argument("--beams", default="1,5", help="comma-separated beam sizes (first = headline)")
    collect.add_argument("--checkpoint", default="best", help="best (default), last, averaged")
    add_rule_arguments(
        collect, "; with a rule, every beam size is also decoded under it, the first so decoded is the headline"
    )
    collect.add_argument("--notes", default="", help="one line saved with the result")
    collect.add_argument(
        "--lm-stride",
        type=int,
        metavar="N",
        help="language models: score windows of the run's context sliding by N tokens, each token once "
        "(default: the recipe's eval.lm_stride, else disjoint windows)",
    )
    collect.add_argument("--out", default="results", help="results folder (default results/)")
    paired = sub.add_parser(
        "paired",
        help="paired bootstrap test of two result folders on the same test set (Koehn 2004)",
        description="Compare two results/<recipe>/ folders example by example: their kept outputs "
        "(hypotheses.jsonl) are re-scored against the dataset's references, checked against each result.json, "
        "and resampled together. Prints one line for people and a last line of JSON.",
    )
    paired.add_argument("a", help="result folder A, e.g. results/g2p-gru-attention-long")
    paired.add_argument("b", help="result folder B (same task and split)")
    paired.add_argument("--metric", help="metric to test (default: the task's primary metric, e.g. bleu, wer, rouge1)")
    seeds = sub.add_parser(
        "seeds",
        help="one recipe trained under several seeds: every seed's score, mean, spread, against the published number",
        description="Summarise result folders whose resolved configs differ only in training.seed: each seed's "
        "score, their mean and sample standard deviation, the mean's gap to the published number, and whether "
        "every seed reaches it, every seed is behind, or the seeds are level with it (it lies between them). "
        "Prints one line per metric for people and a last line of JSON.",
    )
    seeds.add_argument("folders", nargs="+", metavar="FOLDER", help="result folders, e.g. results/A results/A-seed2")
    seeds.add_argument("--metric", help="metric to summarise (default: the published anchor's, else the headline's)")
    seeds.add_argument("--decoding", help="decoding to read it from, e.g. greedy or beam5 (default: the anchor's)")
    page = sub.add_parser("page", help="regenerate docs/results.md from results/*/result.json")
    page.add_argument("--results", default="results")
    page.add_argument("--out", default="docs/results.md")


def run(args: argparse.Namespace) -> int:
    from qkv.errors import UserError

    if args.action == "page":
        from qkv.results.page import write_page

        write_page(args.results, args.out)
        print(f"wrote {args.out}")
        return 0
    if args.action == "seeds":
        import json

        from qkv.results.seeds import load_seed_runs, summarize

        summaries = summarize(load_seed_runs(args.folders), args.metric, args.decoding)
        for summary in summaries:
            print(summary.summary())
        print(json.dumps([summary.to_dict() for summary in summaries]))
        return 0
    if args.action == "paired":
        import json

        from qkv.results.paired import compare_results

        comparison = compare_results(args.a, args.b, args.metric)
        print(comparison.summary())
        print(json.dumps(comparison.to_dict()))
        return 0
    from qkv.results.collect import collect_run

    try:
        beams = tuple(int(b) for b in args.beams.split(","))
    except ValueError:
        raise UserError(f"--beams {args.beams!r}: expected comma-separated integers, e.g. 1,5") from None
    if not beams or min(beams) < 1:
        raise UserError(f"--beams {args.beams!r}: beam sizes must be >= 1")
    rules = rules_from_args(args)
    record = collect_run(
        args.run,
        args.recipe,
        args.out,
        command=args.command,
        threads=args.threads,
        split=args.split,
        beams=beams,
        checkpoint=args.checkpoint,
        notes=args.notes,
        rules=rules,
        lm_stride=args.lm_stride,
    )
    print(
        f"{args.out}/{args.recipe}: {record.decoding} " + ", ".join(f"{k} {v:.2f}" for k, v in record.metrics.items())
    )
    print("recorded command:", shlex.join(shlex.split(args.command)), file=sys.stderr)
    return 0
