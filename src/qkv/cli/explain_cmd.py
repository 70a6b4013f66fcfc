"""`qkv explain RUN TEXT --token I`: the Q/K/V computation for one token and head, with the model's real
numbers, checked against its forward pass -- in the terminal and as a self-contained HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path

from qkv.errors import UserError

HELP = "the Query/Key/Value walkthrough for one token, layer and head, with the model's real numbers"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run directory (qkv train --out) or a pretrained checkpoint directory")
    p.add_argument("text", metavar="TEXT", help="the input text")
    p.add_argument("--token", type=int, required=True, help="query position (0-based, as in `qkv attention` plots)")
    p.add_argument("--layer", type=int, default=0)
    p.add_argument("--head", type=int, default=0)
    p.add_argument(
        "--kind",
        default=None,
        choices=["encoder_self", "decoder_self", "cross"],
        help="which attention (default: the first the model has)",
    )
    p.add_argument("--search", default="greedy", choices=["greedy", "beam"], help="decoding of the output")
    p.add_argument("--html", default="explain.html", help="also write the walkthrough here ('' to skip)")
    p.add_argument("--pretrained", action="store_true", help="RUN is a Hugging Face checkpoint directory")
    p.add_argument("--checkpoint", default="best")


def run(args: argparse.Namespace) -> int:
    from qkv.viz.html import page, walkthrough_html
    from qkv.viz.inspector import open_inspector
    from qkv.viz.walkthrough import WalkthroughMismatch, to_text

    if args.html:  # a page that cannot be written is found out before the work, not after it
        _check_writable(Path(args.html))
    inspector = open_inspector(args.run, pretrained=args.pretrained or None, checkpoint=args.checkpoint)
    analysis = inspector.analyze(args.text, args.search)
    kind = args.kind or next(iter(analysis.attentions), None)
    if kind is None:
        raise UserError(f"{args.run}: the model returned no attention weights")
    q_labels, _ = analysis.labels.get(kind, ([], []))
    if q_labels:
        print("query tokens: " + "  ".join(f"{i}:{t}" for i, t in enumerate(q_labels)))
    if analysis.output:
        print(f"output ({args.search}): {analysis.output}")
    try:
        walk = inspector.explain(analysis, kind, args.layer, args.head, args.token)
    except WalkthroughMismatch as err:
        print(f"qkv explain: the recomputation disagrees with the model: {err}")
        return 1
    print(to_text(walk))
    if args.html:
        try:
            Path(args.html).write_text(
                page(f"Q/K/V walkthrough: {args.text[:60]}", walkthrough_html(walk)), encoding="utf-8"
            )
        except OSError as err:
            raise UserError(f"--html {args.html}: cannot write ({err.strerror})") from None
        print(f"wrote {args.html}")
    return 0


def _check_writable(path: Path) -> None:
    if path.is_dir():
        raise UserError(f"--html {path}: is a directory (give a file name, e.g. {path / 'explain.html'})")
    if not path.parent.is_dir():
        raise UserError(f"--html {path}: the folder {path.parent} does not exist")
