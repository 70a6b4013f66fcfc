"""What the heads do: per-head statistics of the attention weights, and head importance by ablation.

Statistics follow Clark et al. 2019 ("What Does BERT Look At?"): the entropy of each query's attention
distribution, the share of attention on the previous / same / first token, and Vig & Belinkov 2019's mean
attention distance. Importance follows Michel et al. 2019 ("Are Sixteen Heads Really Better than One?"):
mask one head out and measure how much the task metric (or the loss) gets worse.

Masking a head = zeroing its slice of the concatenated head outputs, i.e. the input of ``out_proj``, with a
forward pre-hook -- the model's code is untouched and the hook is removed afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from qkv.attention import MultiHeadAttention

POSITIONAL = ("distance", "previous", "same", "first")


@dataclass
class HeadStats:
    kind: str
    layer: int
    head: int
    entropy: float  # mean over query rows, in nats; log(T_k) = uniform, 0 = one key only
    distance: float  # mean |i - j| weighted by w_ij (query positions aligned bottom-right to the keys)
    previous: float  # mean share of attention on key i - 1
    same: float  # on key i
    first: float  # on key 0

    @property
    def positional(self) -> bool:
        """Distance and previous/same/first compare positions of one sequence: not for cross-attention."""
        return self.kind != "cross"

    def to_dict(self) -> dict:
        d = asdict(self)
        if not self.positional:
            for name in POSITIONAL:
                d[name] = None
        return d


def head_stats(weights: Tensor | np.ndarray, kind: str = "", layer: int = 0) -> list[HeadStats]:
    """Statistics of every head of one layer from ``weights (H, T_q, T_k)`` (one example).

    Query rows whose weights are all zero (fully masked) are left out of the averages.
    """
    w = torch.as_tensor(np.asarray(weights), dtype=torch.float64)  # (H, T_q, T_k)
    n_heads, t_q, t_k = w.shape
    offset = t_k - t_q  # query i sits at key position i + offset (cached decoding / cross-attention: 0)
    qpos = torch.arange(t_q, dtype=torch.float64).unsqueeze(1) + max(offset, 0)  # (T_q, 1)
    kpos = torch.arange(t_k, dtype=torch.float64).unsqueeze(0)  # (1, T_k)
    live = w.sum(-1) > 0.5  # (H, T_q)
    entropy = -(w * torch.log(w.clamp_min(1e-12))).sum(-1)  # (H, T_q)
    distance = (w * (qpos - kpos).abs()).sum(-1)  # (H, T_q)

    def at(shift: int) -> Tensor:  # (H, T_q) weight on key position (i + offset + shift)
        idx = (qpos.squeeze(1) + shift).long()
        valid = (idx >= 0) & (idx < t_k)
        gathered = w.gather(-1, idx.clamp(0, t_k - 1).expand(n_heads, t_q).unsqueeze(-1)).squeeze(-1)
        return gathered * valid

    previous, same, first = at(-1), at(0), w[..., 0]
    out = []
    for h in range(n_heads):
        m = live[h]
        n = max(int(m.sum()), 1)

        def mean(t: Tensor, h: int = h, m: Tensor = m, n: int = n) -> float:
            return float(t[h][m].sum() / n)

        out.append(HeadStats(kind, layer, h, mean(entropy), mean(distance), mean(previous), mean(same), mean(first)))
    return out


def ablate_head(module: MultiHeadAttention, head: int):
    """Register a hook that removes ``head`` from ``module``'s output; returns the handle (``.remove()``)."""
    d = module.head_dim

    def pre_hook(_: torch.nn.Module, args: tuple) -> tuple:
        (concat,) = args  # (B, T_q, H * D)
        concat = concat.clone()
        concat[..., head * d : (head + 1) * d] = 0.0
        return (concat,)

    return module.out_proj.register_forward_pre_hook(pre_hook)


def head_importance(
    modules: Sequence[tuple[str, MultiHeadAttention]],
    score: Callable[[], float],
) -> list[dict]:
    """For every head of every named module: ``score()`` with that head masked out, and the drop from the
    unablated score (positive = the head helped, for a higher-is-better score; pass ``-loss`` for a loss)."""
    with torch.no_grad():
        base = float(score())
        rows = []
        for name, module in modules:
            for head in range(module.n_heads):
                handle = ablate_head(module, head)
                try:
                    value = float(score())
                finally:
                    handle.remove()
                rows.append({"module": name, "head": head, "score": value, "drop": base - value, "base": base})
    return rows


def stats_figure(stats: list[HeadStats], *, title: str = "") -> Figure:
    """Entropy, distance and positional shares as small heatmaps (rows = layers, columns = heads); with one
    head per layer, as bars (a 1 x 1 heatmap shows nothing). Cross-attention: entropy only."""
    layers = sorted({s.layer for s in stats})
    heads = max(s.head for s in stats) + 1
    fields = ["entropy", *POSITIONAL] if all(s.positional for s in stats) else ["entropy"]
    fig = Figure(figsize=(3.0 * len(fields) + 1.0, 0.5 * len(layers) + 1.8), layout="constrained")
    axes = fig.subplots(1, len(fields), squeeze=False)[0]
    if heads == 1:
        for ax, name in zip(axes, fields, strict=True):
            values = [next(getattr(s, name) for s in stats if s.layer == layer) for layer in layers]
            ax.barh(range(len(layers)), values, color="#3b7dd8")
            ax.set_yticks(range(len(layers)), [f"layer {layer}" for layer in layers])
            ax.invert_yaxis()
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("nats" if name == "entropy" else "tokens" if name == "distance" else "share of attention")
        if title:
            fig.suptitle(title)
        return fig
    for ax, name in zip(axes, fields, strict=True):
        grid = np.full((len(layers), heads), np.nan)
        for s in stats:
            grid[layers.index(s.layer), s.head] = getattr(s, name)
        image = ax.imshow(grid, cmap="magma", aspect="auto")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_xticks(range(heads))
        ax.set_yticks(range(len(layers)), [str(layer) for layer in layers])
        fig.colorbar(image, ax=ax, fraction=0.05)
    if title:
        fig.suptitle(title)
    return fig


def format_stats(stats: list[HeadStats]) -> str:
    """A plain-text table of head statistics."""
    lines = [f"{'kind':<13}{'layer':>6}{'head':>6}{'entropy':>9}{'distance':>10}{'prev':>7}{'same':>7}{'first':>7}"]
    for s in stats:
        positions = (
            f"{s.distance:>10.2f}{s.previous:>7.2f}{s.same:>7.2f}{s.first:>7.2f}"
            if s.positional
            else f"{'-':>10}{'-':>7}{'-':>7}{'-':>7}"  # positions of two sequences: not comparable
        )
        lines.append(f"{s.kind:<13}{s.layer:>6}{s.head:>6}{s.entropy:>9.3f}{positions}")
    return "\n".join(lines)
