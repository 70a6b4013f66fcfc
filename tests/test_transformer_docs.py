"""docs/models.md cannot go stale: its ```python blocks run in order in one namespace, and a ```text block
right after a python block must equal what that block printed."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "models.md"
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)


def test_models_doc_examples_run_and_print_what_the_doc_shows():
    blocks = [(m.group(1), m.group(2)) for m in FENCE.finditer(DOC.read_text(encoding="utf-8"))]
    assert [lang for lang, _ in blocks].count("python") >= 4
    namespace: dict = {"__name__": "models_doc"}
    printed: str | None = None
    for i, (lang, code) in enumerate(blocks):
        if lang == "python":
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"{DOC.name}[block {i}]", "exec"), namespace)  # noqa: S102
            printed = out.getvalue()
        elif lang == "text":
            assert printed is not None and printed.strip() == code.strip(), f"block {i} differs:\n{printed}"
            printed = None
