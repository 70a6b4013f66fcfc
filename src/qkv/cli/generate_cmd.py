"""`qkv generate RUN [TEXT ...]`: translate / transcribe / summarize / continue text with a trained run.

Inputs come from the TEXT arguments, else from ``--file``, else from standard input one line at a time
(so it works interactively: type a line, get its output).
"""

from __future__ import annotations

import argparse
import sys

HELP = "translate / transcribe / summarize / continue text with a trained run (stdin when no TEXT)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory written by `qkv train`")
    parser.add_argument("text", nargs="*", help="input text(s); none = read --file or stdin, one per line")
    parser.add_argument("--file", help="read inputs from this file, one per line")
    parser.add_argument("--checkpoint", default="best", help="best (default), last, averaged, or a file")
    parser.add_argument("--beam", type=int, default=1, help="beam size (1 = greedy)")
    parser.add_argument("--max-len", type=int, default=128, help="longest output, in tokens")
    parser.add_argument("--sample", action="store_true", help="sample instead of searching")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling generator")
    parser.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    from qkv.errors import UserError
    from qkv.training.generate import generate_texts
    from qkv.training.run import load_run

    if args.beam < 1:
        raise UserError(f"--beam must be >= 1, got {args.beam}")
    loaded = load_run(args.run, args.checkpoint, args.device)
    options = dict(beam=args.beam, max_len=args.max_len, sample=args.sample, temperature=args.temperature,
                   top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    if args.text:
        lines = list(args.text)
    elif args.file:
        try:
            with open(args.file, encoding="utf-8") as f:
                lines = [line.rstrip("\n") for line in f]
        except OSError as err:
            raise UserError(f"{args.file}: cannot read ({err.strerror})") from None
    else:  # interactive / piped: answer each line as it arrives
        for line in sys.stdin:
            line = line.rstrip("\n")
            print(_shown(loaded, line, generate_texts(loaded, [line], **options)[0]), flush=True)
        return 0
    for line, output in zip(lines, generate_texts(loaded, lines, **options), strict=True):
        print(_shown(loaded, line, output))
    return 0


def _shown(loaded, text: str, output: str) -> str:
    """Language models print the prompt followed by its continuation; seq2seq models just the output."""
    return text + output if loaded.model.kind == "lm" else output
