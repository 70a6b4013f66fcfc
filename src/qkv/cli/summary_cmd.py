"""`qkv summary CONFIG.yaml | RUN | --pretrained PATH`: layers, heads and parameter counts per module."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qkv.errors import UserError

HELP = "print a model's layers, heads and parameter counts per module (recipe, run, or HF checkpoint)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="?", help="a recipe (CONFIG.yaml) or a run directory")
    parser.add_argument("--pretrained", metavar="PATH", help="a Hugging Face checkpoint directory instead")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. --set model.n_heads=8 (recipes only)",
    )
    parser.add_argument(
        "--src-vocab", type=int, default=8000, help="source vocabulary size assumed for a recipe (default 8000)"
    )
    parser.add_argument(
        "--tgt-vocab", type=int, default=8000, help="target vocabulary size assumed for a recipe (default 8000)"
    )
    parser.add_argument("--depth", type=int, default=3, help="how deep to break modules down (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from qkv.models.summary import format_summary, summarize

    note = ""
    if args.pretrained:
        if args.source:
            raise UserError("give either a recipe/run or --pretrained PATH, not both")
        from qkv.pretrained import load

        model, _ = load(args.pretrained)
    elif args.source is None:
        raise UserError("nothing to summarise: give a recipe (CONFIG.yaml), a run directory, or --pretrained PATH")
    elif Path(args.source).is_dir():
        from qkv.training import load_run

        model = load_run(args.source).model
    else:
        from qkv.models.builder import build_model
        from qkv.training.config import load_config

        config = load_config(args.source, args.overrides)
        try:
            model = build_model(config.model, args.src_vocab, args.tgt_vocab)
        except ValueError as err:  # e.g. one shared vocabulary asked for, two sizes given
            raise UserError(
                f"{args.source}: {err}", hint="set --src-vocab and --tgt-vocab to sizes it accepts"
            ) from None
        note = f"(vocabulary sizes assumed: source {args.src_vocab}, target {args.tgt_vocab}; see --src-vocab)"
    info = summarize(model, max_depth=args.depth)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print(format_summary(info))
        if note:
            print(note)
    return 0
