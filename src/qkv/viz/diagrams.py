"""The guide's two pictures, drawn by code (pure functions: numbers in, a matplotlib ``Figure`` out):

- :func:`search_figure` -- attention as a soft search: a query scored against the keys ("titles") of three
  documents, the softmax weights, and the values blended by them -- with the numbers of
  :func:`qkv.attention.attend` on the guide's example;
- :func:`block_figure` -- one pre-norm Transformer block from token to logits, with the place of
  ``W_Q``, ``W_K``, ``W_V`` and ``W_O``.

``python -m qkv.viz.diagrams docs/images`` writes both as SVG (text kept as text) and PNG.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from qkv.attention import attend
from qkv.viz.heatmaps import save

DOCS = [
    ("about cats", [1.0, 0.0], [10.0, 0.0]),
    ("about cars", [0.0, 1.0], [0.0, 10.0]),
    ("both", [0.7, 0.7], [5.0, 5.0]),
]
QUERY = ("tell me about cats", [2.0, 0.0])


def _box(ax, x: float, y: float, w: float, h: float, text: str, colour: str = "#eef3fb", size: int = 10) -> None:
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=colour, ec="#5b7db1", lw=1))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)


def _arrow(ax, a: tuple[float, float], b: tuple[float, float], colour: str = "#555", width: float = 1.0) -> None:
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=10, color=colour, lw=width))


def search_figure() -> Figure:
    """Query -> scores against the keys -> softmax weights -> the values mixed (the guide's numbers)."""
    keys = torch.tensor([k for _, k, _ in DOCS])  # (T_k, D)
    values = torch.tensor([v for _, _, v in DOCS])  # (T_k, D)
    query = torch.tensor([QUERY[1]])  # (1, D)
    out, weights = attend(query[None, None], keys[None, None], values[None, None], need_weights=True)
    assert weights is not None
    w = weights[0, 0, 0].tolist()
    scores = (query @ keys.T / 2**0.5)[0].tolist()
    fig = Figure(figsize=(9.5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 4)
    ax.set_axis_off()
    _box(ax, 0.1, 1.6, 1.9, 0.8, f"query q\n“{QUERY[0]}”\n{QUERY[1]}", "#fff4e0", 9)
    ax.text(3.2, 3.75, "keys k_j (the titles)", ha="center", fontsize=9)
    ax.text(5.6, 3.75, "q·k_j/√d → softmax", ha="center", fontsize=9)
    ax.text(8.1, 3.75, "values v_j, weighted", ha="center", fontsize=9)
    for j, (title, key, value) in enumerate(DOCS):
        y = 2.8 - 1.1 * j
        _box(ax, 2.4, y, 1.6, 0.6, f"{title}\n{key}", size=8)
        _arrow(ax, (2.0, 2.0), (2.4, y + 0.3), width=0.8)
        ax.add_patch(FancyBboxPatch((4.6, y + 0.15), 2.0 * w[j], 0.3, boxstyle="square,pad=0", fc="#3b7dd8"))
        ax.text(4.6, y + 0.55, f"score {scores[j]:.2f} → weight {w[j]:.3f}", fontsize=8)
        _box(ax, 7.3, y, 1.6, 0.6, f"v = {value}", "#eefbf0", 8)
        _arrow(ax, (8.9, y + 0.3), (9.3, 2.0), width=0.5 + 3 * w[j])
    out_v = [round(v, 2) for v in out[0, 0, 0].tolist()]
    ax.text(9.45, 1.55, f"output\nΣ w_j v_j\n= {out_v}", ha="center", va="top", fontsize=8)
    return fig


BLOCK = [  # (label, colour) from bottom to top, one pre-norm block
    ("tokens → embedding + position", "#f2f2f2"),
    ("LayerNorm", "#fff4e0"),
    ("x → q = x·W_Q   k = x·W_K   v = x·W_V   (per head)", "#eef3fb"),
    ("softmax(q·kᵀ / √d_k) · v   (each head)", "#eef3fb"),
    ("concat heads · W_O", "#eef3fb"),
    ("+ residual", "#f2f2f2"),
    ("LayerNorm", "#fff4e0"),
    ("MLP: ReLU(x·W_1) · W_2", "#eefbf0"),
    ("+ residual", "#f2f2f2"),
    ("(more blocks) → LayerNorm → logits = x·W_out", "#f2f2f2"),
]


def block_figure() -> Figure:
    """One pre-norm Transformer block: where W_Q, W_K, W_V and W_O sit between the tokens and the logits."""
    fig = Figure(figsize=(6.5, 7.0), layout="constrained")
    ax = fig.add_subplot()
    n = len(BLOCK)
    ax.set_xlim(0, 10)
    ax.set_ylim(0, n * 1.0 + 0.2)
    ax.set_axis_off()
    for i, (label, colour) in enumerate(BLOCK):
        _box(ax, 1.0, 0.2 + i, 7.0, 0.6, label, colour, 9)
        if i:
            _arrow(ax, (4.5, i - 0.2), (4.5, 0.2 + i))
    # the residual paths skip the attention and the MLP
    for start, end in ((0, 5), (5, 8)):
        ax.annotate(
            "",
            xy=(8.0, 0.5 + end),
            xytext=(8.0, 0.5 + start),
            arrowprops={"arrowstyle": "-|>", "connectionstyle": "bar,fraction=0.15", "color": "#b05", "lw": 1},
        )
    ax.text(9.5, 3.0, "residual", rotation=90, color="#b05", fontsize=9, va="center")
    ax.text(0.2, 3.5, "attention", rotation=90, color="#5b7db1", fontsize=9, va="center")
    return fig


def write(out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in (("guide_search_analogy", search_figure()), ("guide_block_diagram", block_figure())):
        for ext in ("svg", "png"):
            path = out / f"{name}.{ext}"
            save(fig, path, dpi=110)
            written.append(path)
    return written


if __name__ == "__main__":
    for p in write(sys.argv[1] if len(sys.argv) > 1 else "."):
        print(p)
