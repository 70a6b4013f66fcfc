"""The report behind ``qkv attention``: every layer and head as PNG/SVG heatmaps, head statistics
(Clark et al. 2019) and head importance by ablation (Michel et al. 2019), gathered in one HTML page."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from qkv.attention import MultiHeadAttention
from qkv.errors import UserError
from qkv.viz.heads import format_stats, head_importance, head_stats, stats_figure
from qkv.viz.heatmaps import KIND_AXES, attention_heatmap, bar_chart, heads_grid, write_heatmaps
from qkv.viz.html import img, page, table
from qkv.viz.inspector import Inspector


def validation_score(inspector: Inspector, n: int):
    """``score()`` = minus the mean NLL per token on ``n`` validation examples of the run's task."""
    from qkv.special import BOS_ID
    from qkv.training.evaluate import lm_nll, seq2seq_loss
    from qkv.training.run import split_data

    if inspector.task is None:
        raise UserError("--importance needs a trained run (its task provides the validation examples)")
    data: Any = split_data(inspector.task, "valid", n if inspector.kind == "seq2seq" else None)
    model = inspector.model
    if inspector.kind == "seq2seq":
        src = inspector.src_tok.encode_batch([e.src for e in data])
        tgt = inspector.tgt_tok.encode_batch([e.tgt for e in data])
        return lambda: -seq2seq_loss(model, src, tgt)
    ids = [BOS_ID, *inspector.tgt_tok.encode(data[: n * 200])]

    def score() -> float:
        total, count = lm_nll(model, ids, context=min(128, len(ids) - 1), max_tokens=len(ids) - 1)
        return -total / max(count, 1)

    return score


def write_report(
    inspector: Inspector,
    text: str,
    out: Path,
    *,
    searches=("greedy", "beam"),
    formats=("png", "svg"),
    importance: int = 0,
) -> dict:
    """Write ``out/<search>/*.{png,svg}``, ``out/heads.json``, ``out/heads.png`` and ``out/attention.html``."""
    out.mkdir(parents=True, exist_ok=True)
    if inspector.kind != "seq2seq":
        searches = searches[:1]
    body: list[str] = []
    summary: dict[str, Any] = {"searches": {}}
    n_images, all_stats = 0, []
    for search in searches:
        analysis = inspector.analyze(text, search)
        attentions = dict(analysis.attentions)
        if search != searches[0]:  # the encoder reads the same source whatever the decoding: drawn once
            attentions.pop("encoder_self", None)
        paths = write_heatmaps(attentions, analysis.labels, out / search, formats=formats)
        n_images += len(paths)
        summary["searches"][search] = {"output": analysis.output, "images": [str(p) for p in paths]}
        body.append(f"<h2>{escape(search)} decoding</h2>")
        if analysis.output:
            body.append(f"<p>output: <code>{escape(analysis.output)}</code></p>")
        if "encoder_self" in analysis.attentions and "encoder_self" not in attentions:
            body.append(f"<p>(encoder self-attention: as for {escape(searches[0])} decoding above)</p>")
        for kind, layers in attentions.items():
            q_labels, k_labels = analysis.labels[kind]
            axes = KIND_AXES.get(kind, ("query", "key"))
            for layer, weights in enumerate(layers):
                title = f"{kind} · layer {layer}"
                body.append(f"<h3>{escape(title)}</h3>")
                if weights.shape[0] > 1:
                    fig = heads_grid(weights, q_labels, k_labels, title=title, axis_names=axes)
                else:
                    fig = attention_heatmap(weights[0], q_labels, k_labels, title=title, axis_names=axes)
                body.append(img(fig, alt=f"{search} {title}"))
                if search == searches[0]:
                    all_stats += head_stats(weights, kind, layer)
    rows = [
        [s.kind, s.layer, s.head, s.entropy]
        + ([s.distance, s.previous, s.same, s.first] if s.positional else ["–"] * 4)
        for s in all_stats
    ]
    body.append(
        "<h2>What the heads do</h2><p>Entropy (nats) of each query's attention; for self-attention also the "
        "mean distance |i − j| to the attended keys and the share of attention on the previous, same and first "
        "token (positions that mean nothing across two sequences, so not given for cross-attention).</p>"
    )
    body.append(table(["kind", "layer", "head", "entropy", "distance", "previous", "same", "first"], rows))
    stats_png = out / "heads.png"
    if all_stats:
        for kind in dict.fromkeys(s.kind for s in all_stats):
            fig = stats_figure([s for s in all_stats if s.kind == kind], title=kind)
            body.append(img(fig, alt=f"head statistics {kind}"))
            fig.savefig(out / f"heads_{kind}.png", dpi=100)
        stats_png = out / f"heads_{all_stats[0].kind}.png"
    report: dict[str, Any] = {"text": text, "heads": [s.to_dict() for s in all_stats]}
    if importance:
        modules = [(n, m) for n, m in inspector.model.named_modules() if isinstance(m, MultiHeadAttention)]
        importance_rows = head_importance(modules, validation_score(inspector, importance))
        report["importance"] = importance_rows
        ranked = sorted(importance_rows, key=lambda r: -r["drop"])
        body.append(
            f"<h2>Head importance (ablation on {importance} validation examples)</h2>"
            "<p>Each head masked out in turn; the score is minus the loss per token, the drop is how much "
            "worse the model gets without the head.</p>"
        )
        fig = bar_chart(
            [r["drop"] for r in ranked],
            [f"{r['module']} h{r['head']}" for r in ranked],
            title="loss increase when the head is masked",
            xlabel="Δ loss (nats/token)",
        )
        fig.savefig(out / "importance.png", dpi=100)
        body.append(img(fig, alt="head importance"))
        body.append(
            table(
                ["module", "head", "loss without it", "increase"],
                [[r["module"], r["head"], -r["score"], r["drop"]] for r in ranked],
                tok_cols=(0,),
            )
        )
        print(
            f"head importance: baseline loss {-importance_rows[0]['base']:.4f}; most important "
            f"{ranked[0]['module']} head {ranked[0]['head']} (+{ranked[0]['drop']:.4f})"
        )
    (out / "heads.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(format_stats(all_stats))
    html_path = out / "attention.html"
    html_path.write_text(page(f"Attention: {text[:60]}", "\n".join(body)), encoding="utf-8")
    summary.update(
        n_images=n_images,
        html=str(html_path),
        heads_json=str(out / "heads.json"),
        n_heads=len(all_stats),
        stats_png=str(stats_png),
    )
    return summary
