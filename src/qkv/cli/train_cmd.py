"""`qkv train CONFIG.yaml [--set key=value ...] [--out DIR] [--resume]`: one training run from a recipe."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

HELP = "train one model from a YAML recipe (configs/<task>-<model>.yaml)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        help="recipe YAML, e.g. configs/g2p-transformer.yaml (with --resume: "
        "may be the run directory; the run's own config.yaml is used)",
    )
    parser.add_argument("--out", help="run directory (default: runs/<recipe name>)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set optim.lr=3e-4 (repeatable; YAML values)",
    )
    parser.add_argument("--max-steps", type=int, help="same as --set training.max_steps=N")
    parser.add_argument("--seed", type=int, help="same as --set training.seed=S")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from checkpoints/last (a complete run: nothing to do; "
        "one stopped before its first checkpoint: start it from the beginning)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")


def run(args: argparse.Namespace) -> int:
    from qkv.training.config import load_config
    from qkv.training.loop import train
    from qkv.training.run import CONFIG_FILE

    config_path = Path(args.config)
    out = Path(args.out) if args.out else (config_path if config_path.is_dir() else Path("runs") / config_path.stem)
    overrides = list(args.overrides)
    if args.max_steps is not None:
        overrides.append(f"training.max_steps={args.max_steps}")
    if args.seed is not None:
        overrides.append(f"training.seed={args.seed}")
    if args.resume and (out / CONFIG_FILE).is_file():
        config_path = out / CONFIG_FILE  # the run's resolved config is the truth when resuming
    config = load_config(config_path, overrides)
    result = train(config, out, resume=args.resume, progress=not args.no_progress)
    best = result.get("best")
    summary = {
        "run": str(out),
        "step": result["step"],
        **({"best": best} if best else {}),
        **({"complete": result["complete"]} if "complete" in result else {}),
    }
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one summary line
        print(json.dumps(summary))
    return 0
