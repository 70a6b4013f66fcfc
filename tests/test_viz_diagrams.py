"""The guide's pictures are drawn by code, from qkv's own numbers, with their text kept as text."""

from __future__ import annotations

import torch

from qkv.attention import attend
from qkv.viz.diagrams import DOCS, QUERY, write


def test_diagrams_carry_the_numbers_of_attend_as_text(tmp_path):
    paths = write(tmp_path)
    assert sorted(p.name for p in paths) == sorted(
        f"{n}.{e}" for n in ("guide_search_analogy", "guide_block_diagram") for e in ("svg", "png")
    )
    keys = torch.tensor([k for _, k, _ in DOCS])[None, None]
    values = torch.tensor([v for _, _, v in DOCS])[None, None]
    _, w = attend(torch.tensor([[QUERY[1]]])[None], keys, values, need_weights=True)
    search = (tmp_path / "guide_search_analogy.svg").read_text()
    for weight in w[0, 0, 0].tolist():
        assert f"weight {weight:.3f}" in search  # searchable text, from the reference backend's weights
    block = (tmp_path / "guide_block_diagram.svg").read_text()
    assert "W_Q" in block and "W_O" in block and "LayerNorm" in block
