"""The decoding-rule flags shared by `qkv generate`, `qkv evaluate` and `qkv results collect`:
``--no-repeat-ngram N``, ``--min-len N`` and ``--no-unk`` (see :mod:`qkv.decoding.rules`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports torch only when a command runs
    from qkv.decoding.rules import OutputRules


def add_rule_arguments(parser: argparse.ArgumentParser, effect: str = "") -> None:
    """Add the rule flags; ``effect`` says in the help what the command does with them."""
    parser.add_argument(
        "--no-repeat-ngram",
        type=int,
        default=0,
        metavar="N",
        help="never repeat an N-gram within an output (Paulus et al. 2018 use 3 for summaries; 0 = off, default)"
        + effect,
    )
    parser.add_argument(
        "--min-len",
        type=int,
        default=0,
        metavar="N",
        help="never end an output before N tokens (fairseq's --min-len; 0 = off, default)" + effect,
    )
    parser.add_argument(
        "--no-unk",
        action="store_true",
        help="never output <unk> (OpenNMT's -ban_unk_token; word-level vocabularies)" + effect,
    )


def rules_from_args(args: argparse.Namespace, decoded: bool = True, task_name: str = "") -> OutputRules:
    """The rules the flags ask for; a negative value, or a rule for a task scored without decoding
    (``decoded=False``), is a :class:`~qkv.errors.UserError`."""
    from qkv.decoding.rules import OutputRules
    from qkv.errors import UserError

    for flag, value in (("--no-repeat-ngram", args.no_repeat_ngram), ("--min-len", args.min_len)):
        if value < 0:
            raise UserError(f"{flag} must be an integer >= 0 (0 = off), got {value}")
    rules = OutputRules(no_repeat_ngram=args.no_repeat_ngram, min_len=args.min_len, ban_unk=args.no_unk)
    if rules.active and not decoded:
        raise UserError(
            f"--no-repeat-ngram, --min-len and --no-unk apply to decoded outputs; {task_name} is scored teacher-forced"
        )
    return rules
