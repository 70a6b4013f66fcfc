"""Time to quality, read from the reference runs' own training logs (``results/<recipe>/metrics.jsonl``).

For each target of issue 12 (Multi30k de->en validation BLEU 30 and 35, g2p validation WER 30%,
tinyshakespeare validation loss 1.80) it finds the first validation record that reaches the target and
reports its step and the training clock at that step (``time`` of the train record logged at the same
step: seconds of training, evaluations excluded). Evaluations are periodic, so each time is an upper
bound: the run may have crossed the target earlier, between two evaluations. The runs' threads and
machine are in their ``result.json``.

    python benchmarks/time_to_quality_from_logs.py --out results/bench/time-to-quality-from-logs.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (recipe, metric, target, higher is better)
TARGETS = [
    ("multi30k-transformer", "bleu", 30.0, True),
    ("multi30k-transformer", "bleu", 35.0, True),
    ("multi30k-gru-attention", "bleu", 30.0, True),
    ("multi30k-gru-attention", "bleu", 35.0, True),
    ("g2p-transformer", "wer", 30.0, False),
    ("tinyshakespeare-gpt", "loss", 1.80, False),
    ("tinyshakespeare-lstm", "loss", 1.80, False),
]


def first_crossing(log: Path, metric: str, target: float, higher: bool) -> dict:
    """The first validation record at or past ``target``, with the training clock at its step."""
    clock: dict[int, float] = {}
    evals = []
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("split") == "train" and "time" in record:
            clock[record["step"]] = record["time"]
        elif record.get("split") == "valid" and metric in record:
            evals.append(record)
    for record in evals:
        value = record[metric]
        if (value >= target) if higher else (value <= target):
            step = record["step"]
            seconds = clock.get(step, max((t for s, t in clock.items() if s <= step), default=None))
            return {"reached": True, "step": step, "value": value, "train_seconds": seconds}
    best = (max if higher else min)((r[metric] for r in evals), default=None)
    return {"reached": False, "best": best, "evaluations": len(evals)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, default=ROOT / "results")
    p.add_argument("--out", type=Path, default=None, help="write the table as JSON here")
    args = p.parse_args()
    rows = []
    for recipe, metric, target, higher in TARGETS:
        log, result = args.results / recipe / "metrics.jsonl", args.results / recipe / "result.json"
        if not log.is_file():
            continue
        info = json.loads(result.read_text(encoding="utf-8"))
        row = {"recipe": recipe, "metric": metric, "target": target, "threads": info["threads"],
               "machine": info["machine"], "commit": info["commit"]}  # fmt: skip
        row.update(first_crossing(log, metric, target, higher))
        rows.append(row)
        if row["reached"]:
            minutes = row["train_seconds"] / 60 if row["train_seconds"] is not None else float("nan")
            print(f"{recipe:24s} {metric} {target:g}: step {row['step']:,} ({row['value']:.2f}), "
                  f"{minutes:.1f} min of training, {row['threads']} thread(s)")  # fmt: skip
        else:
            print(f"{recipe:24s} {metric} {target:g}: not reached (best {row['best']})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
