"""The comparison's plots, as pure functions: plain data in (the ``results.json`` sections), a figure out.

Each function builds a :class:`matplotlib.figure.Figure` directly (no ``pyplot``, no global state), so
the same code serves the CLI report, tests and the web explorer. :func:`png_bytes` renders one.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.figure import Figure

# One colour per architecture, stable across every figure of a report.
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def colours(names: Sequence[str]) -> dict[str, str]:
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(names)}


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def stamp(fig: Figure, text: str) -> Figure:
    """Write ``text`` (what made the figure: command, data, machine, commit) in small grey type under the
    figure, so a PNG copied out of its report still says where it came from (:func:`png_bytes` saves with
    a tight bounding box, which takes the line in)."""
    fig.text(0.0, -0.01, text, ha="left", va="top", fontsize=6.5, color="0.35")
    return fig


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def budget_ladder(ladder: dict) -> Figure:
    """Test metric against training budget, one line per architecture (log-scaled budget axis)."""
    rungs = ladder["rungs"]
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    names = list(rungs[-1]["values"])
    col = colours(names)
    for name in names:
        points = [(r["amount"], r["values"][name]) for r in rungs if r["values"].get(name) is not None]
        ax.plot([a for a, _ in points], [v for _, v in points], "o-", color=col[name], label=name)
    ax.set_xscale("log")
    ax.set_xticks([r["amount"] for r in rungs], [r["budget_text"] for r in rungs])
    better = "higher is better" if ladder.get("higher_is_better") else "lower is better"
    ax.set(
        xlabel="training budget per model", ylabel=f"test {ladder['metric']} ({better})", title="Quality against budget"
    )
    ax.legend()
    return fig


def training_curves(
    curves: dict[str, dict], metric: str, higher_is_better: bool, secondary: str | None = None
) -> Figure:
    """Training loss against optimizer steps and against wall-clock seconds, and the validation metric
    (and a secondary metric, when given) against wall-clock seconds -- who learns faster per second, not
    only per step.

    ``curves[model]`` has ``train`` (list of ``{step, seconds, loss}``) and ``eval`` (list of
    ``{step, seconds, <metric>}``).
    """
    metrics = [metric] + ([secondary] if secondary else [])
    fig = Figure(figsize=(12, 7.6))
    axes = fig.subplots(2, 2).ravel()
    col = colours(list(curves))
    for name, curve in curves.items():
        train = [p for p in curve.get("train", []) if p.get("loss") is not None]
        if train:
            axes[0].plot([p["step"] for p in train], [p["loss"] for p in train], color=col[name], label=name)
            axes[1].plot([p["seconds"] for p in train], [p["loss"] for p in train], color=col[name], label=name)
        for ax, m in zip(axes[2:], metrics, strict=False):
            evals = [p for p in curve.get("eval", []) if p.get(m) is not None]
            if evals:
                ax.plot([p["seconds"] for p in evals], [p[m] for p in evals], "o-", color=col[name], label=name)
    axes[0].set(xlabel="optimizer step", ylabel="training loss", title="Loss per step")
    axes[1].set(xlabel="wall-clock seconds (training)", ylabel="training loss", title="Loss per second")
    better = "higher is better" if higher_is_better else "lower is better"
    for ax, m in zip(axes[2:], metrics, strict=False):
        ax.set(xlabel="wall-clock seconds (training)", ylabel=m, title=f"Validation {m} per second ({better})")
    for i, ax in enumerate(axes):
        if i >= 2 + len(metrics):
            ax.axis("off")
            continue
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
        else:
            _empty(ax, "no data")
    fig.tight_layout()
    return fig


def cost_bars(models: dict[str, dict]) -> Figure:
    """Bar charts of parameters, training tokens/s, inference latency per sequence and peak memory."""
    panels = [
        ("parameters", lambda m: m.get("params"), "parameters"),
        ("training tokens/s", lambda m: (m.get("train") or {}).get("tokens_per_s"), "tokens / s"),
        ("latency / sequence", lambda m: (m.get("inference") or {}).get("latency_ms"), "ms (greedy, batch 1)"),
        ("peak training memory", lambda m: (m.get("memory") or {}).get("train_peak_mib"), "MiB"),
    ]
    fig = Figure(figsize=(13, 3.2))
    axes = fig.subplots(1, len(panels))
    names = list(models)
    col = colours(names)
    for ax, (title, get, unit) in zip(axes, panels, strict=False):
        values = [get(models[n]) for n in names]
        shown = [(n, v) for n, v in zip(names, values, strict=False) if v is not None]
        if not shown:
            _empty(ax, "not measured")
        else:
            ax.bar(range(len(shown)), [v for _, v in shown], color=[col[n] for n, _ in shown])
            ax.set_xticks(range(len(shown)), [n for n, _ in shown], rotation=20, ha="right", fontsize=8)
            for i, (_, v) in enumerate(shown):
                ax.annotate(f"{v:,.0f}" if v >= 100 else f"{v:.3g}", (i, v), ha="center", va="bottom", fontsize=8)
        ax.set(title=title, ylabel=unit)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def scaling_curves(scaling: dict) -> Figure:
    """Log-log panels against sequence length: step time, peak memory, and sequential steps, with ``T`` and
    ``T^2`` guide lines and a marker where each curve bends."""
    fig = Figure(figsize=(13, 3.9))
    axes = fig.subplots(1, 3)
    curves = scaling.get("curves", [])
    col = colours([c["label"] for c in curves])
    keys = [
        ("step_ms", "ms per training step", "Training-step time", "bend"),
        ("peak_mib", "MiB", "Peak memory of a step", "memory_bend"),
        ("sequential_steps", "sequential steps", "Sequential steps (critical path)", None),
    ]
    for ax, (key, unit, title, bend_key) in zip(axes, keys, strict=False):
        for c in curves:
            pts = [(t, v) for t, v in zip(c["lengths"], c[key], strict=False) if v is not None and v > 0]
            if not pts:
                continue
            ax.plot([t for t, _ in pts], [v for _, v in pts], "o-", ms=3, color=col[c["label"]], label=c["label"])
            bend = (c.get(bend_key) or {}).get("bend_at") if bend_key else None
            if bend is not None:
                ax.plot([bend], [dict(pts)[bend]], "x", ms=10, mew=2, color=col[c["label"]])
        if ax.lines:
            _guides(ax)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.legend(fontsize=7)
        else:
            _empty(ax, "not measured")
        ax.set(xlabel="sequence length T", ylabel=unit, title=title)
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def _guides(ax) -> None:
    """Dotted ``~T`` and ``~T^2`` lines through the lowest first point, for reading slopes by eye."""
    starts = [(line.get_xdata()[0], line.get_ydata()[0]) for line in ax.lines if len(line.get_xdata()) > 1]
    ends = [line.get_xdata()[-1] for line in ax.lines if len(line.get_xdata()) > 1]
    if not starts:
        return
    t0, v0 = min(starts, key=lambda p: p[1])
    t1 = max(ends)
    for power, label in ((1, "∝ T"), (2, "∝ T²")):
        ax.plot([t0, t1], [v0, v0 * (t1 / t0) ** power], ":", color="grey", lw=1)
        ax.annotate(label, (t1, v0 * (t1 / t0) ** power), fontsize=7, color="grey")


def probe_accuracy(probes: dict[str, dict]) -> Figure:
    """One panel per probe: accuracy against dependency distance for each architecture."""
    names = [k for k, v in probes.items() if isinstance(v, dict) and v.get("accuracy")]
    fig = Figure(figsize=(6.5 * max(len(names), 1), 3.8))
    axes = fig.subplots(1, max(len(names), 1), squeeze=False)[0]
    if not names:
        _empty(axes[0], "no probe results")
        return fig
    for ax, task in zip(axes, names, strict=False):
        probe = probes[task]
        col = colours(list(probe["accuracy"]))
        for model, acc in probe["accuracy"].items():
            params = (probe.get("params") or {}).get(model)
            label = f"{model} ({params / 1000:.0f}k params)" if params else model
            ax.plot(probe["distances"], acc, "o-", color=col[model], label=label)
        ax.set(
            xlabel=probe.get("distance_label", "dependency distance (tokens)"),
            ylabel="accuracy",
            title=f"{task}: accuracy vs distance",
            ylim=(-0.03, 1.03),
        )
        if probe.get("binned_distances"):  # power-of-two bins: equal spacing on a log axis
            ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def probe_learning(probe: dict) -> Figure:
    """Left: each run's learning curve (exact match or token accuracy at each check, against optimizer
    steps), one line per architecture and length. Right: steps to solve against length (missing = not
    solved within the budget, drawn as an open marker at the budget's last step)."""
    fig = Figure(figsize=(12, 3.8))
    curves_ax, solve_ax = fig.subplots(1, 2)
    runs = probe.get("runs") or {}
    metric = "exact_match" if probe.get("probe") in ("assoc-recall", "listops") else "token_accuracy"
    col = colours(list(runs))
    styles = ["-", "--", ":", "-."]
    for model, model_runs in runs.items():
        for i, run in enumerate(model_runs):
            curve = run.get("curve") or []
            steps = [c["steps"] for c in curve]
            values = [c.get(metric) for c in curve]
            curves_ax.plot(steps, values, "o" + styles[i % len(styles)], color=col[model], ms=3,
                           label=f"{model}, T={run['length']}")  # fmt: skip
        lengths = [r["length"] for r in model_runs]
        solved = [r.get("steps_to_solve") for r in model_runs]
        xs = [n for n, s in zip(lengths, solved, strict=True) if s is not None]
        solve_ax.plot(xs, [s for s in solved if s is not None], "o-", color=col[model], label=model)
        unsolved = [(r["length"], r["steps"]) for r in model_runs if r.get("steps_to_solve") is None]
        if unsolved:
            solve_ax.plot(*zip(*unsolved, strict=True), "o", mfc="none", color=col[model],
                          label=f"{model}: not solved (steps trained)")  # fmt: skip
    solved_at = probe.get("solved_at", 95)
    curves_ax.axhline(solved_at, color="grey", lw=0.8, ls=":")
    curves_ax.set(xlabel="optimizer steps", ylabel=f"{metric.replace('_', ' ')} (%)", ylim=(-3, 103),
                  title=f"{probe.get('probe', 'probe')}: learning curves")  # fmt: skip
    solve_ax.set(xlabel="source length T (tokens)", ylabel=f"steps to {solved_at:g}%",
                 title="steps to solve (open: not solved)")  # fmt: skip
    if len(runs) and any(len(r) > 1 for r in runs.values()):
        solve_ax.set_xscale("log", base=2)
    for ax in (curves_ax, solve_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def attention_maps(maps: dict[str, list[dict]]) -> Figure:
    """Cross-attention (alignment) maps: one row per test example, one column per attention model.

    ``maps[model]`` is a list of ``{"src_tokens", "tgt_tokens", "weights"}`` with ``weights`` a
    ``T_t x T_s`` nested list (target tokens attend to source tokens; head-averaged only for display
    when the model has several heads -- the per-head maps are in ``qkv attention``).
    """
    models = [m for m, v in maps.items() if v]
    rows = max((len(maps[m]) for m in models), default=0)
    if not models or not rows:
        fig = Figure(figsize=(5, 2))
        _empty(fig.subplots(), "no attention model in this comparison")
        return fig
    fig = Figure(figsize=(4.2 * len(models), 3.6 * rows))
    axes = fig.subplots(rows, len(models), squeeze=False)
    for j, model in enumerate(models):
        for i in range(rows):
            ax = axes[i][j]
            if i >= len(maps[model]):
                ax.axis("off")
                continue
            item = maps[model][i]
            ax.imshow(item["weights"], cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
            ax.set_xticks(range(len(item["src_tokens"])), item["src_tokens"], fontsize=7, rotation=90)
            ax.set_yticks(range(len(item["tgt_tokens"])), item["tgt_tokens"], fontsize=7)
            ax.set_title(f"{model}: {item.get('title', '')}", fontsize=9)
            if i == rows - 1:
                ax.set_xlabel("source (keys)")
            if j == 0:
                ax.set_ylabel("output (queries)")
    fig.tight_layout()
    return fig
