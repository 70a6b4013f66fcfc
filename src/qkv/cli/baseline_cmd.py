"""`qkv baseline lead|longest --task aeslc|samsum [--split test] [--n N] [--out DIR]`: an extractive baseline.

Lead-n (AESLC: Lead-1, the email's first sentence as its subject; SAMSum: Lead-3, the first three
utterances) or Longest-n, scored with the task's own ROUGE (:mod:`qkv.data.baselines`). Prints the scores
as JSON and writes ``DIR/<split>.json`` and ``DIR/<split>.hyp.txt`` (one summary per line); ``DIR``
defaults to ``runs/<task>-<method><n>``. ``--results results`` also writes the reference-result folder
``results/<task>-<method><n>/`` that ``qkv results page`` lists beside the trained summarizers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "score an extractive summarization baseline (Lead-n, Longest-n) with the task's ROUGE"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from qkv.data.baselines import METHODS

    parser.add_argument("method", choices=METHODS, help="lead: the first n units; longest: the n longest")
    parser.add_argument("--task", required=True, choices=("aeslc", "samsum"), help="summarization dataset")
    parser.add_argument("--split", default="test", help="train, dev or test (default: test)")
    parser.add_argument("--n", type=int, help="sentences (AESLC) or utterances (SAMSum); default 1 / 3")
    parser.add_argument(
        "--keep-greeting",
        action="store_true",
        help="AESLC: keep a leading salutation ('Hi John,') in the first sentence",
    )
    parser.add_argument("--data-dir", help="datasets folder (default: $QKV_DATA, then the user cache)")
    parser.add_argument("--out", help="output directory (default: runs/<task>-<method><n>)")
    parser.add_argument(
        "--results",
        metavar="DIR",
        help="also write a reference-result folder DIR/<task>-<method><n>/ (result.json with 95%% bootstrap "
        "intervals, samples.txt) for `qkv results page`, e.g. --results results",
    )


def run(args: argparse.Namespace) -> int:
    from qkv.data.baselines import default_n, run_baseline
    from qkv.data.summarization import SummarizationTask
    from qkv.data.tasks import canonical_split
    from qkv.errors import UserError

    n = default_n(args.task) if args.n is None else args.n
    if n < 1:
        raise UserError(f"--n must be >= 1, got {n}")
    task = SummarizationTask(dataset=args.task, data_dir=args.data_dir)
    split = canonical_split(args.split, task.splits())
    skip_greeting = not args.keep_greeting
    metrics, hyps = run_baseline(task, split, args.method, n, skip_greeting=skip_greeting)
    out = Path(args.out) if args.out else Path("runs") / f"{args.task}-{args.method}{n}"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{split}.hyp.txt").write_text("".join(h.replace("\n", " ") + "\n" for h in hyps), encoding="utf-8")
    result = {
        "baseline": f"{args.method}-{n}",
        "task": "summarization",
        "dataset": args.task,
        "split": split,
        "examples": len(hyps),
        "skip_greeting": skip_greeting if args.task == "aeslc" else None,
        "metrics": metrics,
        "command": f"qkv baseline {args.method} --task {args.task} --split {split} --n {n}"
        + (" --keep-greeting" if args.keep_greeting else ""),  # what reproduces these numbers
    }
    (out / f"{split}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result))
    if args.results:
        from qkv.results.collect import collect_baseline

        record = collect_baseline(
            task, split, args.method, n, args.results, command=result["command"], skip_greeting=skip_greeting
        )
        print(f"wrote {Path(args.results) / record.recipe}")
    return 0
