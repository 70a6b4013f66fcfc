"""`qkv bench quality RECIPE --target METRIC=VALUE`: wall-clock time to reach a validation target.

Throughput says how fast a step is; time-to-quality is what a user waits for. This runs the real ``qkv
train`` loop on the recipe (plus ``--set`` overrides), evaluates every ``eval.every`` steps, and stops at
the first evaluation whose ``METRIC`` reaches ``VALUE`` (``>=`` for metrics where higher is better, such as
BLEU; ``<=`` for loss, WER, PER). It reports the seconds from the start of the command (tokenizers, data and
every evaluation included: what the user waits for), the training seconds the run itself records, the step
and the tokens seen -- or that the target was not reached within ``training.max_steps``. Targets from
issue 12: tinyshakespeare val loss 1.80, Multi30k de-en BLEU 30 and 35, g2p WER 30%.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

LOWER_IS_BETTER = ("loss", "ppl", "bits_per_token", "bpc", "wer", "per", "cer")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="recipe YAML, e.g. configs/tinyshakespeare-gpt.yaml")
    parser.add_argument("--target", required=True, metavar="METRIC=VALUE", help="e.g. loss=1.80, bleu=35, wer=30")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the recipe")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--run", help="keep the run in this directory (default: a temporary one)")
    parser.add_argument("--note", help="free text saved with the result")
    parser.add_argument("--out", default="runs/bench", help="writes OUT/quality.json")


def parse_target(text: str) -> tuple[str, float, bool]:
    """``METRIC=VALUE`` -> (metric, value, higher_is_better)."""
    from qkv.errors import UserError

    metric, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = None
    if not sep or not metric or number is None:
        raise UserError(f"--target {text!r}: expected METRIC=VALUE, e.g. loss=1.80 or bleu=35")
    return metric, number, metric.lower() not in LOWER_IS_BETTER


def reached(value: float, target: float, higher_is_better: bool) -> bool:
    return value >= target if higher_is_better else value <= target


def run(args: argparse.Namespace) -> int:
    from qkv.errors import UserError
    from qkv.machine import commit, machine_info
    from qkv.training.config import load_config
    from qkv.training.loop import train_until
    from qkv.training.metrics_log import read_metrics

    if args.threads:
        torch.set_num_threads(args.threads)
    metric, target, higher = parse_target(args.target)
    config = load_config(args.config, args.set)
    start = time.perf_counter()
    evals: list[dict] = []
    hit: dict = {}

    def on_eval(step: int, metrics: dict[str, float]) -> bool:
        if metric not in metrics:
            raise UserError(f"--target: the task reports no {metric!r} (it reports {', '.join(sorted(metrics))})")
        evals.append({"step": step, "seconds": time.perf_counter() - start, metric: metrics[metric]})
        if reached(metrics[metric], target, higher) and not hit:
            hit.update(evals[-1])
            return True
        return False

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(args.run) if args.run else Path(tmp) / "run"
        train_until(config, run_dir, on_eval, progress=False)
        logged = [r for r in read_metrics(run_dir) if r["split"] == "train" and hit and r["step"] <= hit["step"]]
    last = logged[-1] if logged else {}  # the last training log line at or before the target's evaluation
    result = {
        "benchmark": "quality",
        "recipe": str(args.config),
        "overrides": args.set,
        "target": {"metric": metric, "value": target, "higher_is_better": higher},
        "reached": bool(hit),
        "seconds_to_target": hit.get("seconds"),
        "step": hit.get("step"),
        "train_seconds_at_last_log": last.get("time"),
        "tokens_at_last_log": last.get("tokens"),
        "last_log_step": last.get("step"),
        "max_steps": config.training.max_steps,
        "evaluations": evals,
        "command": "qkv " + " ".join(sys.argv[1:]),
        "commit": commit(),
        "machine": machine_info(config.training.device if config.training.device != "auto" else "cpu"),
        "note": args.note,
    }
    if hit:
        print(f"{metric} {hit[metric]:.4g} reached {target:g} at step {hit['step']} after {hit['seconds']:.1f} s")
    else:
        final = evals[-1][metric] if evals else None
        print(f"{metric} target {target:g} not reached in {config.training.max_steps} steps (last: {final})")
    out = Path(args.out) / "quality.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0
