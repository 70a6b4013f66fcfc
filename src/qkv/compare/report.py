"""Writing a comparison: ``results.json`` (every number), ``report.html`` (self-contained), ``report.md``,
the figure files, and the summary table printed in the terminal.

Everything here reads only the results dictionary that :mod:`qkv.compare.study` builds, so a report can
be rewritten from a ``results.json`` at any time -- including from a partial one after Ctrl-C, where the
sections that did not run say so instead of breaking the page.

The HTML page needs no network: figures are PNGs embedded as base64 ``data:`` URIs, the style is inline,
there is no script, and every piece of text (model outputs, dataset examples, config values) is
HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

from qkv.atomic import atomic_open, atomic_write_text
from qkv.compare import figures
from qkv.compare.conclusion import conclusion
from qkv.compare.probe_study import model_rank, study_cell
from qkv.compare.probes import SOLVED
from qkv.compare.significance import p_text

SECTIONS = [
    ("quality", "Quality"),
    ("examples", "Examples side by side"),
    ("cost", "Cost"),
    ("scaling", "Parallel computation: cost against sequence length"),
    ("probes", "Long-term dependencies"),
    ("attention", "Attention: alignment maps"),
]


# ----------------------------------------------------------------------------------------------
# results.json


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON so that a reader (or a Ctrl-C) never sees a half-written file (:mod:`qkv.atomic`)."""
    atomic_write_text(Path(path), json.dumps(_finite(data), indent=1, ensure_ascii=False) + "\n")


def _write_text_atomic(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def _finite(x: Any) -> Any:
    """NaN/inf are not JSON: write them as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


# ----------------------------------------------------------------------------------------------
# Numbers as text


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.{max(digits - 2, 1)}f}"
    return str(value)


def summary_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """The summary table: one row per model (used by the terminal, the HTML and the Markdown)."""
    task = results.get("task") or {}
    metric = task.get("metric", "metric")
    arrow = "↑" if task.get("higher_is_better") else "↓"
    second = task.get("secondary_metric")
    n_beam = task.get("beam_examples", "?")
    seeded = any(m.get("seeds") for m in (results.get("models") or {}).values())
    header = ["model", "params", "train MFLOP/token", f"{metric} greedy {arrow} [95% CI]"]
    header += [f"{metric} greedy {arrow}, mean ± sd over seeds"] if seeded else []
    header += [f"{metric} greedy, first {n_beam} {arrow}", f"{metric} beam, first {n_beam} {arrow}"]
    header += [f"{second} greedy {arrow}"] if second else []
    header += ["train steps", "train tok/s", "latency ms/seq", "infer tok/s", "peak train MiB"]
    rows = []
    for name, m in (results.get("models") or {}).items():
        test = m.get("test") or {}
        seeds = m.get("seeds") or {}
        rows.append(
            [
                name,
                fmt(m.get("params")),
                _mflops(m),
                fmt((test.get("greedy") or {}).get(metric)) + _ci_text(test, metric),
                *([_seeds_text(seeds)] if seeded else []),
                fmt((test.get("greedy_on_beam_examples") or {}).get(metric)),
                fmt((test.get("beam") or {}).get(metric)),
                *([fmt((test.get("greedy") or {}).get(second))] if second else []),
                fmt((m.get("train") or {}).get("steps")),
                fmt((m.get("train") or {}).get("tokens_per_s")),
                fmt((m.get("inference") or {}).get("latency_ms")),
                fmt((m.get("inference") or {}).get("tokens_per_s")),
                fmt((m.get("memory") or {}).get("train_peak_mib")),
            ]
        )
    return header, rows


def _seeds_text(seeds: dict) -> str:
    """``41.2 ± 1.3 (3)``: the mean and sample sd of a model's seeds, and how many; ``–`` for one seed."""
    if not seeds.get("values"):
        return "–"
    return f"{fmt(seeds['mean'])} ± {fmt(seeds['std'])} ({len(seeds['values'])})"


def _mflops(model_entry: dict) -> str:
    """Training FLOPs per target token (forward + backward, counted by PyTorch), in millions."""
    flops = model_entry.get("flops_per_token")
    return fmt(flops / 1e6) if flops else "–"


def _ci_text(test: dict, metric: str) -> str:
    ci = (test.get("interval") or {}).get(metric)
    return f" [{fmt(ci['low'])}, {fmt(ci['high'])}]" if ci else ""


def significance_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """One row per pair of models: the difference of each metric, its 95% interval and p-value."""
    sig = results.get("significance") or {}
    metrics = sig.get("metrics") or []
    holm = any("p_holm" in pair[m] for pair in sig.get("pairs", []) for m in metrics)
    p_label = "p (Holm-adjusted p)" if holm else "p"
    seeded = any(pair.get("seeds") for pair in sig.get("pairs", []))
    header = ["A", "B"] + [f"{m}: A − B [95% CI], {p_label}" for m in metrics]
    header += ["seeds: mean A − B, Welch p"] if seeded else []
    header += ["significant (Holm p < 0.05)" if holm else "significant (p < 0.05)"]
    rows = []
    for pair in sig.get("pairs", []):
        cells = [_pair_cell(pair[m]) for m in metrics]
        if seeded:
            seeds = pair.get("seeds")
            cells.append(f"{fmt(seeds['delta'])}, {p_text(seeds['p_value'])}" if seeds else "–")
        marks = [m for m in metrics if pair[m]["significant"]]
        rows.append([pair["a"], pair["b"], *cells, ", ".join(marks) or "no"])
    return header, rows


def _pair_cell(test: dict) -> str:
    """``-1.5 [-3.1, -0.0057], p = 0.058 (0.17)``: the difference, its interval, p and the Holm-adjusted p."""
    cell = f"{fmt(test['delta'])} [{fmt(test['low'])}, {fmt(test['high'])}], {p_text(test['p_value'])}"
    if "p_holm" in test:
        cell += f" ({p_text(test['p_holm']).removeprefix('p = ')})"
    return cell


def ladder_rows_of(results: dict) -> tuple[list[str], list[list[str]]]:
    """The budget ladder: one row per model, one column per rung, and the leader of each rung."""
    rungs = (results.get("ladder") or {}).get("rungs") or []
    if len(rungs) < 2:
        return [], []
    header = ["model"] + [r["budget_text"] for r in rungs]
    models = list(results.get("models") or {})
    rows = [[m] + [f"{fmt(r['values'].get(m))} [{fmt(r['steps'].get(m))}]" for r in rungs] for m in models]
    rows.append(["leader"] + [r["leader"] for r in rungs])
    if any(r.get("test") for r in rungs):
        rows.append(["leader vs runner-up"] + [_rung_test_text(r.get("test")) for r in rungs])
    return header, rows


def _rung_test_text(test: dict | None) -> str:
    """A rung's paired bootstrap of the leader against the runner-up, as a table cell."""
    if not test:
        return "–"
    verdict = "significant" if test["significant"] else "not significant"
    return f"{test['a']} − {test['b']} = {fmt(test['delta'])}, {p_text(test['p_value'])}: {verdict}"


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    out = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def html_table(header: list[str], rows: list[list[str]], css_class: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    cls = f' class="{css_class}"' if css_class else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ----------------------------------------------------------------------------------------------
# Figures


def make_figures(results: dict) -> dict[str, Any]:
    """Figure name -> matplotlib Figure, for every section that has data."""
    out: dict[str, Any] = {}
    task = results.get("task") or {}
    models = results.get("models") or {}
    curves = {n: m.get("curves") or {} for n, m in models.items() if m.get("curves")}
    if curves:
        out["training_curves"] = figures.training_curves(
            curves, task.get("metric", "loss"), bool(task.get("higher_is_better")), task.get("secondary_metric")
        )
    ladder = results.get("ladder") or {}
    if len(ladder.get("rungs") or []) >= 2:
        out["budget_ladder"] = figures.budget_ladder(ladder)
    if any(m.get("params") for m in models.values()):
        out["cost"] = figures.cost_bars(models)
    if (results.get("scaling") or {}).get("curves"):
        out["scaling"] = figures.scaling_curves(results["scaling"])
    if any(isinstance(v, dict) and v.get("accuracy") for v in (results.get("probes") or {}).values()):
        out["probes"] = figures.probe_accuracy(results["probes"])
    if any(results.get("attention", {}).values()):
        out["attention"] = figures.attention_maps(results["attention"])
    return out


def _section_figures(section: str) -> list[str]:
    return {
        "quality": ["training_curves", "budget_ladder"],
        "cost": ["cost"],
        "scaling": ["scaling"],
        "probes": ["probes"],
        "attention": ["attention"],
    }.get(section, [])


# ----------------------------------------------------------------------------------------------
# Section bodies: (markdown, html) pairs built from the same facts


def _status(results: dict, section: str) -> str:
    return ((results.get("sections") or {}).get(section) or {}).get("status", "not run")


def _quality(results: dict) -> tuple[str, str]:
    task = results.get("task") or {}
    budget = (results.get("config") or {}).get("budget_text", "")
    header, rows = summary_rows(results)
    metrics_header = ["model", "decoding"]
    metric_names: list[str] = []
    for m in (results.get("models") or {}).values():
        for decoding in ("greedy", "beam"):
            for k in (m.get("test") or {}).get(decoding) or {}:
                if k not in metric_names:
                    metric_names.append(k)
    metrics_rows = []
    n_all, n_beam = task.get("test_examples", "?"), task.get("beam_examples", "?")
    labels = {
        "greedy": f"greedy (all {n_all})",
        "greedy_on_beam_examples": f"greedy (first {n_beam})",
        "beam": f"beam (first {n_beam})",
    }
    for name, m in (results.get("models") or {}).items():
        for decoding, label in labels.items():
            values = (m.get("test") or {}).get(decoding)
            if values:
                metrics_rows.append([name, label] + [fmt(values.get(k)) for k in metric_names])
    intro = (
        f"Task **{task.get('name', '?')}** ({task.get('description', '')}); every model trained with "
        f"the same data, tokenizer and {budget}. Test set: {n_all} examples; beam search on the first "
        f"{n_beam}, compared with greedy on the same {n_beam}."
    )
    md = intro + "\n\n" + md_table(metrics_header + metric_names, metrics_rows)
    h = f"<p>{_md_inline(intro)}</p>" + html_table(metrics_header + metric_names, metrics_rows)
    ladder_header, ladder_rows = ladder_rows_of(results)
    if ladder_rows:
        note = (
            "Budget ladder: each model trained once to the full budget and scored (greedy, test, best "
            "checkpoint so far by validation) at every rung; steps in brackets."
        )
        md += "\n\n" + note + "\n\n" + md_table(ladder_header, ladder_rows)
        h += f"<p>{html.escape(note)}</p>" + html_table(ladder_header, ladder_rows)
    seed_rows = [
        [n, ", ".join(fmt(v) for v in m["seeds"]["values"]), fmt(m["seeds"]["mean"]), fmt(m["seeds"]["std"])]
        for n, m in (results.get("models") or {}).items()
        if m.get("seeds")
    ]
    if seed_rows:
        seed_header = ["model", f"{task.get('metric', '')} per seed", "mean", "std (n-1)"]
        md += "\n\n" + md_table(seed_header, seed_rows)
        h += html_table(seed_header, seed_rows)
    sig_header, sig_rows = significance_rows(results)
    if sig_rows:
        note = (
            f"Differences between models on the same {n_all} test examples: "
            f"{(results.get('significance') or {}).get('method', '')}."
        )
        md += "\n\n" + note + "\n\n" + md_table(sig_header, sig_rows)
        h += f"<p>{html.escape(note)}</p>" + html_table(sig_header, sig_rows)
    return md, h


def _examples(results: dict) -> tuple[str, str]:
    examples = results.get("examples") or []
    models = list(results.get("models") or {})
    header = ["input", "reference"] + models
    rows = [
        [e.get("src", ""), e.get("ref", "")] + [e.get("outputs", {}).get(m, "–") or "(empty)" for m in models]
        for e in examples
    ]
    return md_table(header, rows), html_table(header, rows, "text")


def _cost(results: dict) -> tuple[str, str]:
    header = [
        "model",
        "params",
        "train MFLOP/token",
        "train tok/s",
        "train steps",
        "train s",
        "latency ms/seq",
        "infer tok/s",
        "peak train MiB",
        "peak infer MiB",
    ]
    rows = []
    for name, m in (results.get("models") or {}).items():
        tr, inf, mem = m.get("train") or {}, m.get("inference") or {}, m.get("memory") or {}
        rows.append(
            [
                name,
                fmt(m.get("params")),
                _mflops(m),
                fmt(tr.get("tokens_per_s")),
                fmt(tr.get("steps")),
                fmt(tr.get("seconds")),
                fmt(inf.get("latency_ms")),
                fmt(inf.get("tokens_per_s")),
                fmt(mem.get("train_peak_mib")),
                fmt(mem.get("infer_peak_mib")),
            ]
        )
    method = next(
        (m.get("memory", {}).get("method") for m in (results.get("models") or {}).values() if m.get("memory")), ""
    )
    note = (
        f"Latency: greedy decoding of one sequence at a time (batch 1), mean over the first test examples; "
        f"inference tokens/s: batched greedy decoding of the test set. Memory: {method}. Train MFLOP/token: "
        f"matrix products and attention of one training forward + backward per target token, counted by "
        f"PyTorch's FlopCounterMode on a full batch (element-wise work not counted)."
    )
    return note + "\n\n" + md_table(header, rows), f"<p>{html.escape(note)}</p>" + html_table(header, rows)


def _scaling(results: dict) -> tuple[str, str]:
    scaling = results.get("scaling") or {}
    setup = scaling.get("setup") or {}
    header = [
        "architecture",
        "params",
        "time slope (fit, R²)",
        "time bends at T",
        "memory slope (fit, R²)",
        "memory bends at T",
        "sequential steps at T=min..max",
        "longest T measured",
    ]
    rows = []
    for c in scaling.get("curves", []):
        seq = c.get("sequential_steps") or []
        measured = [t for t, v in zip(c.get("lengths", []), c.get("step_ms", []), strict=False) if v is not None]
        rows.append(
            [
                c["label"],
                fmt(c.get("params")),
                _fit_text(c.get("bend")),
                fmt((c.get("bend") or {}).get("bend_at")),
                _fit_text(c.get("memory_bend")),
                fmt((c.get("memory_bend") or {}).get("bend_at")),
                f"{fmt(seq[0])} … {fmt(seq[-1])}" if seq else "–",
                fmt(max(measured) if measured else None),
            ]
        )
    what = setup.get("what", "")
    note = (
        f"{what[:1].upper() + what[1:]}; batch {setup.get('batch_size', '?')}, width {setup.get('d_model', '?')}, "
        f"{setup.get('layers', '?')} layers, on {setup.get('device', '?')}. Slope = d log(cost) / d log(T), a "
        "least-squares fit over the longest four lengths (1 = linear, 2 = quadratic), with its R². "
        "Recurrent models need O(T) sequential steps; attention needs O(1) in T, paying O(T²) work and memory "
        "for the scores." + _scaling_order(scaling.get("curves", []), str(setup.get("device", "")))
    )
    return note + "\n\n" + md_table(header, rows), f"<p>{html.escape(note)}</p>" + html_table(header, rows)


def _scaling_order(curves: list[dict], device: str) -> str:
    """The measured order of the training-step times at the longest length every architecture reached."""
    common = (
        set.intersection(
            *(
                {t for t, v in zip(c.get("lengths", []), c.get("step_ms", []), strict=False) if v is not None}
                for c in curves
            )
        )
        if curves
        else set()
    )
    if len(curves) < 2 or not common:
        return ""
    longest = max(common)
    times = sorted((c["step_ms"][c["lengths"].index(longest)], c["label"]) for c in curves)
    order = ", ".join(f"{label} {fmt(ms)} ms" for ms, label in times)
    text = f" At T = {longest} (the longest every architecture reached) a training step takes: {order}."
    if device == "cpu":
        text += (
            " On a CPU nothing runs in parallel across time steps either way, so time mostly follows the "
            "FLOPs (the report's FLOPs column) and the number of small sequential steps."
        )
    return text


def _probes(results: dict) -> tuple[str, str]:
    md_parts, html_parts = [], []
    for task, probe in (results.get("probes") or {}).items():
        if not isinstance(probe, dict) or not probe.get("accuracy"):
            continue
        header = ["model", "params"] + [f"d={d}" for d in probe["distances"]]
        rows = [
            [m, fmt((probe.get("params") or {}).get(m))] + [fmt(a, 2) for a in acc]
            for m, acc in probe["accuracy"].items()
        ]
        note = f"**{task}**: {probe.get('description', '')}"
        md_parts.append(note + "\n\n" + md_table(header, rows))
        html_parts.append(f"<p>{_md_inline(note)}</p>" + html_table(header, rows))
    study = results.get("probe_study") or []
    if study:
        header, rows = probe_study_rows(study)
        note = (
            f"**Saved full study** (not this run: `qkv probe` runs in `results/probes/study/`, ~40k parameters "
            f"each, trained until solved or a step cap): steps to reach {SOLVED:g} % -- exact match for "
            "assoc-recall, token accuracy for the copy probes -- or '> cap (accuracy at the cap)'. Where several "
            "runs exist (another cap or learning rate), the one that solved it soonest, else the largest cap; "
            "each file in that folder names its command."
        )
        if any(r["model"] == "transformer-causal" for r in study):
            note += (
                " transformer-causal is the encoder-decoder with its encoder's self-attention made causal: the "
                "recall lookup needs each value's state to hold the key before it, which a bidirectional encoder "
                "does not learn to put there (docs/compare.md, 'Multi-query recall')."
            )
        md_parts.append(note + "\n\n" + md_table(header, rows))
        html_parts.append(f"<p>{_md_inline(note)}</p>" + html_table(header, rows))
    return "\n\n".join(md_parts), "".join(html_parts)


def probe_study_rows(study: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The saved study as one row per (probe, length) and one column per model."""
    models = sorted({r["model"] for r in study}, key=model_rank)
    cells: dict[tuple[str, int], dict[str, str]] = {}
    for r in study:
        cells.setdefault((r["probe"], r["length"]), {})[r["model"]] = study_cell(r)
    rows = [[probe, str(length)] + [c.get(m, "–") for m in models] for (probe, length), c in sorted(cells.items())]
    return ["probe", "T"] + models, rows


def _attention(results: dict) -> tuple[str, str]:
    maps = results.get("attention") or {}
    with_maps = [m for m, v in maps.items() if v]
    without = [m for m in (results.get("models") or {}) if m not in with_maps]
    note = (
        f"Cross-attention of {', '.join(with_maps) or 'no model'} on test examples (rows: output tokens; "
        "columns: input tokens; Transformer maps are the mean over the heads of the last decoder layer)."
    )
    if without:
        note += (
            f" No map for {', '.join(without)}: no attention (a single fixed-size vector links encoder and decoder)."
        )
    return note, f"<p>{html.escape(note)}</p>"


def _fit_text(bend: dict | None) -> str:
    fit = (bend or {}).get("fit")
    if fit:
        return f"{fit['slope']:.2f} (R² {fit['r2']:.2f})"
    return fmt((bend or {}).get("final_slope"))


_BODIES = {
    "quality": _quality,
    "examples": _examples,
    "cost": _cost,
    "scaling": _scaling,
    "probes": _probes,
    "attention": _attention,
}


def _md_inline(text: str) -> str:
    """Escape, then turn ``**bold**`` into <b> (the only markup the section notes use)."""
    parts = html.escape(text).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


# ----------------------------------------------------------------------------------------------
# Writing


def write_report(results: dict, out_dir: str | Path) -> dict[str, str]:
    """Write figures (PNG), ``report.html``, ``report.md`` and ``results.json`` into ``out_dir``.

    Returns figure name -> path relative to ``out_dir`` (also stored in ``results["figures"]``).
    """
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    pngs: dict[str, bytes] = {}
    for name, fig in make_figures(results).items():
        pngs[name] = figures.png_bytes(figures.stamp(fig, provenance_line(results)))
        with atomic_open(out_dir / "figures" / f"{name}.png") as f:
            f.write(pngs[name])
    results["figures"] = {name: f"figures/{name}.png" for name in pngs}
    _write_text_atomic(out_dir / "report.md", render_markdown(results))
    _write_text_atomic(out_dir / "report.html", render_html(results, pngs))
    write_json_atomic(out_dir / "results.json", results)
    return results["figures"]


def _headline(results: dict) -> str:
    cfg, machine = results.get("config") or {}, results.get("machine") or {}
    provenance = results.get("provenance") or {}
    status = results.get("status", "?")
    took = results.get("wall_seconds")
    return (
        f"Status: {status}"
        + (f" after {took:.0f} s" if isinstance(took, (int, float)) else "")
        + f". Models: {', '.join(cfg.get('models', []))}. Budget: {cfg.get('budget_text', '?')}. "
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"torch {machine.get('torch', '?')} ({machine.get('threads', '?')} threads), "
        f"device {machine.get('device', '?')}."
        + (f" Command: `{provenance['command']}`." if provenance.get("command") else "")
        + (f" Commit: `{provenance['commit']}`." if provenance.get("commit") else "")
        + _recipes_text(cfg.get("recipes"))
    )


def provenance_line(results: dict) -> str:
    """One line naming what made a report's figures: command, task, machine, commit (what is known)."""
    machine, provenance = results.get("machine") or {}, results.get("provenance") or {}
    parts = [
        provenance.get("command") or f"qkv compare --task {(results.get('config') or {}).get('task', '?')}",
        f"{machine.get('cpu', '?')}, {machine.get('threads', '?')} threads, torch {machine.get('torch', '?')}",
    ]
    if provenance.get("commit"):
        parts.append(f"commit {provenance['commit'][:12]}")
    return " · ".join(parts)


def _recipes_text(recipes: dict | None) -> str:
    """The sweep's recipes the models trained with (``qkv compare --recipes``), or nothing."""
    if not recipes or not recipes.get("points"):
        return ""
    chosen = "; ".join(
        f"{model} " + ", ".join(f"{k}={v:g}" for k, v in point.items()) for model, point in recipes["points"].items()
    )
    return f" Recipes chosen by a sweep on validation data ({recipes.get('source')}): {chosen}."


def _md_anchor(key: str) -> str:
    """The Markdown heading anchor of a report section (GitHub's rule: lower case, spaces -> dashes)."""
    title = dict(SECTIONS).get(key, key)
    return "".join(ch for ch in title.lower().replace(" ", "-") if ch.isalnum() or ch in "-_")


def render_markdown(results: dict) -> str:
    task = (results.get("task") or {}).get("name", "?")
    out = [f"# qkv compare: {task}", "", _headline(results), ""]
    out += ["## Conclusion", ""] + [f"- {c.text} ([{c.anchor}](#{_md_anchor(c.anchor)}))" for c in conclusion(results)]
    out += [""]
    header, rows = summary_rows(results)
    out += ["## Summary", "", md_table(header, rows), ""]
    for key, title in SECTIONS:
        out += [f"## {title}", ""]
        status = _status(results, key)
        if status != "done":
            out += [f"*{status}*", ""]
        md, _ = _BODIES[key](results)
        if md:
            out += [md, ""]
        for fig in _section_figures(key):
            if fig in (results.get("figures") or {}):
                out += [f"![{fig}]({results['figures'][fig]})", ""]
    out += [
        "## Setup",
        "",
        "```json",
        json.dumps({"config": results.get("config"), "machine": results.get("machine")}, indent=1, default=str),
        "```",
        "",
    ]
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right;vertical-align:top}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
table.text td,table.text th{text-align:left;font-family:ui-monospace,Menlo,Consolas,monospace}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.status{display:inline-block;padding:.1em .5em;border-radius:.3em;background:#fde2e2;color:#900;font-size:.85em}
.ok{background:#e2f5e2;color:#060}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.8em}
nav a{margin-right:1em}
"""


def render_html(results: dict, pngs: dict[str, bytes] | None = None) -> str:
    """The self-contained page: inline CSS, figures as base64 data URIs, all text escaped."""
    pngs = pngs or {}
    task = (results.get("task") or {}).get("name", "?")
    header, rows = summary_rows(results)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>qkv compare: {html.escape(task)}</title><style>{_CSS}</style></head><body>",
        f"<h1>qkv compare: {html.escape(task)}</h1>",
        f"<p>{html.escape(_headline(results))}</p>",
        "<nav>"
        + "".join(f'<a href="#{k}">{html.escape(t)}</a>' for k, t in SECTIONS)
        + '<a href="#setup">Setup</a></nav>',
        '<section id="conclusion"><h2>Conclusion</h2><ul>',
        *[
            f'<li>{_md_inline(c.text)} <a href="#{c.anchor}">({html.escape(c.anchor)})</a></li>'
            for c in conclusion(results)
        ],
        "</ul></section>",
        '<section id="summary"><h2>Summary</h2>',
        html_table(header, rows),
        "</section>",
    ]
    for key, title in SECTIONS:
        status = _status(results, key)
        badge = f'<span class="status{" ok" if status == "done" else ""}">{html.escape(status)}</span>'
        parts.append(f'<section id="{key}"><h2>{html.escape(title)} {badge}</h2>')
        _, body = _BODIES[key](results)
        parts.append(body)
        for fig in _section_figures(key):
            if fig in pngs:
                data = base64.b64encode(pngs[fig]).decode("ascii")
                parts.append(f'<img alt="{html.escape(fig)}" src="data:image/png;base64,{data}">')
        parts.append("</section>")
    setup = json.dumps(
        {"config": results.get("config"), "machine": results.get("machine"), "sections": results.get("sections")},
        indent=1,
        default=str,
    )
    parts += ['<section id="setup"><h2>Setup</h2>', f"<pre>{html.escape(setup)}</pre></section>", "</body></html>"]
    return "\n".join(parts)
