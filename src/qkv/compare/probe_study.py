"""The saved probe study: long, capped ``qkv probe`` runs that a budgeted comparison cannot afford.

A comparison's own probes get seconds per model, which buys a few hundred steps: enough to show which
architecture learns a probe fastest, not whether it can learn it at long range. The full study -- copy,
selective copy and associative recall up to 256 tokens, each (architecture, length) trained until solved
or a step cap -- lives in ``results/probes/study/*.json`` (one ``qkv probe`` results file each). This
module reads those files and reduces them to one row per (probe, length, model): its steps to solve at
the current bar (recomputed from the saved learning curve, so files written under another bar agree) or,
when it never got there, its accuracy at the cap. The report shows the rows beside its own probes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qkv.compare.probes import SOLVED, rate_text, solve_metric, steps_to_solve


@dataclass(frozen=True)
class StudyRow:
    """One (probe, length, model) of the saved study: solved in ``steps_to_solve`` steps, or not within
    ``cap`` (then ``final`` is the accuracy, in percent, at the cap), at Adam's rate ``lr``. ``probe`` is
    :func:`probe_label`; ``file`` is the results file."""

    probe: str
    length: int
    model: str
    params: int
    cap: int
    steps_to_solve: int | None
    metric: str
    final: float
    file: str
    lr: float


def study_root() -> Path:
    """``results/probes/study`` of the repository (``$QKV_RESULTS/probes/study`` when that is set)."""
    from qkv.results import results_root

    return results_root() / "probes" / "study"


def probe_label(data: dict[str, Any]) -> str:
    """The probe and the options that make it a different task: ``assoc-recall, 8 pairs among filler, 4
    queries`` is not ``assoc-recall`` with the context full of pairs."""
    options = (data.get("options") or [{}])[0]
    label = str(data["probe"])
    if options.get("num_pairs") is not None:
        label += f", {options['num_pairs']} pairs among filler"
    if int(options.get("num_queries", 1)) > 1:
        label += f", {options['num_queries']} queries"
    if options.get("echo_keys"):
        label += ", keys echoed"
    return label


def run_lr(data: dict[str, Any], run: dict[str, Any]) -> float:
    """The learning rate of one saved run: recorded with the run, else the ``--lr`` of the file's command,
    else 3e-3 (every model's rate before the probes had one per architecture)."""
    if run.get("lr") is not None:
        return float(run["lr"])
    words = str(data.get("command") or "").split()
    if "--lr" in words[:-1]:
        return float(words[words.index("--lr") + 1])
    return 3e-3


def _rows_of(path: Path, solved_at: float) -> list[StudyRow]:
    data: dict[str, Any] = json.loads(path.read_text())
    if "width" in (data.get("sizing") or {}):
        return []  # the table compares at equal size; equal-width runs are read on their own
    probe = probe_label(data)
    metric = solve_metric(str(data["probe"]))
    rows = []
    for model, runs in (data.get("runs") or {}).items():
        for run in runs:
            curve = run.get("curve") or []
            final = run.get(metric)
            if final is None:
                continue
            rows.append(
                StudyRow(
                    probe=probe,
                    length=int(run["length"]),
                    model=model,
                    params=int(run["params"]),
                    cap=int(data["budget"]["amount"]) if data["budget"]["kind"] == "steps" else int(run["steps"]),
                    steps_to_solve=steps_to_solve(curve, metric, solved_at),
                    metric=metric,
                    final=float(final),
                    file=path.name,
                    lr=run_lr(data, run),
                )
            )
    return rows


def _better(a: StudyRow, b: StudyRow) -> StudyRow:
    """Of two runs of the same (probe, length, model): the one that solved it in fewer steps, else the
    one given the larger cap (it says the most about whether the model gets there)."""
    if (a.steps_to_solve is None) != (b.steps_to_solve is None):
        return a if a.steps_to_solve is not None else b
    if a.steps_to_solve is not None and b.steps_to_solve is not None:
        return a if a.steps_to_solve <= b.steps_to_solve else b
    return a if (a.cap, a.final) >= (b.cap, b.final) else b


def load_probe_study(root: str | Path | None = None, solved_at: float = SOLVED) -> list[dict[str, Any]]:
    """One row per (probe, length, model) of the saved study at equal size, sorted; [] when there is none. A
    file that is not a ``qkv probe`` results file is skipped (the study folder also holds their text output),
    and so is a run at equal width (``qkv probe --width``)."""
    folder = Path(root) if root is not None else study_root()
    best: dict[tuple[str, int, str], StudyRow] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            rows = _rows_of(path, solved_at)
        except (KeyError, TypeError, ValueError):
            continue
        for row in rows:
            key = (row.probe, row.length, row.model)
            best[key] = _better(best[key], row) if key in best else row
    return [asdict(best[key]) for key in sorted(best)]


MODEL_ORDER = ("transformer", "transformer-causal", "prefix-lm", "gru-attention", "lstm-attention", "gru", "lstm")


def model_rank(model: str) -> tuple[int, str]:
    """Sort key: attention models first, in the comparison's usual order, then any other by name."""
    return (MODEL_ORDER.index(model), "") if model in MODEL_ORDER else (len(MODEL_ORDER), model)


def study_cell(row: dict[str, Any]) -> str:
    """``1,500 · lr 1e-3`` when solved, ``> 8,000 (81 %) · lr 3e-3`` when not: steps to solve, or the cap and
    the accuracy there, and the learning rate of that run."""
    rate = f" · lr {rate_text(row['lr'])}" if row.get("lr") is not None else ""
    if row["steps_to_solve"] is not None:
        return f"{row['steps_to_solve']:,}{rate}"
    return f"> {row['cap']:,} ({row['final']:.0f} %){rate}"


def sweep_winners(root: str | Path | None = None) -> dict[str, float]:
    """Each architecture's probe rate from the saved learning-rate sweeps (``lr-sweep-*.json`` in the study
    folder, written by ``qkv probe --lr r1,r2,...``): the rate that solved the most (probe, length)
    settings, then in the fewest steps summed over them (an unsolved setting counts its cap), then with the
    best accuracy summed over them, then the smaller rate. This is what
    :data:`qkv.compare.probes.PROBE_LRS` must hold (a test checks it)."""
    folder = Path(root) if root is not None else study_root()
    tally: dict[str, dict[float, list[float]]] = {}  # model -> rate -> [settings solved, steps, accuracy]
    for path in sorted(folder.glob("lr-sweep-*.json")) if folder.is_dir() else []:
        data = json.loads(path.read_text())
        metric = solve_metric(str(data["probe"]))
        for model, runs in data["runs"].items():
            for run in runs:
                for entry in run["lr_sweep"]:
                    solved = entry["steps_to_solve"]
                    counts = tally.setdefault(model, {}).setdefault(float(entry["lr"]), [0, 0, 0.0])
                    counts[0] += solved is not None
                    counts[1] += int(solved if solved is not None else entry["steps"])
                    counts[2] += float(entry.get(metric) or 0.0)
    return {
        model: min(rates, key=lambda lr: (-rates[lr][0], rates[lr][1], -rates[lr][2], lr))
        for model, rates in sorted(tally.items())
    }
