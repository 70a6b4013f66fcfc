"""The report's conclusion, written from the results and never by hand.

:func:`conclusion` reads a ``results.json`` dict and returns plain sentences, each pointing at the table
or figure it comes from (the section anchor of the report). It says which model wins at this budget and
by how much, whether the difference is significant (paired bootstrap, :mod:`qkv.compare.significance`),
where the ranking changes as the budget grows (the budget ladder), what the probes and the scaling study
show, and the converged reference result for the task when the repository holds one. A missing
section is skipped, so a partial report still gets the sentences its data supports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qkv.compare.probe_study import model_rank

SOLVED = 0.99  # probe accuracy that counts as solved


@dataclass(frozen=True)
class Sentence:
    text: str  # Markdown inline (**bold** only)
    anchor: str  # the report section it comes from


def _num(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.2f}"


def _interval(test: dict, metric: str) -> str:
    ci = (test.get("interval") or {}).get(metric)
    return f" (95% CI {_num(ci['low'])}–{_num(ci['high'])})" if ci else ""


def _pair(results: dict, a: str, b: str, metric: str) -> dict | None:
    for pair in (results.get("significance") or {}).get("pairs", []):
        if {pair["a"], pair["b"]} == {a, b} and metric in pair:
            return pair[metric]
    return None


def quality_sentences(results: dict) -> list[Sentence]:
    task = results.get("task") or {}
    metric, higher = task.get("metric"), bool(task.get("higher_is_better"))
    scored = {
        name: m["test"]
        for name, m in (results.get("models") or {}).items()
        if (m.get("test") or {}).get("greedy", {}).get(metric) is not None
    }
    if not metric or not scored:
        return []
    ranked = sorted(scored, key=lambda n: scored[n]["greedy"][metric], reverse=higher)
    budget = (results.get("config") or {}).get("budget_text", "this budget")
    best = ranked[0]
    value = scored[best]["greedy"][metric]
    text = (
        f"With {budget}, **{best}** has the best test {metric.upper()}: {_num(value)}"
        f"{_interval(scored[best], metric)} on {task.get('test_examples', '?')} test examples (greedy)"
    )
    out = []
    seeds = {n: (results["models"][n].get("seeds") or {}) for n in ranked}
    if any(seeds.values()):
        text += (
            " ("
            + "; ".join(
                f"{n}: mean {_num(v['mean'])} ± {_num(v['std'])} over {len(v['values'])} seeds"
                for n, v in seeds.items()
                if v
            )
            + ")"
        )
    if len(ranked) == 1:
        return [Sentence(text + ".", "quality")]
    for other in ranked[1:]:
        pair = _pair(results, best, other, metric)
        gap = abs(value - scored[other]["greedy"][metric])
        verdict = ""
        if pair is not None:
            verdict = (
                f"; the difference is significant (paired bootstrap p = {pair['p_value']:.3f})"
                if pair["significant"]
                else f"; the difference is **not** significant (p = {pair['p_value']:.2f}): at this budget and "
                "test size the two cannot be told apart"
            )
        out.append(
            f"{other} {_num(scored[other]['greedy'][metric])}{_interval(scored[other], metric)}, "
            f"{_num(gap)} points behind{verdict}"
        )
    sentences = [Sentence(text + "; " + "; ".join(out) + ".", "quality")]
    beam = scored[best].get("beam", {}).get(metric)
    same = scored[best].get("greedy_on_beam_examples", {}).get(metric)
    if beam is not None and same is not None:
        n = task.get("beam_examples", "?")
        change = "improves" if (beam > same) == higher and beam != same else ("leaves" if beam == same else "worsens")
        sentences.append(
            Sentence(
                f"Beam search (size {scored[best].get('beam_size', '?')}) {change} {best}'s {metric.upper()} "
                f"on the same "
                f"first {n} test examples: {_num(same)} greedy, {_num(beam)} beam.",
                "quality",
            )
        )
    return sentences


def ladder_sentences(results: dict) -> list[Sentence]:
    ladder = results.get("ladder") or {}
    rungs = ladder.get("rungs") or []
    if len(rungs) < 2:
        return []
    leaders = [(r["budget_text"], r["leader"]) for r in rungs if r.get("leader")]
    if not leaders:
        return []
    flips = [
        f"{prev[1]} leads at {prev[0]}, **{cur[1]}** from {cur[0]}"
        for prev, cur in zip(leaders, leaders[1:], strict=False)
        if prev[1] != cur[1]
    ]
    if flips:
        return [Sentence("On the budget ladder the ranking changes: " + "; ".join(flips) + ".", "quality")]
    return [
        Sentence(
            f"On the budget ladder ({', '.join(b for b, _ in leaders)}) **{leaders[0][1]}** leads at every rung.",
            "quality",
        )
    ]


def probe_sentences(results: dict) -> list[Sentence]:
    out = []
    for task, probe in (results.get("probes") or {}).items():
        if not isinstance(probe, dict) or not probe.get("accuracy"):
            continue
        distances = probe["distances"]
        parts = []
        for model, accuracy in probe["accuracy"].items():
            pairs = [(d, a) for d, a in zip(distances, accuracy, strict=False) if a is not None]
            if not pairs:
                continue
            if all(a >= SOLVED for _, a in pairs):
                parts.append(f"{model} solves it at every distance up to {pairs[-1][0]}")
            else:
                parts.append(
                    f"{model} goes from {pairs[0][1]:.2f} at distance {pairs[0][0]} to "
                    f"{pairs[-1][1]:.2f} at {pairs[-1][0]}"
                )
        solve = []
        for model, steps in (probe.get("steps_to_solve") or {}).items():
            runs = (probe.get("runs") or {}).get(model) or []
            if len(steps) == 1 and runs and len(runs[0].get("curve") or []) > 1:  # checked along the way
                solve.append(
                    f"{model} {steps[0]:,}" if steps[0] is not None else f"{model} not in {runs[0]['steps']:,}"
                )
        if solve:
            metric = str(probe.get("solve_metric", "exact_match")).replace("_", " ")
            parts.append(f"steps to solve ({probe.get('solved_at', 95):g}% {metric}): " + ", ".join(solve))
        if parts:
            out.append(Sentence(f"Probe **{task}** (accuracy against distance): " + "; ".join(parts) + ".", "probes"))
    return out


def probe_study_sentences(results: dict) -> list[Sentence]:
    """One sentence on the saved full probe study, at each probe's longest length."""
    study = results.get("probe_study") or []
    longest: dict[str, int] = {}
    for row in study:
        longest[row["probe"]] = max(longest.get(row["probe"], 0), row["length"])
    parts = []
    for probe, length in sorted(longest.items()):
        rows = sorted(
            (r for r in study if r["probe"] == probe and r["length"] == length), key=lambda r: model_rank(r["model"])
        )
        cells = ", ".join(
            f"{r['model']} solves it in {r['steps_to_solve']:,} steps"
            if r["steps_to_solve"] is not None
            else f"{r['model']} not in {r['cap']:,} ({r['final']:.0f} % at the cap)"
            for r in rows
        )
        parts.append(f"{probe} at T = {length}: {cells}")
    if not parts:
        return []
    return [
        Sentence(
            "The saved full probe study (not this run; `qkv probe` trained until solved or a cap, "
            "results/probes/study): " + "; ".join(parts) + ".",
            "probes",
        )
    ]


def scaling_sentences(results: dict) -> list[Sentence]:
    curves = (results.get("scaling") or {}).get("curves") or []
    parts = []
    for c in curves:
        fit = (c.get("bend") or {}).get("fit")
        if fit:
            parts.append(f"{c['label']} T^{fit['slope']:.2f} (R² {fit['r2']:.2f}, T = {fit['from']}–{fit['to']})")
    if not parts:
        return []
    return [
        Sentence(
            "Training-step time grows as " + "; ".join(parts) + ". Recurrent models take T sequential "
            "steps per sequence; attention takes a constant number, paying T² work for the scores.",
            "scaling",
        )
    ]


def reference_sentences(results: dict) -> list[Sentence]:
    out = []
    for ref in results.get("reference_results") or []:
        metrics = ", ".join(f"{k} {_num(v)}" for k, v in ref.get("metrics", {}).items())
        out.append(
            Sentence(
                f"Converged reference run (not budgeted): {ref['model']} on {ref['split']} reaches {metrics} "
                f"after {ref.get('train_seconds', 0) / 60:.0f} min of training (`{ref['command']}`; "
                f"results/{ref['recipe']}).",
                "quality",
            )
        )
    return out


def conclusion(results: dict[str, Any]) -> list[Sentence]:
    """Every sentence the results support, in reading order."""
    warnings = [Sentence(f"**Warning.** {w}", "setup") for w in results.get("warnings") or []]
    return (
        warnings
        + quality_sentences(results)
        + ladder_sentences(results)
        + reference_sentences(results)
        + probe_sentences(results)
        + probe_study_sentences(results)
        + scaling_sentences(results)
    )
