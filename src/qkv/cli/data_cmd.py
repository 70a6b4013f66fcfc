"""`qkv data`: every dataset, where it is read from, whether it is present, and example counts."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "list the datasets: source, where each is read from, whether it is present, example counts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        help="read every dataset from DIR/DATASET/ only (as task.data_dir does); "
        "without it, each dataset comes from the first of $QKV_DATA/DATASET/ and the cache's that "
        "exists",
    )
    parser.add_argument("--no-count", action="store_true", help="skip counting examples")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def collect(data_dir: str | None = None, count: bool = True) -> list[dict]:
    """One row per dataset: name, task, source, licence, location (or None), counts."""
    from qkv.data import g2p, lm, summarization, translation
    from qkv.errors import UserError

    rows = []
    for module in (g2p, translation, lm, summarization):
        for info in module.DATASETS:
            where = info.where(data_dir)
            counts, error = {}, None
            if where is not None and count:
                try:
                    counts = info.count(where)
                except UserError as err:  # report it in this row, keep listing the others
                    error = str(err)
            rows.append(
                {
                    "name": info.name,
                    "task": info.task,
                    "source": info.source,
                    "licence": info.licence,
                    "path": str(where) if where else None,
                    "present": where is not None,
                    "unit": info.unit,
                    "counts": counts,
                    "expected": None if where else f"{info.folder}/{', '.join(info.files)}",
                    "error": error,
                }
            )
    rows.append(
        {
            "name": "probes",
            "task": "copy, reverse, sort, assoc-recall, selective-copy, listops",
            "source": "generated (seeded)",
            "licence": "-",
            "path": "generated",
            "present": True,
            "unit": "examples",
            "counts": {},
            "expected": None,
            "error": None,
        }
    )
    return rows


def run(args: argparse.Namespace) -> int:
    from qkv.data.paths import data_roots

    rows = collect(args.data_dir, count=not args.no_count)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("search order: " + ", ".join(f"{why} ({root})" for why, root in data_roots(args.data_dir)))
    for r in rows:
        mark = "present" if r["present"] else "MISSING"
        print(f"\n{r['name']:<16} [{r['task']}] {mark}")
        print(f"  source:  {r['source']}  ({r['licence']})")
        if r["present"]:
            print(f"  read from: {r['path']}")
        else:
            print(f"  expected: {r['expected']} under " + ("--data-dir" if args.data_dir else "$QKV_DATA or the cache"))
        if r["counts"]:
            print("  " + r["unit"] + ": " + ", ".join(f"{k} {v:,}" for k, v in r["counts"].items()))
        if r["error"]:
            print(f"  UNREADABLE: {r['error']}")
    errors = [r["error"] for r in rows if r["error"]]
    if errors:  # exit status 2, like every user-fixable problem
        print(f"qkv data: error: {len(errors)} dataset(s) unreadable; first: {errors[0]}", file=sys.stderr)
        return 2
    return 0
