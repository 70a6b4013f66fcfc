"""The explorer's views in a Jupyter notebook: objects with ``_repr_html_`` (inline SVG, no scripts, no
network), so that the last line of a cell draws them::

    import qkv.viz
    qkv.viz.head_view(None, "Ein brauner Hund rennt dem schwarzen Hund hinterher.")   # the shipped translator
    qkv.viz.model_view("runs/reverse", "3 1 4 1 5 9", kind="cross")

``model`` is an :class:`~qkv.viz.inspector.Inspector`, a run directory, a shipped model's name, or None
(the default shipped model). Every text is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

HEAD_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _inspector(model: Any) -> Any:
    from qkv.viz.inspector import Inspector, open_inspector

    if isinstance(model, Inspector):
        return model
    return open_inspector(None if model is None else Path(model) if Path(str(model)).is_dir() else str(model))


def _colour(w: float) -> str:
    t = max(0.0, min(1.0, float(w)))
    return f"rgb({round(247 - t * 239)},{round(251 - t * 203)},{round(255 - t * 148)})"


@dataclass
class HeadView:
    """Every head of one layer over the tokens, one colour per head (BertViz's head view)."""

    kind: str
    layer: int
    weights: np.ndarray  # (H, T_q, T_k)
    q_labels: list[str]
    k_labels: list[str]
    output: str = ""

    def _repr_html_(self) -> str:
        step, width = 18, 520
        n_heads, t_q, t_k = self.weights.shape
        height = max(t_q, t_k) * step + 40
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="qkv-head-view">']
        for h in range(n_heads):
            colour = HEAD_COLOURS[h % len(HEAD_COLOURS)]
            for i in range(t_q):
                for j in range(t_k):
                    w = float(self.weights[h, i, j])
                    if w >= 0.05:
                        parts.append(
                            f'<line x1="160" y1="{34 + i * step}" x2="{width - 160}" y2="{34 + j * step}" '
                            f'stroke="{colour}" stroke-width="{0.5 + 3 * w:.2f}" '
                            f'stroke-opacity="{min(0.9, 0.15 + w):.2f}"/>'
                        )
        parts.append('<text x="150" y="14" text-anchor="end" font-size="12">query</text>')
        parts.append(f'<text x="{width - 150}" y="14" font-size="12">key</text>')
        for i, tok in enumerate(self.q_labels):
            parts.append(
                f'<text x="150" y="{38 + i * step}" text-anchor="end" font-family="monospace" font-size="11">'
                f"{escape(tok)}</text>"
            )
        for j, tok in enumerate(self.k_labels):
            parts.append(
                f'<text x="{width - 150}" y="{38 + j * step}" font-family="monospace" font-size="11">'
                f"{escape(tok)}</text>"
            )
        parts.append("</svg>")
        key = " ".join(
            f'<span style="color:{HEAD_COLOURS[h % len(HEAD_COLOURS)]}">■</span> head {h}' for h in range(n_heads)
        )
        out = f"<p>output: <code>{escape(self.output)}</code></p>" if self.output else ""
        return (
            f"<div><p><b>{escape(self.kind)} attention, layer {self.layer}</b> — {key}</p>{out}{''.join(parts)}"
            "<p>line width and opacity: the attention weight</p></div>"
        )


@dataclass
class ModelView:
    """Every layer and head of one kind of attention as small maps (BertViz's model view)."""

    kind: str
    layers: list[np.ndarray]  # per layer (H, T_q, T_k)
    q_labels: list[str]
    k_labels: list[str]

    def _repr_html_(self) -> str:
        size = 90
        rows = []
        for layer, heads in enumerate(self.layers):
            cells = []
            for h, w in enumerate(heads):
                t_q, t_k = w.shape
                rects = "".join(
                    f'<rect x="{j}" y="{i}" width="1" height="1" fill="{_colour(w[i, j])}"/>'
                    for i in range(t_q)
                    for j in range(t_k)
                    if w[i, j] >= 0.02
                )
                cells.append(
                    f'<td><svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
                    f'viewBox="0 0 {t_k} {t_q}" preserveAspectRatio="none" class="qkv-mini" '
                    f'style="border:1px solid #ccc"><title>layer {layer} head {h}</title>{rects}</svg></td>'
                )
            rows.append(f"<tr><th>layer {layer}</th>{''.join(cells)}</tr>")
        header = "".join(f"<th>head {h}</th>" for h in range(self.layers[0].shape[0]))
        return (
            f"<div><p><b>{escape(self.kind)} attention</b>: rows of each map are queries "
            f"({escape(' '.join(self.q_labels[:12]))}…), columns keys; white = 0, dark blue = 1</p>"
            f"<table><tr><th></th>{header}</tr>{''.join(rows)}</table></div>"
        )


def _pick(analysis: Any, kind: str | None) -> str:
    kind = kind or ("cross" if "cross" in analysis.attentions else next(iter(analysis.attentions)))
    if kind not in analysis.attentions:
        from qkv.errors import UserError

        raise UserError(f"this model has no {kind!r} attention (it has: {', '.join(analysis.attentions)})")
    return kind


def head_view(model: Any, text: str, *, kind: str | None = None, layer: int = 0) -> HeadView:
    """The head view of ``text`` in ``model`` (default kind: cross-attention when the model has it)."""
    inspector = _inspector(model)
    analysis = inspector.analyze(text)
    kind = _pick(analysis, kind)
    layers = analysis.attentions[kind]
    if not 0 <= layer < len(layers):
        raise IndexError(f"layer {layer} is out of range: {kind} has {len(layers)} layers")
    q, k = analysis.labels[kind]
    return HeadView(kind, layer, layers[layer], q, k, analysis.output)


def model_view(model: Any, text: str, *, kind: str | None = None) -> ModelView:
    """The layers x heads grid of ``text`` in ``model``."""
    inspector = _inspector(model)
    analysis = inspector.analyze(text)
    kind = _pick(analysis, kind)
    q, k = analysis.labels[kind]
    return ModelView(kind, analysis.attentions[kind], q, k)
