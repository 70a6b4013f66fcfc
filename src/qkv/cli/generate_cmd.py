"""`qkv generate RUN [TEXT ...]`: translate / transcribe / summarize / continue text with a trained run.

Inputs come from the TEXT arguments, else from ``--file``, else from standard input one line at a time
(so it works interactively: type a line, get its output). Each input may hold at most
``--max-input-chars`` characters (default :data:`MAX_INPUT_CHARS`): the work grows with the square of the
input's length, and the recipes train on inputs of a few thousand characters at most. A longer input, a bad
flag value or a ``--file`` that is not UTF-8 text is a one-line error naming it (exit status 2).
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from qkv.cli.rules_args import add_rule_arguments, rules_from_args

MAX_INPUT_CHARS = 10_000

HELP = "translate / transcribe / summarize / continue text with a trained run (stdin when no TEXT)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run", help="run directory written by `qkv train`, or a shipped model (multi30k-de-en, g2p-cmudict)"
    )
    parser.add_argument("text", nargs="*", help="input text(s); none = read --file or stdin, one per line")
    parser.add_argument("--file", help="read inputs from this file, one per line")
    parser.add_argument("--checkpoint", default="best", help="best (default), last, averaged, or a file")
    parser.add_argument("--beam", type=int, default=1, help="beam size (1 = greedy)")
    parser.add_argument("--max-len", type=int, default=128, help="longest output, in tokens")
    parser.add_argument("--sample", action="store_true", help="sample instead of searching")
    add_rule_arguments(parser)
    parser.add_argument("--temperature", type=float, default=1.0, help="with --sample: softmax temperature (default 1)")
    parser.add_argument("--top-k", type=int, help="with --sample: draw from the k most likely tokens only")
    parser.add_argument("--top-p", type=float, help="with --sample: draw from the smallest set with probability >= p")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling generator")
    parser.add_argument(
        "--max-input-chars",
        type=int,
        default=MAX_INPUT_CHARS,
        help=f"longest input accepted, in characters (default {MAX_INPUT_CHARS:,})",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")


def run(args: argparse.Namespace) -> int:
    from qkv.training.generate import generate_texts

    _check_flags(args)
    rules = rules_from_args(args)
    if args.text:
        lines = list(args.text)
        for i, line in enumerate(lines, 1):
            _check_length(line, f"TEXT argument {i}", args.max_input_chars)
    elif args.file:
        lines = _read_inputs(args.file, args.max_input_chars)
    loaded = _open(args)
    options = dict(
        beam=args.beam,
        max_len=args.max_len,
        sample=args.sample,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        rules=rules,
    )
    if not args.text and not args.file:  # interactive / piped: answer each line as it arrives
        for number, line in _stdin_lines():
            _check_length(line, f"stdin line {number}", args.max_input_chars)  # (stops: outputs stay aligned)
            print(_shown(loaded, line, generate_texts(loaded, [line], **options)[0]), flush=True)
        return 0
    for line, output in zip(lines, generate_texts(loaded, lines, **options), strict=True):
        print(_shown(loaded, line, output))
    return 0


def _open(args: argparse.Namespace):
    """The run, or a model qkv ships when RUN names one (and no such directory exists)."""
    from qkv.assets import SHIPPED, load_shipped
    from qkv.training.run import load_run

    if args.run in SHIPPED and not os.path.isdir(args.run):
        return load_shipped(args.run)
    return load_run(args.run, args.checkpoint, args.device)


def _check_flags(args: argparse.Namespace) -> None:
    """Decoding flags outside their range are an error naming the flag (before the run is opened)."""
    from qkv.errors import UserError

    checks = [
        ("--beam", args.beam, args.beam >= 1, "an integer >= 1"),
        ("--max-len", args.max_len, args.max_len >= 1, "an integer >= 1 (tokens)"),
        (
            "--temperature",
            args.temperature,
            0 < args.temperature < math.inf,
            "a finite number > 0 (for the single most likely output, leave out --sample)",
        ),
        ("--top-k", args.top_k, args.top_k is None or args.top_k >= 1, "an integer >= 1"),
        ("--top-p", args.top_p, args.top_p is None or 0 < args.top_p <= 1, "a number in (0, 1]"),
        ("--max-input-chars", args.max_input_chars, args.max_input_chars >= 1, "an integer >= 1"),
    ]
    for flag, value, ok, what in checks:
        if not ok:
            raise UserError(f"{flag} must be {what}, got {value}")


def _check_length(text: str, where: str, limit: int) -> None:
    from qkv.errors import UserError

    if len(text) > limit:
        raise UserError(
            f"{where}: {len(text):,} characters, more than --max-input-chars {limit:,} "
            "(split the input, or raise --max-input-chars)"
        )


def _read_inputs(name: str, limit: int) -> list[str]:
    """The lines of ``--file``: UTF-8 (a leading BOM dropped), each within ``limit`` characters."""
    from qkv.data.textio import decode, read_bytes, split_lines

    lines = split_lines(decode(read_bytes(name), name))
    for number, line in enumerate(lines, 1):
        _check_length(line, f"{name}:{number}", limit)
    return lines


def _stdin_lines():
    """``(number, line)`` for each line of standard input as it arrives, decoded as UTF-8 (a leading BOM
    dropped); bytes that are not UTF-8 are an error naming the line."""
    from qkv.errors import UserError

    stream = getattr(sys.stdin, "buffer", None)
    for number, raw in enumerate(stream if stream is not None else sys.stdin, 1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise UserError(
                    f"stdin line {number}: bytes {raw[err.start : err.start + 4]!r} are not valid "
                    "UTF-8 (the input must be UTF-8 text)"
                ) from None
        line = raw.rstrip("\n").removesuffix("\r")
        yield number, line.removeprefix("\ufeff") if number == 1 else line


def _shown(loaded, text: str, output: str) -> str:
    """Language models print the prompt followed by its continuation; seq2seq models just the output."""
    return text + output if loaded.model.kind == "lm" else output
