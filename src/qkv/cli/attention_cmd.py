"""`qkv attention RUN TEXT`: heatmaps of every layer and head (PNG + SVG), per-head statistics, head
importance by ablation, and one self-contained HTML page."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qkv.errors import UserError

HELP = "attention heatmaps of every layer and head (encoder self, decoder self, cross) for one text"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run directory (qkv train --out) or a pretrained checkpoint directory")
    p.add_argument("text", metavar="TEXT", help="the input text")
    p.add_argument("--out", default="attention", help="output directory (default: ./attention)")
    p.add_argument("--search", default="greedy,beam", help="decodings to show, comma-separated (greedy,beam)")
    p.add_argument("--formats", default="png,svg", help="image formats for the per-head heatmaps (png,svg)")
    p.add_argument("--pretrained", action="store_true", help="RUN is a Hugging Face checkpoint directory")
    p.add_argument("--checkpoint", default="best", help="best | last | averaged | a .safetensors file")
    p.add_argument(
        "--importance",
        type=int,
        default=0,
        metavar="N",
        help="also rank heads by ablation on N validation examples (loss increase when masked)",
    )


def run(args: argparse.Namespace) -> int:
    from qkv.viz.attention_report import write_report
    from qkv.viz.inspector import open_inspector

    searches = [s for s in args.search.split(",") if s]
    if any(s not in ("greedy", "beam") for s in searches):
        raise UserError(f"--search: unknown decoding in {args.search!r} (use greedy, beam)")
    formats = [f for f in args.formats.split(",") if f]
    if any(f not in ("png", "svg", "pdf") for f in formats):
        raise UserError(f"--formats: unknown format in {args.formats!r} (use png, svg, pdf)")
    if Path(args.out).exists() and not Path(args.out).is_dir():  # found before the work, not after it
        raise UserError(f"--out {args.out}: exists and is not a directory (the report is a folder of files)")
    inspector = open_inspector(args.run, pretrained=args.pretrained or None, checkpoint=args.checkpoint)
    summary = write_report(
        inspector, args.text, Path(args.out), searches=searches, formats=formats, importance=args.importance
    )
    for search, info in summary["searches"].items():
        if info["output"]:
            print(f"{search}: {info['output']}")
    print(f"wrote {summary['n_images']} images and {summary['html']} ({summary['n_heads']} heads)")
    print(json.dumps({"heads_json": summary["heads_json"]}))
    return 0
