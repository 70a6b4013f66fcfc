"""The recipe sweep: a small grid of training settings per architecture, chosen on validation data.

A comparison is only fair if every family trains with a recipe that suits it at the budget being compared
(Melis et al. 2018, "On the State of the Art of Evaluation in Neural Language Models", showed that tuning
alone reorders architectures). ``qkv sweep`` trains each architecture at every point of a small grid --
peak learning rate, warmup steps, dropout, width, depth -- for the same budget ``qkv compare`` uses,
scores each run on the **validation** split (the test split is never looked at), and writes the winner
per architecture to ``sweep.json``. ``qkv compare --recipes sweep.json`` then trains with those winners.

Everything else -- data, tokenizer, batch size, the family's schedule kind and optimizer -- is the
comparison's own (:mod:`qkv.compare.recipes`), so a sweep changes only what its grid names. The sweep
is resumable: a finished point is kept in ``sweep.json`` (written atomically after every run) and is not
trained again when the same command runs a second time.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qkv.compare.budget import Budget, Stopwatch
from qkv.compare.budgeted import train_with_budget
from qkv.compare.report import fmt, md_table, write_json_atomic
from qkv.errors import UserError
from qkv.models.config import TRANSFORMER_NAMES
from qkv.training.config import Config

# grid key -> what it sets (the documentation of --grid)
GRID_KEYS: dict[str, str] = {
    "lr": "optim.lr, the peak learning rate",
    "warmup": "schedule.warmup_steps",
    "dropout": "model.dropout",
    "width": "model.d_model (Transformers: d_ff keeps its ratio to it; recurrent: hidden_size too)",
    "layers": "layers per Transformer stack (prefix-lm: twice, its one stack) or recurrent layers",
}
INTEGER_KEYS = ("warmup", "width", "layers")
Point = dict[str, float]


def parse_grid(text: str) -> dict[str, list[float]]:
    """``"lr=1e-3,3e-3;warmup=20,60"`` -> ``{"lr": [0.001, 0.003], "warmup": [20.0, 60.0]}``.

    Axes are separated by ``;``, values by ``,``. Unknown keys, repeated keys, non-numbers and values out of
    range are a :class:`UserError` naming the axis.
    """
    grid: dict[str, list[float]] = {}
    for axis in (part.strip() for part in text.split(";")):
        if not axis:
            continue
        key, sep, values = axis.partition("=")
        key = key.strip()
        if not sep or key not in GRID_KEYS:
            raise UserError(f"--grid {axis!r}: expected KEY=V1,V2,.. with KEY one of {', '.join(GRID_KEYS)}")
        if key in grid:
            raise UserError(f"--grid: {key} given twice")
        try:
            numbers = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise UserError(f"--grid {key}: values must be numbers, got {values!r}") from None
        if not numbers:
            raise UserError(f"--grid {key}: no values")
        for v in numbers:
            _check_value(key, v)
        grid[key] = list(dict.fromkeys(numbers))  # a value given twice is one grid point, trained once
    if not grid:
        raise UserError(f"--grid {text!r}: no axes; e.g. --grid 'lr=1e-3,3e-3;warmup=20,60'")
    return grid


def _check_value(key: str, value: float) -> None:
    if not math.isfinite(value) or value < 0 or (key != "warmup" and key != "dropout" and value == 0):
        raise UserError(f"--grid {key}={value:g}: out of range")
    if key in INTEGER_KEYS and value != int(value):
        raise UserError(f"--grid {key}={value:g}: must be a whole number")
    if key == "dropout" and value >= 1:
        raise UserError(f"--grid dropout={value:g}: must be below 1")


def grid_points(grid: Mapping[str, list[float]]) -> list[Point]:
    """Every combination of the grid's values, in a stable order (the first axis varies slowest)."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def point_label(point: Mapping[str, float]) -> str:
    """``{"lr": 0.003, "warmup": 60}`` -> ``"lr=0.003,warmup=60"`` (a run folder name and a table cell)."""
    return ",".join(f"{k}={v:g}" for k, v in point.items())


def apply_point(config: Config, point: Mapping[str, float]) -> Config:
    """A copy of ``config`` with the point's settings; the rest of the recipe is unchanged."""
    config = copy.deepcopy(config)
    model = config.model
    transformer = model.name in TRANSFORMER_NAMES
    for key, value in point.items():
        if key == "lr":
            config.optim.lr = float(value)
        elif key == "warmup":
            config.schedule.warmup_steps = int(value)
        elif key == "dropout":
            model.dropout = float(value)
        elif key == "width":
            width = int(value)
            if transformer:
                if width % model.n_heads:
                    raise UserError(f"--grid width={width}: must be a multiple of the {model.n_heads} heads")
                model.d_ff = width * max(model.d_ff // model.d_model, 1)
            else:
                model.hidden_size = width
            model.d_model = width
        elif key == "layers":
            layers = int(value)
            if not transformer:
                model.n_rnn_layers = layers
            elif model.name == "prefix-lm":
                model.n_decoder_layers = 2 * layers
            else:
                model.n_encoder_layers = model.n_decoder_layers = layers
        else:  # parse_grid admits only GRID_KEYS
            raise UserError(f"unknown sweep key {key!r}")
    try:
        model.validate()
    except ValueError as err:
        raise UserError(f"--grid {point_label(point)} does not fit model {model.name}: {err}") from None
    return config


@dataclass
class SweepOptions:
    task: str = "g2p"
    models: list[str] = field(default_factory=lambda: ["transformer", "gru-attention"])
    grid: dict[str, list[float]] = field(default_factory=lambda: {"lr": [1e-3, 3e-3]})
    budget: Budget = field(default_factory=lambda: Budget("seconds", 20.0))
    out: Path = Path("runs/sweep")
    seed: int = 1
    device: str = "auto"
    data_dir: str | None = None
    command: str = ""


def _better(a: float, b: float, higher_is_better: bool) -> bool:
    return a > b if higher_is_better else a < b


def best_points(runs: list[dict], higher_is_better: bool) -> dict[str, dict]:
    """The run with the best validation metric per model (ties: the earlier grid point)."""
    best: dict[str, dict] = {}
    for run in runs:
        if run.get("valid") is None:
            continue
        current = best.get(run["model"])
        if current is None or _better(run["valid"], current["valid"], higher_is_better):
            best[run["model"]] = run
    return best


def sweep_budget(path: str | Path) -> dict | None:
    """The training budget a sweep chose its recipes at (``{"kind", "amount"}``), if it says."""
    import json

    try:
        budget = json.loads(Path(path).read_text()).get("budget")
    except (OSError, ValueError, AttributeError):
        return None
    return budget if isinstance(budget, dict) else None


def load_recipes(path: str | Path, task: str | None = None) -> dict[str, Point]:
    """``qkv compare --recipes FILE``: model -> the winning grid point of a sweep's ``sweep.json``.

    With ``task``, a sweep made for another task is refused (its recipes were chosen on other data). Every
    value is checked as ``--grid`` checks it; a model name qkv does not know is refused."""
    import json

    from qkv.compare.study import SEQ2SEQ_MODELS

    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"--recipes {path}: no such file (write one with `qkv sweep --out DIR`)") from None
    except (OSError, ValueError) as err:
        raise UserError(f"--recipes {path}: not a readable sweep.json ({err})") from None
    if task is not None and isinstance(data, dict) and data.get("task") != task:
        raise UserError(f"--recipes {path}: the sweep was for --task {data.get('task')}, not {task}")
    best = data.get("best") if isinstance(data, dict) else None
    if not isinstance(best, dict) or not best:
        raise UserError(f"--recipes {path}: no 'best' recipes in it (did the sweep finish a run?)")
    recipes: dict[str, Point] = {}
    for model, entry in best.items():
        if model not in SEQ2SEQ_MODELS:
            raise UserError(f"--recipes {path}: best.{model}: not a model qkv compare trains")
        point = entry.get("point") if isinstance(entry, dict) else None
        if not isinstance(point, dict) or any(k not in GRID_KEYS for k in point):
            raise UserError(f"--recipes {path}: best.{model}.point is not a grid point")
        recipes[model] = {}
        for key, value in point.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserError(f"--recipes {path}: best.{model}.point.{key} must be a number, got {value!r}")
            try:
                _check_value(key, float(value))
            except UserError as err:
                raise UserError(f"--recipes {path}: best.{model}.point: {err}") from None
            recipes[model][key] = float(value)
    return recipes


class Sweep:
    """``Sweep(options).run()`` trains every (model, grid point), scores it on validation data, writes
    ``sweep.json`` and ``sweep.md`` under ``options.out``, and returns the results dict."""

    def __init__(self, options: SweepOptions, log: Callable[[str], None] = print) -> None:
        from qkv.compare.study import StudyOptions

        # the comparison's own checks of task, models and device (one place for them)
        StudyOptions(task=options.task, models=list(options.models), device=options.device).check()
        self.options, self.log = options, log
        self.out = Path(options.out)
        self.path = self.out / "sweep.json"
        self.points = grid_points(options.grid)
        for model in options.models:  # every point must fit every model before anything trains
            study = self._study(model)
            for point in self.points:
                apply_point(study.run_config(model), point)
        self.results: dict[str, Any] = {
            "qkv_sweep": 1,
            "task": options.task,
            "models": list(options.models),
            "grid": options.grid,
            "budget": {"kind": options.budget.kind, "amount": options.budget.amount},
            "budget_text": options.budget.describe(),
            "seed": options.seed,
            "selection": "validation split (the test split is not used)",
            "command": options.command,
            "runs": [],
            "best": {},
        }
        self._resume()

    def _same_setup(self, old: dict) -> bool:
        return all(old.get(k) == self.results[k] for k in ("task", "budget", "seed"))

    def _resume(self) -> None:
        """Keep the finished runs of an earlier, identical sweep (same task, budget and seed)."""
        import json

        if not self.path.exists():
            return
        try:
            old = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return  # an unreadable file is replaced, never trusted
        if isinstance(old, dict) and self._same_setup(old):
            self.results["runs"] = [r for r in old.get("runs", []) if r.get("valid") is not None or r.get("error")]
            for key in ("metric", "higher_is_better"):
                if key in old:
                    self.results[key] = old[key]

    def _done(self, model: str, point: Point) -> bool:
        return any(r["model"] == model and r["point"] == point for r in self.results["runs"])

    def _study(self, model: str) -> Any:
        """The comparison this sweep tunes for, with one model: its task, plan and recipes."""
        from qkv.compare.study import Study, StudyOptions

        return Study(
            StudyOptions(
                task=self.options.task,
                models=[model],
                budget=self.options.budget,
                out=self.out,
                seed=self.options.seed,
                device=self.options.device,
                data_dir=self.options.data_dir,
                probes=False,
                scaling=False,
                progress=False,
            ),
            log=self.log,
        )

    def run(self) -> dict[str, Any]:
        from qkv.compare.study import resolve_device
        from qkv.machine import machine_info
        from qkv.training.loop import TrainingDiverged

        self.out.mkdir(parents=True, exist_ok=True)
        self.results["machine"] = machine_info(resolve_device(self.options.device))
        clock = Stopwatch()
        todo = [(m, p) for m in self.options.models for p in self.points if not self._done(m, p)]
        budget = self.options.budget.describe()
        self.log(f"sweep: {len(todo)} runs of {budget} ({len(self.points)} grid points per model)")
        for i, (model, point) in enumerate(todo, 1):
            study = self._study(model)
            config = apply_point(study.run_config(model), point)
            run_dir = self.out / "runs" / model / point_label(point)
            self.log(f"[{i}/{len(todo)}] {model} {point_label(point)}")
            try:
                # validated on the comparison's schedule and scored at its best checkpoint, as qkv compare does
                info = train_with_budget(
                    config, run_dir, study.plan.train, eval_every_seconds=study.plan.eval_every_seconds
                )
            except TrainingDiverged as err:  # a diverging setting is a result (never chosen), not the end
                self.results["runs"].append({"model": model, "point": dict(point), "valid": None, "error": str(err)})
                self._finish()
                self.log(f"      diverged: {err}")
                continue
            entry = {"model": model, "point": dict(point), **self._score(study, run_dir)}
            entry.update(steps=info["steps"], train_seconds=round(info["seconds"], 1))
            self.results["runs"].append(entry)
            self._finish()
            self.log(f"      valid {entry['metric']} {fmt(entry['valid'])}, {entry['steps']} steps")
        if not todo and self.results["runs"]:
            self._finish()
        self.results["wall_seconds"] = round(clock.elapsed(), 1)
        self._save()
        return self.results

    def _score(self, study: Any, run_dir: Path) -> dict[str, Any]:
        """Validation metric (greedy) of the best checkpoint (the one qkv compare scores), parameters and
        training FLOPs per token."""
        from qkv.compare import cost
        from qkv.data.tasks import is_seq2seq
        from qkv.training.run import load_run, split_examples

        run = load_run(run_dir, "best", device=study.device)
        task = run.task
        assert is_seq2seq(task), "qkv sweep trains seq2seq tasks"
        valid = split_examples(task, "valid", study.plan.max_eval_examples)
        src_ids = run.src_tok.encode_batch([e.src for e in valid])
        ids, _ = cost.timed_translate(run.model, src_ids, max_len=study.spec["decode_len"])
        scores = task.score([run.tgt_tok.decode(h) for h in ids], valid)
        tgt_ids = run.tgt_tok.encode_batch([e.tgt for e in valid])
        self.results["metric"] = run.task.primary_metric
        self.results["higher_is_better"] = bool(run.task.higher_is_better)
        return {
            "metric": run.task.primary_metric,
            "valid": float(scores[run.task.primary_metric]),
            "valid_examples": len(valid),
            "params": cost.count_params(run.model),
            "flops_per_token": cost.train_flops_per_token(run.model, src_ids, tgt_ids, study.plan.max_tokens),
        }

    def _finish(self) -> None:
        higher = bool(self.results.get("higher_is_better"))
        self.results["best"] = {
            m: {"point": r["point"], "valid": r["valid"]} for m, r in best_points(self.results["runs"], higher).items()
        }
        self._save()

    def _save(self) -> None:
        write_json_atomic(self.path, self.results)
        (self.out / "sweep.md").write_text(sweep_markdown(self.results))


def sweep_markdown(results: dict) -> str:
    """``sweep.md``: every run, the winner per model marked, and the command that made it."""
    metric = results.get("metric") or "metric"
    arrow = "↑" if results.get("higher_is_better") else "↓"
    best = results.get("best") or {}
    header = ["model", "setting", f"valid {metric} {arrow}", "params", "train MFLOP/token", "steps", "chosen"]
    rows = [
        [
            r["model"],
            point_label(r["point"]),
            fmt(r.get("valid")),
            fmt(r.get("params")),
            fmt(r["flops_per_token"] / 1e6) if r.get("flops_per_token") else "–",
            fmt(r.get("steps")),
            "**yes**"
            if (best.get(r["model"]) or {}).get("point") == r["point"]
            else ("diverged" if r.get("error") else ""),
        ]
        for r in results.get("runs", [])
    ]
    lines = [
        f"# Recipe sweep: {results.get('task')}, {results.get('budget_text')}",
        "",
        f"Chosen on the {results.get('selection')}. Command: `{results.get('command') or 'qkv sweep'}`",
        "",
        md_table(header, rows),
        "",
        "Use the chosen recipes: `qkv compare --recipes sweep.json` (same task and budget).",
        "",
    ]
    return "\n".join(lines)


def run_sweep(options: SweepOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    return Sweep(options, log).run()
