"""Every option of the looking-inside commands says what it does, and `--pretrained` means one thing."""

from __future__ import annotations

import argparse

import pytest

from qkv.cli import build_parser

COMMANDS = ("serve", "explain", "attention", "search", "generate", "evaluate")


def _options(name: str) -> list[argparse.Action]:
    parser = build_parser(only=name)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [a for a in sub.choices[name]._actions if not isinstance(a, argparse._HelpAction)]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help(name):
    missing = [a.option_strings or [a.dest] for a in _options(name) if not a.help]
    assert missing == [], f"qkv {name}: options without help text: {missing}"


@pytest.mark.parametrize("name", ("serve", "explain", "attention"))
def test_pretrained_takes_an_optional_path_everywhere(name):
    (action,) = [a for a in _options(name) if "--pretrained" in a.option_strings]
    assert action.nargs == "?" and action.const is True and action.metavar == "PATH"
