"""The `qkv` command line: one program, one subcommand per module in this package.

Each subcommand lives in ``qkv/cli/<name>.py`` and defines::

    HELP: str                                   # one line for `qkv --help`
    def add_arguments(parser) -> None           # its flags
    def run(args) -> int                        # exit status

Modules are imported lazily, so `qkv --help` stays fast and a missing optional dependency of one
subcommand never breaks the others. :class:`qkv.errors.UserError` becomes a one-line message and
exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from qkv.errors import UserError

# name -> module under qkv.cli (module names avoid clashing with the stdlib/python keywords)
COMMANDS: dict[str, str] = {
    "compare": "compare_cmd",
    "sweep": "sweep_cmd",
    "train": "train_cmd",
    "evaluate": "evaluate_cmd",
    "generate": "generate_cmd",
    "attention": "attention_cmd",
    "explain": "explain_cmd",
    "serve": "serve_cmd",
    "search": "search_cmd",
    "probe": "probe_cmd",
    "bench": "bench_cmd",
    "data": "data_cmd",
    "summary": "summary_cmd",
    "baseline": "baseline_cmd",
    "results": "results_cmd",
}


def _load(name: str):
    """The subcommand's module. A missing one is an error, never a command that silently disappears."""
    return importlib.import_module(f"qkv.cli.{COMMANDS[name]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qkv", description="Query/Key/Value attention you can run, measure and see.")
    from qkv import __version__

    parser.add_argument("--version", action="version", version=f"qkv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if only is not None and name != only:
            continue
        module = _load(name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Build only the requested subcommand's parser when we can (fast startup).
    only = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if not argv else 2
    args._argv = argv  # the command line as typed, for results that record their command
    try:
        status = int(args._run(args) or 0)
        sys.stdout.flush()  # (a reader gone away shows here, not as an error at exit)
        return status
    except BrokenPipeError:  # `qkv data | head -1`: the reader has all it wanted; stop quietly, as on SIGPIPE
        import contextlib
        import os

        with contextlib.suppress(OSError, ValueError, AttributeError):  # no second error at exit's flush
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what the shell reports for a program that a closed pipe stopped
    except UserError as err:
        print(f"qkv {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qkv {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
