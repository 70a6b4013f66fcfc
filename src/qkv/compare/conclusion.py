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
from qkv.compare.significance import p_text

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


def _find_pair(results: dict, a: str, b: str) -> dict | None:
    """The significance table's entry for models ``a`` and ``b`` (in either order)."""
    for pair in (results.get("significance") or {}).get("pairs", []):
        if {pair["a"], pair["b"]} == {a, b}:
            return pair
    return None


def _pair(results: dict, a: str, b: str, metric: str) -> dict | None:
    pair = _find_pair(results, a, b)
    return pair[metric] if pair and metric in pair else None


def _seed_pair(results: dict, a: str, b: str) -> dict | None:
    """Welch's test over the seeds of ``a`` and ``b``, its delta read as ``a - b``."""
    pair = _find_pair(results, a, b)
    if not pair or not pair.get("seeds"):
        return None
    return {**pair["seeds"], "delta": pair["seeds"]["delta"] if pair["a"] == a else -pair["seeds"]["delta"]}


def _bootstrap_p(pair: dict, n_pairs: int) -> str:
    """The paired bootstrap's p as the verdict uses it: Holm-adjusted over the table's pairs when it was."""
    if "p_holm" in pair and pair["p_holm"] != pair["p_value"]:
        return f"{p_text(pair['p_holm'])}, Holm-adjusted over {n_pairs} pairs"
    return p_text(pair["p_value"])


def _verdict(results: dict, best: str, other: str, metric: str, higher: bool, by_seeds: bool) -> str:
    """Whether ``best`` is ahead of ``other`` beyond the noise: the paired bootstrap (test-set noise) and,
    with several seeds, Welch's t-test over the seeds (training noise); both must agree."""
    pair = _pair(results, best, other, metric)
    if pair is None:
        return ""
    bootstrap = _bootstrap_p(pair, len((results.get("significance") or {}).get("pairs", [])))
    if not by_seeds:
        if pair["significant"]:
            return f"; the difference is significant (paired bootstrap {bootstrap})"
        return (
            f"; the difference is **not** significant (paired bootstrap {bootstrap}): at this budget and "
            "test size the two cannot be told apart"
        )
    seeds = _seed_pair(results, best, other)
    if seeds is None:
        return ""
    ahead_on_seed1 = _pair_delta(results, best, other, metric)
    same_sign = ahead_on_seed1 is not None and (ahead_on_seed1 > 0) == higher and ahead_on_seed1 != 0
    tests = f"Welch's t-test over the seeds {p_text(seeds['p_value'])}; paired bootstrap on the first seed {bootstrap}"
    if seeds["significant"] and pair["significant"] and same_sign:
        return f"; the difference is significant ({tests})"
    return f"; the difference is **not** significant ({tests}): the two cannot be told apart"


def _pair_delta(results: dict, a: str, b: str, metric: str) -> float | None:
    """The paired test's ``a - b`` on the first seed's outputs."""
    pair = _find_pair(results, a, b)
    if not pair or metric not in pair:
        return None
    return pair[metric]["delta"] if pair["a"] == a else -pair[metric]["delta"]


def quality_sentences(results: dict) -> list[Sentence]:
    """Who wins at this budget, by how much, and whether beyond the noise. With ``--seeds N`` the ranking
    and gaps are the seeds' means, and a verdict needs the seeds to agree (Welch) as well as the test set."""
    task = results.get("task") or {}
    metric, higher = task.get("metric"), bool(task.get("higher_is_better"))
    scored = {
        name: m["test"]
        for name, m in (results.get("models") or {}).items()
        if (m.get("test") or {}).get("greedy", {}).get(metric) is not None
    }
    if not metric or not scored:
        return []
    seeds = {n: (results["models"][n].get("seeds") or {}) for n in scored}
    by_seeds = all(len(v.get("values") or []) >= 2 for v in seeds.values())

    def value(name: str) -> float:
        return seeds[name]["mean"] if by_seeds else scored[name]["greedy"][metric]

    def shown(name: str) -> str:
        if by_seeds:
            v = seeds[name]
            return f"{_num(v['mean'])} ± {_num(v['std'])} (mean ± sd over {len(v['values'])} seeds)"
        return f"{_num(value(name))}{_interval(scored[name], metric)}"

    ranked = sorted(scored, key=value, reverse=higher)
    budget = (results.get("config") or {}).get("budget_text", "this budget")
    best = ranked[0]
    text = (
        f"With {budget}, **{best}** has the best test {metric.upper()}: {shown(best)} on "
        f"{task.get('test_examples', '?')} test examples (greedy)"
    )
    if not by_seeds and any(seeds.values()):
        text += (
            " (seeds: "
            + "; ".join(
                f"{n}: mean {_num(v['mean'])} ± {_num(v['std'])} over {len(v['values'])}" for n, v in seeds.items() if v
            )
            + ")"
        )
    if len(ranked) == 1:
        return [Sentence(text + ".", "quality")]
    out = []
    for other in ranked[1:]:
        gap = abs(value(best) - value(other))
        verdict = _verdict(results, best, other, metric, higher, by_seeds)
        out.append(f"{other} {shown(other)}, {_num(gap)} points behind{verdict}")
    text += "; " + "; ".join(out) + "."
    if not by_seeds:
        text += (
            " One training run per model: the p-values cover which test examples were drawn, not how much "
            "another seed would move each model (`--seeds N` measures that)."
        )
    sentences = [Sentence(text, "quality")]
    beam_sentence = _beam_sentence(scored[best], best, metric, higher, task.get("beam_examples", "?"))
    return sentences + ([beam_sentence] if beam_sentence else [])


def _beam_sentence(test: dict, name: str, metric: str, higher: bool, n: Any) -> Sentence | None:
    """What beam search changes for the winner, on the same first examples, and whether beyond the noise."""
    beam = test.get("beam", {}).get(metric)
    same = test.get("greedy_on_beam_examples", {}).get(metric)
    if beam is None or same is None:
        return None
    change = "improves" if (beam > same) == higher and beam != same else ("leaves" if beam == same else "worsens")
    text = (
        f"Beam search (size {test.get('beam_size', '?')}) {change} {name}'s {metric.upper()} on the same first "
        f"{n} test examples: {_num(same)} greedy, {_num(beam)} beam"
    )
    paired = test.get("beam_vs_greedy")
    if paired and beam != same:
        text += (
            f" (significant, paired bootstrap {p_text(paired['p_value'])})"
            if paired["significant"]
            else f" (**not** significant, paired bootstrap {p_text(paired['p_value'])}: "
            f"inside the noise of {n} examples)"
        )
    return Sentence(text + ".", "quality")


def ladder_sentences(results: dict) -> list[Sentence]:
    """Who leads at each rung of the budget ladder. A rung's leader counts only when its paired bootstrap
    against the runner-up is significant; otherwise that rung has no clear leader."""
    ladder = results.get("ladder") or {}
    rungs = ladder.get("rungs") or []
    if len(rungs) < 2:
        return []
    tested = any(r.get("test") for r in rungs)
    leaders = []
    for r in rungs:
        if not r.get("leader"):
            continue
        test = r.get("test")
        clear = test is None and not tested or bool(test and test["significant"])
        leaders.append((r["budget_text"], r["leader"], clear, test))
    if not leaders:
        return []
    if not tested:  # results from before the rungs were tested: the leaders as measured, no verdict
        flips = [
            f"{p[1]} leads at {p[0]}, **{c[1]}** from {c[0]}"
            for p, c in zip(leaders, leaders[1:], strict=False)
            if p[1] != c[1]
        ]
        if flips:
            return [Sentence("On the budget ladder the ranking changes: " + "; ".join(flips) + ".", "quality")]
        return [
            Sentence(
                f"On the budget ladder ({', '.join(b for b, *_ in leaders)}) **{leaders[0][1]}** leads at every rung.",
                "quality",
            )
        ]
    parts = []
    for budget, leader, clear, test in leaders:
        if test is None:
            parts.append(f"{budget}: {leader} (not tested)")
        elif clear:
            parts.append(f"{budget}: **{leader}**, significantly ahead of {test['b']} ({p_text(test['p_value'])})")
        else:
            parts.append(
                f"{budget}: no clear leader ({leader} ahead of {test['b']} by {_num(abs(test['delta']))}, "
                f"{p_text(test['p_value'])})"
            )
    clear_leaders = {leader for _, leader, clear, _ in leaders if clear}
    if len(clear_leaders) == 1 and all(clear for *_, clear, _ in leaders):
        head = f"On the budget ladder **{leaders[0][1]}** leads at every rung, significantly"
    elif len(clear_leaders) > 1:
        head = "On the budget ladder the ranking changes"
    else:
        head = "On the budget ladder"
    return [Sentence(f"{head} (paired bootstrap, leader against runner-up): " + "; ".join(parts) + ".", "quality")]


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
    """The converged reference runs on the comparison's data, each naming its data, test size and decoding."""
    out = []
    for ref in results.get("reference_results") or []:
        metrics = ", ".join(f"{k} {_num(v)}" for k, v in ref.get("metrics", {}).items())
        data = ", ".join(f"{k} {v}" for k, v in (ref.get("data") or {}).items())
        examples = f"{ref['examples']:,} {ref['split']} examples" if ref.get("examples") else ref["split"]
        where = f"{examples}{', ' + data if data else ''}, {ref.get('decoding', '?')}"
        if ref.get("baseline"):
            out.append(
                Sentence(
                    f"Reference baseline (nothing trained): {ref['model']} reaches {metrics} on {where} "
                    f"(`{ref['command']}`; results/{ref['recipe']}).",
                    "quality",
                )
            )
            continue
        out.append(
            Sentence(
                f"Converged reference run (not budgeted): {ref['model']} reaches {metrics} on {where} "
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
