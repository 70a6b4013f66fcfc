"""`qkv attention [RUN] [TEXT]`: heatmaps of every layer and head (PNG + SVG), per-head statistics, head
importance by ablation, and one self-contained HTML page. With no RUN it opens the Multi30k translator that
qkv ships; with no TEXT, an example the model understands."""

from __future__ import annotations

import argparse
from pathlib import Path

from qkv.errors import UserError

HELP = "attention heatmaps of every layer and head (encoder self, decoder self, cross) for one text"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        metavar="[RUN] [TEXT]",
        nargs="*",
        help="run directory (qkv train --out), a pretrained checkpoint directory or a shipped model name "
        "(default: multi30k-de-en, shipped with qkv), then the input text (default: the model's example)",
    )
    p.add_argument("--out", default="attention", help="output directory (default: ./attention)")
    p.add_argument("--search", default="greedy,beam", help="decodings to show, comma-separated (greedy,beam)")
    p.add_argument("--formats", default="png,svg", help="image formats for the per-head heatmaps (png,svg)")
    p.add_argument(
        "--pretrained",
        metavar="PATH",
        nargs="?",
        const=True,
        help="a Hugging Face checkpoint directory (PATH, or RUN when PATH is left out)",
    )
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
    from qkv.viz.inspector import open_inspector, run_and_text

    searches = [s for s in args.search.split(",") if s]
    if any(s not in ("greedy", "beam") for s in searches):
        raise UserError(f"--search: unknown decoding in {args.search!r} (use greedy, beam)")
    formats = [f for f in args.formats.split(",") if f]
    if any(f not in ("png", "svg", "pdf") for f in formats):
        raise UserError(f"--formats: unknown format in {args.formats!r} (use png, svg, pdf)")
    if Path(args.out).exists() and not Path(args.out).is_dir():  # found before the work, not after it
        raise UserError(f"--out {args.out}: exists and is not a directory (the report is a folder of files)")
    run_dir, text = run_and_text(args.inputs, args.pretrained)
    inspector = open_inspector(run_dir, pretrained=bool(args.pretrained) or None, checkpoint=args.checkpoint)
    text = inspector.example if text is None else text
    print(f"model: {inspector.name}\ntext: {text}")
    summary = write_report(
        inspector, text, Path(args.out), searches=searches, formats=formats, importance=args.importance
    )
    for search, info in summary["searches"].items():
        if info["output"]:
            print(f"{search}: {info['output']}")
    heads = summary["n_heads"]
    print(
        f"wrote {summary['n_images']} images, {summary['html']} and the head statistics {summary['heads_json']} "
        f"({heads} {'head' if heads == 1 else 'heads'})"
    )
    return 0
