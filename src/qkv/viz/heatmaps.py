"""Attention heatmaps as pure functions: weights and tokens in, a matplotlib ``Figure`` out.

The picture of Bahdanau et al. 2015 (Figure 3) and Vaswani et al. 2017 (Figures 3-5): one row per query
token, one column per key token, the cell's shade = the softmax weight. Axes carry the real tokens; on
long inputs the canvas grows and only every n-th label is printed, so the plot stays readable.

No global state: figures are created with :class:`matplotlib.figure.Figure` (not ``pyplot``), so these
functions are safe in a web server thread and never open a window. SVGs keep their text as text
(``svg.fonttype: none``, set only around the save), so tokens can be searched and copied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

MAX_LABELS = 60  # beyond this many tokens on an axis, label every n-th one
KIND_AXES = {  # kind -> (query side, key side)
    "encoder_self": ("source (query)", "source (key)"),
    "decoder_self": ("target (query)", "target (key)"),
    "cross": ("target (query)", "source (key)"),
}


def _ticks(ax, labels: Sequence[str], axis: str, max_labels: int) -> None:
    n = len(labels)
    step = max(1, math.ceil(n / max_labels))
    idx = list(range(0, n, step))
    shown = [labels[i] if len(labels[i]) <= 14 else labels[i][:13] + "…" for i in idx]
    if axis == "x":
        ax.set_xticks(idx, shown, rotation=90, fontsize=8 if n <= 30 else 6)
    else:
        ax.set_yticks(idx, shown, fontsize=8 if n <= 30 else 6)


def save(fig: Figure, path: str | Path, dpi: int = 110) -> None:
    """``fig.savefig``, with the text of an SVG kept as text (searchable), not turned into paths."""
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(path, dpi=dpi)


def _draw(
    ax,
    weights: np.ndarray,
    q_labels: Sequence[str],
    k_labels: Sequence[str],
    max_labels: int,
    vmax: float | None = None,
):
    top = max(1e-9, float(weights.max())) if vmax is None else vmax
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=top, aspect="auto", interpolation="nearest")
    _ticks(ax, k_labels, "x", max_labels)
    _ticks(ax, q_labels, "y", max_labels)
    return image


def _check(weights: np.ndarray, q_labels: Sequence[str], k_labels: Sequence[str]) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape[-2:] != (len(q_labels), len(k_labels)):
        raise ValueError(
            f"weights of shape {weights.shape} do not match {len(q_labels)} query and {len(k_labels)} key labels"
        )
    return weights


def attention_heatmap(
    weights: np.ndarray,
    q_labels: Sequence[str],
    k_labels: Sequence[str],
    *,
    title: str = "",
    axis_names: tuple[str, str] = ("query", "key"),
    max_labels: int = MAX_LABELS,
) -> Figure:
    """One head: ``weights (T_q, T_k)`` as a heatmap, rows labelled with query tokens, columns with key tokens."""
    weights = _check(weights, q_labels, k_labels)
    t_q, t_k = weights.shape
    cell = 0.32 if max(t_q, t_k) <= 40 else 0.16  # inches per token; the canvas grows on long inputs
    width = min(40.0, max(4.5, 1.8 + cell * t_k))
    height = min(40.0, max(3.5, 1.5 + cell * t_q))
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    image = _draw(ax, weights, q_labels, k_labels, max_labels)
    ax.set_xlabel(axis_names[1])
    ax.set_ylabel(axis_names[0])
    if title:
        ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.04, label="attention weight")
    return fig


def heads_grid(
    weights: np.ndarray,
    q_labels: Sequence[str],
    k_labels: Sequence[str],
    *,
    title: str = "",
    max_labels: int = 30,
    axis_names: tuple[str, str] = ("query", "key"),
) -> Figure:
    """Every head of one layer side by side: ``weights (H, T_q, T_k)``, on one colour scale (0 to the
    largest weight of the layer) with its colour bar, and axis titles."""
    weights = _check(weights, q_labels, k_labels)
    n = weights.shape[0]
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    t_q, t_k = weights.shape[1:]
    side = min(8.0, max(2.6, 0.18 * max(t_q, t_k)))
    fig = Figure(figsize=(cols * side + 1.0, rows * side + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    vmax = max(1e-9, float(weights.max()))
    image = None
    for h in range(rows * cols):
        ax = axes[h // cols][h % cols]
        if h >= n:
            ax.set_axis_off()
            continue
        image = _draw(ax, weights[h], q_labels, k_labels, max_labels, vmax=vmax)
        ax.set_title(f"head {h}", fontsize=9)
    assert image is not None  # n >= 1 heads
    fig.supxlabel(axis_names[1], fontsize=10)
    fig.supylabel(axis_names[0], fontsize=10)
    fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.03, label="attention weight")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def write_heatmaps(
    attentions: dict[str, list[np.ndarray]],
    labels: Mapping[str, tuple[Sequence[str], Sequence[str]]],
    out_dir: str | Path,
    *,
    formats: Sequence[str] = ("png", "svg"),
    prefix: str = "",
    dpi: int = 110,
) -> list[Path]:
    """Write one heatmap per kind, layer and head (``{prefix}{kind}_L{l}_H{h}.{fmt}``) plus one grid per layer
    (``{prefix}{kind}_L{l}_heads.png``, only when the layer has more than one head). ``attentions[kind]`` is a
    list over layers of ``(H, T_q, T_k)`` arrays; ``labels[kind] = (query tokens, key tokens)``. Returns the
    written paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for kind, layers in attentions.items():
        q_labels, k_labels = labels[kind]
        axis_names = KIND_AXES.get(kind, ("query", "key"))
        for layer, weights in enumerate(layers):
            weights = np.asarray(weights)
            # one figure per layer, redrawn for each head: same tokens, so the layout is computed once
            fig = attention_heatmap(weights[0], q_labels, k_labels, axis_names=axis_names)
            ax = fig.axes[0]
            image = ax.images[0]
            for head in range(weights.shape[0]):
                image.set_data(weights[head])
                image.set_clim(0.0, max(1e-9, float(weights[head].max())))
                ax.set_title(f"{prefix}{kind} · layer {layer} · head {head}", fontsize=10)
                for fmt in formats:
                    path = out / f"{prefix}{kind}_L{layer}_H{head}.{fmt}"
                    save(fig, path, dpi=dpi)
                    written.append(path)
                fig.set_layout_engine("none")  # keep the layout of the first save
            if weights.shape[0] > 1:  # one head: its own heatmap says it all
                title = f"{prefix}{kind} · layer {layer}"
                grid = heads_grid(weights, q_labels, k_labels, title=title, axis_names=axis_names)
                path = out / f"{prefix}{kind}_L{layer}_heads.png"
                save(grid, path, dpi=dpi)
                written.append(path)
    return written


def bar_chart(values: Sequence[float], labels: Sequence[str], *, title: str = "", xlabel: str = "") -> Figure:
    """A horizontal bar chart (search weights, head importance)."""
    n = len(values)
    fig = Figure(figsize=(7.0, max(2.0, 0.3 * n + 1.0)), layout="constrained")
    ax = fig.add_subplot()
    ax.barh(range(n), list(values), color="#3b7dd8")
    ax.set_yticks(range(n), [lab if len(lab) <= 50 else lab[:49] + "…" for lab in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, fontsize=10)
    return fig
