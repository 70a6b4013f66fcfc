"""`qkv search QUERY --corpus FILE`: attention as search with MiniLM sentence embeddings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qkv.errors import UserError

HELP = "attention as search: a query against the lines of a corpus (keys = values), with softmax weights"
MAX_LINES = 5000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", metavar="QUERY", help="the query text")
    p.add_argument("--corpus", required=True, help="text file, one key/value line per line (blank lines skipped)")
    p.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="softmax temperature on the scaled scores q·k/√d (default 0.01; 1 = the softmax of a head's "
        "scaled scores, but with no learned W_Q/W_K/W_V: the sentence embeddings are the queries, keys and values)",
    )
    p.add_argument("--top", type=int, default=10, help="how many matches to print (>= 1; default 10)")
    p.add_argument("--model", default=None, help="a BERT-style checkpoint directory (default: the MiniLM package)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the result as JSON here")
    p.add_argument("--plot", default=None, help="also write a bar chart of the weights (PNG/SVG) here")


def run(args: argparse.Namespace) -> int:
    from qkv.viz.search import DEFAULT_TEMPERATURE, SentenceEncoder, format_result, search_lines

    path = Path(args.corpus)
    if not path.is_file():
        raise UserError(f"{path}: no such corpus file")
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text (byte {err.start})") from None
    if not lines:
        raise UserError(f"{path}: the corpus has no non-blank lines")
    if len(lines) > MAX_LINES:
        raise UserError(f"{path}: {len(lines)} lines; the limit is {MAX_LINES}")
    if not args.query.strip():
        raise UserError("the query is empty")
    if args.top < 1:
        raise UserError(f"--top must be an integer >= 1 (how many matches to print), got {args.top}")
    temperature = DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
    if temperature <= 0:
        raise UserError(f"--temperature must be > 0, got {temperature}")
    result = search_lines(SentenceEncoder.load(args.model), args.query, lines, temperature)
    print(format_result(result, args.top))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result.to_dict(), indent=1), encoding="utf-8")
    if args.plot:
        from qkv.viz.heatmaps import bar_chart, save

        order = result.ranking()[: args.top]
        fig = bar_chart(
            [float(result.weights[j]) for j in order],
            [result.lines[j] for j in order],
            title=f"softmax weights for {args.query!r} (temperature {temperature:g})",
            xlabel="weight",
        )
        save(fig, args.plot, dpi=110)
    return 0
