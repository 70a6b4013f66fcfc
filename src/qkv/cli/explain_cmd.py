"""`qkv explain [RUN] [TEXT] --token I`: the Q/K/V computation for one token and head, with the model's real
numbers, checked against its forward pass -- in the terminal and as a self-contained HTML page. With no
RUN it opens the Multi30k translator that qkv ships; with no TEXT, an example the model understands."""

from __future__ import annotations

import argparse
from pathlib import Path

from qkv.errors import UserError

HELP = "the Query/Key/Value walkthrough for one token, layer and head, with the model's real numbers"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        metavar="[RUN] [TEXT]",
        nargs="*",
        help="run directory (qkv train --out), a pretrained checkpoint directory or a shipped model name "
        "(default: multi30k-de-en, shipped with qkv), then the input text (default: the model's example)",
    )
    p.add_argument(
        "--token", type=int, default=0, help="query position (0-based, as in `qkv attention` plots; default 0)"
    )
    p.add_argument("--layer", type=int, default=0, help="layer (0-based; default 0)")
    p.add_argument("--head", type=int, default=0, help="head (0-based; default 0)")
    p.add_argument(
        "--kind",
        default=None,
        choices=["encoder_self", "decoder_self", "cross"],
        help="which attention (default: the first the model has)",
    )
    p.add_argument("--search", default="greedy", choices=["greedy", "beam"], help="decoding of the output")
    p.add_argument("--html", default="explain.html", help="also write the walkthrough here ('' to skip)")
    p.add_argument(
        "--pretrained",
        metavar="PATH",
        nargs="?",
        const=True,
        help="a Hugging Face checkpoint directory (PATH, or RUN when PATH is left out)",
    )
    p.add_argument("--checkpoint", default="best", help="best | last | averaged | a .safetensors file")


def run(args: argparse.Namespace) -> int:
    from qkv.viz.html import page, recurrent_html, walkthrough_html
    from qkv.viz.inspector import open_inspector, run_and_text
    from qkv.viz.recurrent_walkthrough import RecurrentWalkthrough
    from qkv.viz.recurrent_walkthrough import to_text as recurrent_text
    from qkv.viz.walkthrough import WalkthroughMismatch, to_text

    if args.html:  # a page that cannot be written is found out before the work, not after it
        _check_writable(Path(args.html))
    run_dir, text = run_and_text(args.inputs, args.pretrained)
    inspector = open_inspector(run_dir, pretrained=bool(args.pretrained) or None, checkpoint=args.checkpoint)
    text = inspector.example if text is None else text
    print(f"model: {inspector.name}")
    analysis = inspector.analyze(text, args.search)
    kind = args.kind or next(iter(analysis.attentions), None)
    if kind is None:
        raise UserError(f"{inspector.name}: the model has no attention to explain (it returned no attention weights)")
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
    recurrent = isinstance(walk, RecurrentWalkthrough)
    print(recurrent_text(walk) if recurrent else to_text(walk))
    if args.html:
        fragment = recurrent_html(walk) if recurrent else walkthrough_html(walk)
        try:
            Path(args.html).write_text(page(f"Q/K/V walkthrough: {text[:60]}", fragment), encoding="utf-8")
        except OSError as err:
            raise UserError(f"--html {args.html}: cannot write ({err.strerror})") from None
        print(f"wrote {args.html}")
    return 0


def _check_writable(path: Path) -> None:
    if path.is_dir():
        raise UserError(f"--html {path}: is a directory (give a file name, e.g. {path / 'explain.html'})")
    if not path.parent.is_dir():
        raise UserError(f"--html {path}: the folder {path.parent} does not exist")
