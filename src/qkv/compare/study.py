"""`qkv compare`: train several architectures on one task under an equal budget, and measure them.

The study answers, with measurements, what people ask about attention versus recurrence:

1. **quality** -- every model trains on the same data, tokenizer and metric for the same budget
   (:mod:`qkv.compare.budgeted`, qkv's own training loop); then the test metric with greedy and beam
   decoding, loss curves and the validation metric against wall-clock time, and outputs side by side;
2. **cost** -- parameters, training tokens/s, latency per sequence, inference tokens/s, peak memory
   (:mod:`qkv.compare.cost`);
3. **attention** -- cross-attention (alignment) maps of every model that has attention;
4. **probes** -- accuracy against dependency distance at equal parameter counts (:mod:`qkv.compare.probes`);
5. **scaling** -- training-step time, memory and sequential steps against sequence length
   (:mod:`qkv.compare.scaling`).

Each section is checkpointed: ``results.json`` is rewritten atomically after every model and every
section, so Ctrl-C (or a crash) leaves a valid partial report in which the missing sections say
"not run". A section that fails is recorded as failed and the others still run.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from qkv.compare import cost, report
from qkv.compare.budget import Budget, Stopwatch, StudyPlan, fit_probes, study_plan
from qkv.compare.budgeted import train_with_budget
from qkv.compare.recipes import model_config, optim_recipe
from qkv.compare.sweep import apply_point
from qkv.errors import UserError
from qkv.machine import commit, machine_info
from qkv.models.config import MODEL_NAMES, RECURRENT_LM_NAMES, ModelConfig
from qkv.special import BOS_ID, EOS_ID
from qkv.training.config import Config, EvalConfig, TaskConfig, TrainingConfig, to_dict

DEFAULT_MODELS = ("transformer", "prefix-lm", "gru-attention", "gru")
SEQ2SEQ_MODELS = tuple(m for m in MODEL_NAMES if m not in ("gpt", "encoder", *RECURRENT_LM_NAMES))


def _has_cross_attention(name: str) -> bool:
    """Does ``name`` have target-to-source attention weights to draw (an alignment map)?"""
    config = ModelConfig(name=name)
    if config.family == "recurrent":
        return config.attention not in (None, "none")
    return name == "transformer"  # prefix-lm attends over one stream; it has no cross-attention


ATTENTION_MODELS = tuple(m for m in SEQ2SEQ_MODELS if _has_cross_attention(m))

# Per task: options for qkv.data.get_task, the longest decoded output, the model's max_len, a description.
DATA_SEED = 1  # draws the g2p test subset (and a quick run's training subset), the same for every --seed

TASKS: dict[str, dict[str, Any]] = {
    "g2p": {
        "options": {},
        "decode_len": 32,
        "max_len": 64,
        "src_len": None,
        "secondary": "per",
        "description": "grapheme-to-phoneme on the CMU Pronouncing Dictionary: a word's letters in, "
        "its ARPAbet phonemes out",
    },
    "translation": {
        "options": {"tokenizer": "bpe", "vocab_size": 4000},
        "decode_len": 64,
        "max_len": 128,
        "src_len": 64,
        "secondary": "chrf",
        "description": "German to English translation on Multi30k (image captions)",
    },
    "summarization": {
        "options": {
            "dataset": "aeslc",
            "tokenizer": "bpe",
            "vocab_size": 4000,
            "max_src_chars": 1500,
            "truncate": True,
        },
        "decode_len": 24,
        "max_len": 384,
        "src_len": 320,
        "secondary": "rouge1",
        "description": "email body to subject line (AESLC)",
    },
}


@dataclass
class StudyOptions:
    task: str = "g2p"
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    budget: Budget | None = None  # None: the plan's default (wall-clock seconds)
    quick: bool = False
    out: Path = Path("runs/compare")
    seed: int = 1
    device: str = "auto"
    data_dir: str | None = None
    probes: bool = True
    scaling: bool = True
    progress: bool = True
    warnings: list[str] = field(default_factory=list)  # shown at the top of the report (e.g. a busy machine)
    ladder: tuple[float, ...] | None = None  # budget ladder rungs (None: the plan's default)
    seeds: int = 1  # seeds per model (mean and spread of the test metric)
    recipes: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> sweep point (qkv sweep)
    recipes_source: str | None = None  # the sweep.json the recipes came from
    recipes_budget: dict | None = None  # the budget the sweep chose them at ({"kind", "amount"})
    command: str | None = None  # the command line that started the study (recorded in results.json)

    def check(self) -> None:
        if self.task not in TASKS:
            raise UserError(f"--task {self.task!r}: qkv compare runs on {', '.join(TASKS)}")
        bad = [m for m in self.models if m not in SEQ2SEQ_MODELS]
        if bad or not self.models:
            raise UserError(
                f"--models: unknown or non-seq2seq model(s) {', '.join(bad) or '(none)'}; "
                f"choose from {', '.join(SEQ2SEQ_MODELS)}"
            )
        if len(set(self.models)) != len(self.models):
            raise UserError(f"--models: each model once, got {','.join(self.models)}")
        if self.seeds < 1:
            raise UserError(f"--seeds {self.seeds}: must be at least 1")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Study:
    """One comparison: ``Study(options).run()`` returns the results dict and writes the report."""

    SECTIONS = ("quality", "examples", "cost", "attention", "probes", "scaling")

    def __init__(self, options: StudyOptions, log: Callable[[str], None] = print) -> None:
        options.check()
        self.options = options
        self.log = log
        self.out = Path(options.out)
        self.device = resolve_device(options.device)
        self.plan: StudyPlan = study_plan(options.task, quick=options.quick, n_models=len(options.models))
        self.plan = self.plan.with_budget(options.budget, options.ladder)
        self.spec = TASKS[options.task]
        self.clock = Stopwatch()
        warnings = list(options.warnings)  # (the caller's options are not changed)
        plan_budget = {"kind": self.plan.train.kind, "amount": self.plan.train.amount}
        if options.recipes and options.recipes_budget and options.recipes_budget != plan_budget:
            warnings.append(
                f"the recipes ({options.recipes_source}) were chosen at a budget of "
                f"{options.recipes_budget.get('amount')} {options.recipes_budget.get('kind')}, this comparison "
                f"trains for {self.plan.train.describe()}"
            )
        self._greedy: dict[str, tuple[list[str], list]] = {}  # model -> (greedy test outputs, test examples)
        self._rung_outputs: dict[float, dict[str, tuple[list[str], list]]] = {}  # rung -> model -> the same
        self._final_stats: dict[str, dict[str, Any]] = {}  # model -> metric -> ExampleStats of the greedy test
        self.results: dict[str, Any] = {
            "qkv_compare": 1,
            "status": "running",
            "config": {
                "task": options.task,
                "models": list(options.models),
                "quick": options.quick,
                "seed": options.seed,
                "budget": {"kind": self.plan.train.kind, "amount": self.plan.train.amount},
                "budget_text": self.plan.train.describe(),
                "plan": dataclasses.asdict(self.plan),
                "recipes": {"source": options.recipes_source, "points": options.recipes} if options.recipes else None,
            },
            "machine": machine_info(self.device),
            "provenance": {"command": options.command, "commit": commit()},
            "warnings": warnings,
            "sections": {name: {"status": "not run"} for name in self.SECTIONS},
            "task": {},
            "models": {name: {} for name in options.models},
            "examples": [],
            "attention": {},
            "probes": {},
            "scaling": {},
            "significance": {},
            "ladder": {},
        }

    # ---- bookkeeping ---------------------------------------------------------------------------------
    def save(self) -> None:
        self.results["wall_seconds"] = round(self.clock.elapsed(), 1)
        report.write_json_atomic(self.out / "results.json", self.results)

    def _mark(self, section: str, status: str, seconds: float | None = None, error: str | None = None) -> None:
        entry: dict[str, Any] = {"status": status}
        if seconds is not None:
            entry["seconds"] = round(seconds, 1)
        if error:
            entry["error"] = error
        self.results["sections"][section] = entry

    def _section(self, name: str, work: Callable[[], None]) -> None:
        """Run one section; record done / failed; save results.json. KeyboardInterrupt propagates."""
        watch = Stopwatch()
        self._mark(name, "running")
        self.log(f"== {name}")
        try:
            work()
        except KeyboardInterrupt:
            self._mark(name, "interrupted", watch.elapsed())
            raise
        except UserError:
            self._mark(name, "failed", watch.elapsed(), "user error")
            raise
        except Exception as err:  # a failing section must not lose the others
            self._mark(name, "failed", watch.elapsed(), f"{type(err).__name__}: {err}")
            self.log(f"section {name} failed: {type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}")
        else:
            self._mark(name, "done", watch.elapsed())
        self.save()

    # ---- the run -------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        self.save()
        interrupted = False
        try:
            self._section("quality", self.quality)
            for name in ("examples", "cost", "attention"):
                self._derived_status(name)
            if self.options.probes:
                self._section("probes", self.probes)
            else:
                self._mark("probes", "skipped", error="--no-probes")
            if self.options.scaling:
                self._section("scaling", self.scaling)
            else:
                self._mark("scaling", "skipped", error="--no-scaling")
        except KeyboardInterrupt:
            interrupted = True
            for name in ("examples", "cost", "attention"):
                self._derived_status(name)
            self.log("interrupted: writing a partial report with what has been measured")
        finally:
            self.results["status"] = (
                "partial"
                if interrupted or any(s["status"] not in ("done", "skipped") for s in self.results["sections"].values())
                else "complete"
            )
            self.results["interrupted"] = interrupted
            self.results["wall_seconds"] = round(self.clock.elapsed(), 1)
            report.write_report(self.results, self.out)
        return self.results

    def _derived_status(self, section: str) -> None:
        """examples / cost / attention are measured per model inside the quality pass."""
        key = {"examples": "test", "cost": "inference", "attention": "attention_done"}[section]
        done = [m for m, r in self.results["models"].items() if r.get(key)]
        status = "done" if len(done) == len(self.options.models) else ("partial" if done else "not run")
        self.results["sections"][section] = {"status": status, "models": done}

    # ---- quality, cost, attention: one pass per model ------------------------------------------------
    def task_config(self) -> TaskConfig:
        options = dict(self.spec["options"])
        if self.plan.max_train_examples is not None:
            options["max_examples"] = self.plan.max_train_examples
        if self.options.task == "g2p":
            options["max_eval_examples"] = self.plan.max_test_examples
            options["seed"] = DATA_SEED  # --seed varies the training, never which test words are drawn
        return TaskConfig(
            name=self.options.task,
            data_dir=self.options.data_dir,
            options=options,
            max_eval_examples=self.plan.max_test_examples,
            max_src_len=self.spec["src_len"],
            max_tgt_len=self.spec["src_len"],
        )

    def run_config(self, name: str) -> Config:
        """The model's training config: the family's recipe, with its sweep point when ``--recipes`` gave one."""
        config = self._family_config(name)
        point = self.options.recipes.get(name)
        return apply_point(config, point) if point else config

    def _family_config(self, name: str) -> Config:
        optim, schedule = optim_recipe(name, quick=self.options.quick)
        return Config(
            task=self.task_config(),
            model=model_config(name, self.plan.model_size, max_len=self.spec["max_len"]),
            optim=optim,
            schedule=schedule,
            training=TrainingConfig(
                seed=self.options.seed, max_tokens=self.plan.max_tokens, log_every=5, device=self.device.type
            ),
            eval=EvalConfig(
                max_examples=self.plan.max_eval_examples, beam=1, max_len=self.spec["decode_len"], samples=0
            ),
        )

    def quality(self) -> None:
        from qkv.training.loop import TrainingDiverged
        from qkv.training.run import open_task, split_data

        task = open_task(self.task_config())
        split_data(task, "train", 1)  # reads the data now: a missing file is one clear error, before any training
        self.results["task"] = {
            "name": self.options.task,
            "description": self.spec["description"],
            "metric": task.primary_metric,
            "higher_is_better": task.higher_is_better,
            "secondary_metric": self.spec["secondary"],
        }
        self.save()
        failed = []
        for name in self.options.models:
            self.log(f"-- {name}: training for {self.plan.train.describe()}")
            try:
                self.train_model(name)
                self.evaluate_model(name)
                self.extra_seeds(name)
            except UserError as err:
                if not isinstance(err, TrainingDiverged):
                    raise  # the user must fix something (data, config): stop here, with the partial report
                self._model_failed(name, err, failed)
            except Exception as err:  # one model failing must not lose the others
                self._model_failed(name, err, failed)
            self.save()
        self.significance(task)
        self.summarise_ladder(task)
        self.results["reference_results"] = reference_results(self.options.task, self.spec["options"])
        self.save()
        if failed:
            raise RuntimeError(f"model(s) {', '.join(failed)} failed (see results.json)")

    def significance(self, task: Any) -> None:
        """95% bootstrap intervals of each model's test metrics, and paired tests between every two models."""
        from qkv.compare.significance import SUPPORTED, bootstrap_interval, holm, paired_test, task_example_stats

        metrics = [m for m in (task.primary_metric, self.spec["secondary"]) if m in SUPPORTED]
        stats = {
            name: {m: task_example_stats(task, m, hyps, examples) for m in metrics}
            for name, (hyps, examples) in self._greedy.items()
        }
        self._final_stats = stats  # the last ladder rung's test reads the same statistics
        for name, by_metric in stats.items():
            self.results["models"][name]["test"]["interval"] = {
                m: bootstrap_interval(s, seed=self.options.seed).to_dict() for m, s in by_metric.items()
            }
        names = list(stats)
        pairs = []
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                pair: dict[str, Any] = {
                    "a": a,
                    "b": b,
                    **{m: paired_test(stats[a][m], stats[b][m], seed=self.options.seed).to_dict() for m in metrics},
                }
                seeds = self._seed_test(a, b)
                if seeds:
                    pair["seeds"] = seeds
                pairs.append(pair)
        for m in metrics:  # every pair of the table is tested at once: Holm keeps the family's error at 5%
            for pair, adjusted in zip(pairs, holm([p[m]["p_value"] for p in pairs]), strict=True):
                pair[m]["p_holm"] = adjusted
                pair[m]["significant"] = adjusted < 0.05
        self.results["significance"] = {
            "method": "paired bootstrap over test examples (Koehn 2004), 1000 resamples; 95% percentile intervals "
            "of the difference; significant when the Holm-adjusted p (over the table's pairs) is below 0.05. "
            "It covers test-set noise for one trained model each; with --seeds, Welch's t-test over the seeds' "
            "scores covers the seed-to-seed variation",
            "metrics": metrics,
            "examples": len(next(iter(self._greedy.values()))[1]) if self._greedy else 0,
            "pairs": pairs,
        }

    def _seed_test(self, a: str, b: str) -> dict | None:
        """Welch's t-test between two models' per-seed primary test scores (when both ran several seeds)."""
        from qkv.compare.significance import seed_test

        values = [(self.results["models"][n].get("seeds") or {}).get("values") or [] for n in (a, b)]
        if min(len(v) for v in values) < 2:
            return None
        return {"metric": self.results["task"]["metric"], **seed_test(values[0], values[1]).to_dict()}

    def _model_failed(self, name: str, err: Exception, failed: list[str]) -> None:
        self.results["models"][name]["error"] = f"{type(err).__name__}: {err}"
        self.log(f"   {name} failed: {type(err).__name__}: {err}")
        failed.append(name)

    def train_model(self, name: str) -> None:
        config = self.run_config(name)
        entry = self.results["models"][name]
        entry["config"] = to_dict(config)
        bar = _bar(self.plan.train, name, self.options.progress)

        def on_chunk(info: dict) -> None:
            entry["train"] = {
                k: info[k] for k in ("steps", "tokens", "seconds", "tokens_per_s", "steps_per_s", "chunks")
            }
            entry["curves"] = info["curves"]
            bar.n = round(info["fraction"] * bar.total, 1)
            bar.set_postfix(step=info["steps"], tok_s=f"{info['tokens_per_s'] or 0:,.0f}")
            bar.refresh()
            self.save()

        run_dir = self.out / "runs" / name
        entry["ladder"] = []
        try:
            train_with_budget(
                config,
                run_dir,
                self.plan.train,
                eval_every_seconds=self.plan.eval_every_seconds,
                on_chunk=on_chunk,
                rungs=self.plan.ladder,
                on_rung=lambda amount, info: self._score_rung(name, run_dir, amount, info),
            )
        finally:
            bar.close()

    # ---- the budget ladder and extra seeds -----------------------------------------------------------
    def _test_outputs(self, run_dir: Path, checkpoint: str) -> tuple[float, list[str], list]:
        """The primary test metric, greedy, of one checkpoint, with its outputs and the test examples
        (the ladder tests its leaders with them; extra seeds keep the metric)."""
        from qkv.training.run import load_run, split_data

        run = load_run(run_dir, checkpoint, device=self.device)
        test = split_data(run.task, "test", self.plan.max_test_examples)
        ids, _ = cost.timed_translate(
            run.model, run.src_tok.encode_batch([e.src for e in test]), max_len=self.spec["decode_len"]
        )
        hyps = [run.tgt_tok.decode(h) for h in ids]
        return float(run.task.score(hyps, test)[run.task.primary_metric]), hyps, test

    def _score_rung(self, name: str, run_dir: Path, amount: float, info: dict) -> None:
        rung = Budget(self.plan.train.kind, amount)
        value, hyps, test = self._test_outputs(run_dir, "best")
        self._rung_outputs.setdefault(amount, {})[name] = (hyps, test)
        self.results["models"][name]["ladder"].append(
            {
                "amount": amount,
                "budget_text": rung.describe().replace(" of training per model", "").replace(" per model", ""),
                "seconds": info["seconds"],
                "steps": info["steps"],
                "value": value,
                "checkpoint": "best so far",
            }
        )
        self.save()

    def extra_seeds(self, name: str) -> None:
        """Seeds ``seed + 1 .. seed + N - 1``: the same recipe and budget, the greedy test metric of each."""
        entry = self.results["models"][name]
        values = [entry["test"]["greedy"][self.results["task"]["metric"]]]
        for k in range(1, self.options.seeds):
            config = self.run_config(name)
            config.training.seed = self.options.seed + k
            run_dir = self.out / "runs" / f"{name}-seed{config.training.seed}"
            self.log(f"-- {name}: seed {config.training.seed}")
            train_with_budget(config, run_dir, self.plan.train, eval_every_seconds=self.plan.eval_every_seconds)
            values.append(self._test_outputs(run_dir, "best")[0])
        if len(values) > 1:
            mean = sum(values) / len(values)
            spread = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
            entry["seeds"] = {
                "seeds": list(range(self.options.seed, self.options.seed + len(values))),
                "values": values,
                "mean": mean,
                "std": spread,
            }

    def summarise_ladder(self, task: Any = None) -> None:
        """Per rung: each model's test metric and the leader (the final rung is the full evaluation), and,
        given the ``task``, a paired bootstrap test of the leader against the runner-up on that rung's outputs."""
        metric, higher = self.results["task"]["metric"], self.results["task"]["higher_is_better"]
        rungs: dict[float, dict] = {}
        for name, entry in self.results["models"].items():
            points = list(entry.get("ladder") or [])
            if entry.get("test"):
                points.append(
                    {
                        "amount": self.plan.train.amount,
                        "budget_text": self.plan.train.describe()
                        .replace(" of training per model", "")
                        .replace(" per model", ""),
                        "seconds": (entry.get("train") or {}).get("seconds"),
                        "steps": (entry.get("train") or {}).get("steps"),
                        "value": entry["test"]["greedy"][metric],
                        "checkpoint": "best",
                    }
                )
            for p in points:
                rung = rungs.setdefault(
                    p["amount"], {"amount": p["amount"], "budget_text": p["budget_text"], "values": {}, "steps": {}}
                )
                rung["values"][name], rung["steps"][name] = p["value"], p["steps"]
        ordered = [rungs[a] for a in sorted(rungs)]
        for rung in ordered:
            best = (max if higher else min)(rung["values"].values())
            leaders = [n for n, v in rung["values"].items() if v == best]
            rung["leader"] = leaders[0] if len(leaders) == 1 else "tie: " + ", ".join(leaders)
            rung["test"] = self._rung_test(task, rung, final=rung is ordered[-1]) if task is not None else None
        self.results["ladder"] = {"metric": metric, "higher_is_better": higher, "rungs": ordered}

    def _rung_test(self, task: Any, rung: dict, final: bool) -> dict | None:
        """The leader of one rung against the runner-up: a paired bootstrap on the outputs both gave there."""
        from qkv.compare.significance import SUPPORTED, paired_test, task_example_stats

        metric, higher = self.results["task"]["metric"], self.results["task"]["higher_is_better"]
        outputs = self._greedy if final else self._rung_outputs.get(rung["amount"], {})
        ranked = sorted((n for n in rung["values"] if n in outputs), key=lambda n: rung["values"][n], reverse=higher)
        if len(ranked) < 2 or metric not in SUPPORTED:
            return None
        leader, runner_up = ranked[:2]
        known = self._final_stats if final else {}
        stats = [
            known[n][metric] if metric in known.get(n, {}) else task_example_stats(task, metric, *outputs[n])
            for n in (leader, runner_up)
        ]
        return {"a": leader, "b": runner_up, **paired_test(*stats, seed=self.options.seed).to_dict()}

    def evaluate_model(self, name: str) -> None:
        from qkv.training.run import load_run, split_data

        run = load_run(self.out / "runs" / name, "best", device=self.device)
        entry = self.results["models"][name]
        model, plan, max_len = run.model, self.plan, self.spec["decode_len"]
        entry["params"] = cost.count_params(model)
        test = split_data(run.task, "test", plan.max_test_examples)
        src_ids = run.src_tok.encode_batch([e.src for e in test])
        self.results["task"].update(test_examples=len(test), beam_examples=min(plan.max_beam_examples, len(test)))

        ids, seconds = cost.timed_translate(model, src_ids, max_len=max_len)
        hyps = [run.tgt_tok.decode(h) for h in ids]
        greedy = {k: float(v) for k, v in run.task.score(hyps, test).items()}
        n_beam = min(plan.max_beam_examples, len(test))
        beam_ids, _ = cost.timed_translate(model, src_ids[:n_beam], beam=plan.beam, max_len=max_len)
        beam_hyps = [run.tgt_tok.decode(h) for h in beam_ids]
        beam = {k: float(v) for k, v in run.task.score(beam_hyps, test[:n_beam]).items()}
        greedy_on_beam_set = {k: float(v) for k, v in run.task.score(hyps[:n_beam], test[:n_beam]).items()}
        entry["test"] = {
            "greedy": greedy,
            "beam": beam,
            "greedy_on_beam_examples": greedy_on_beam_set,
            "beam_size": plan.beam,
            "beam_vs_greedy": self._beam_test(run.task, beam_hyps, hyps[:n_beam], test[:n_beam]),
        }
        self._greedy[name] = (hyps, test)
        self._add_examples(name, test, hyps)

        generated = sum(len(h) + 1 for h in ids)
        entry["inference"] = {
            "tokens_per_s": generated / seconds,
            "batched_seconds": seconds,
            **cost.latency(model, src_ids[: plan.latency_examples], max_len),
        }
        # a full training batch of plan.max_tokens tokens, drawn from test pairs (the same length distribution)
        tgt_ids = run.tgt_tok.encode_batch([e.tgt for e in test])
        train_mib, method = cost.train_step_memory(model, src_ids, tgt_ids, plan.max_tokens)
        entry["flops_per_token"] = cost.train_flops_per_token(model, src_ids, tgt_ids, plan.max_tokens)
        infer_mib = cost.decode_memory(model, src_ids[:64], max_len)
        entry["memory"] = {
            "train_peak_mib": train_mib,
            "infer_peak_mib": infer_mib,
            "method": method,
            "train_batch_tokens": plan.max_tokens,
            "infer_batch": min(64, len(src_ids)),
        }
        entry["attention_done"] = True
        if name in ATTENTION_MODELS:
            self.results["attention"][name] = self._attention_maps(run, test, ids, src_ids)

    def _beam_test(self, task: Any, beam_hyps: list[str], greedy_hyps: list[str], examples: list) -> dict | None:
        """Beam against greedy on the same examples (``delta = beam - greedy``): paired bootstrap."""
        from qkv.compare.significance import SUPPORTED, paired_test, task_example_stats

        metric = task.primary_metric
        if metric not in SUPPORTED or not examples:
            return None
        beam, greedy = (task_example_stats(task, metric, h, examples) for h in (beam_hyps, greedy_hyps))
        return paired_test(beam, greedy, seed=self.options.seed).to_dict()

    def _add_examples(self, name: str, test: list, hyps: list[str]) -> None:
        n = min(self.plan.n_examples, len(test))
        if not self.results["examples"]:
            self.results["examples"] = [{"src": e.src, "ref": e.tgt, "outputs": {}} for e in test[:n]]
        for item, hyp in zip(self.results["examples"], hyps, strict=False):
            item["outputs"][name] = hyp

    @torch.no_grad()
    def _attention_maps(self, run: Any, test: list, ids: list[list[int]], src_ids: list[list[int]]) -> list[dict]:
        """Cross-attention on the model's own output, for the same test examples in every model: the first
        few whose *source* has moderate length (the source tokens are the same for every model)."""
        order = [i for i in range(len(test)) if 4 <= len(src_ids[i]) <= 14] or list(range(len(test)))
        maps = []
        for i in order[: self.plan.n_attention_maps]:
            src = run.src_tok.encode(test[i].src) + [EOS_ID]
            tgt_in = [BOS_ID] + ids[i]
            out = run.model(
                torch.tensor([src], device=self.device), torch.tensor([tgt_in], device=self.device), need_weights=True
            )
            weights = out.attentions["cross"][-1][0].float().mean(0)  # (T_t, T_s): mean over heads, last layer
            maps.append(
                {
                    "title": test[i].src[:30],
                    "src_tokens": [run.src_tok.token(t) for t in src],
                    "tgt_tokens": [run.tgt_tok.token(t) for t in ids[i]] + ["<eos>"],
                    "weights": [[round(float(w), 4) for w in row] for row in weights.cpu()],
                    "heads": int(out.attentions["cross"][-1].shape[1]),
                }
            )
        return maps

    # ---- probes and scaling --------------------------------------------------------------------------
    def probes(self) -> None:
        from qkv.compare.probe_study import load_probe_study
        from qkv.compare.probes import probe_specs, run_probe

        self.results["probe_study"] = load_probe_study()  # the saved full study, shown beside this run's
        p = self.plan.probes
        for probe in ("assoc-recall", "copy"):
            if probe == "assoc-recall":
                lengths, budget, n_train, checks = [p.assoc_length], p.recall_budget, p.recall_train, p.recall_checks
            else:  # the copy probes get what the recall probe's fixed steps left before the deadline
                threads = torch.get_num_threads()
                p, note = fit_probes(self.plan, self.clock.elapsed(), len(self.options.models), threads=threads)
                if note:
                    self.log(f"   {note}")
                    self.results["config"]["adjustments"] = [note]
                lengths, budget, n_train, checks = list(p.copy_lengths), p.budget, p.n_train, 1
            self.log(
                f"-- probe {probe} (length {', '.join(map(str, lengths))}; {budget.describe()}; "
                f"~{p.target_params:,} parameters each)"
            )
            specs = probe_specs(probe, lengths, n_train, p.n_test, seed=self.options.seed)
            self.results["probes"][probe] = run_probe(
                specs,
                self.options.models,
                target_params=p.target_params,
                budget=budget,
                checks=checks,
                out_dir=self.out / "runs" / "probes",
                max_tokens=p.max_tokens,
                seed=self.options.seed,
                device=self.device.type,
                progress=lambda what: self.log(f"   {what}"),
            )
            self.save()

    def scaling(self) -> None:
        from qkv.compare.scaling import measure_scaling

        self.results["scaling"] = measure_scaling(
            self.options.models,
            self.plan.scaling,
            self.device,
            seed=self.options.seed,
            progress=lambda label: self.log(f"   {label}"),
        )


# The task options that name a comparison's data: a reference run on other data (en->de beside a de->en
# comparison, SAMSum beside AESLC) is left out; ``label`` options are shown with each reference, since
# the g2p references use CMUdict's g014b2b split (12,000 test words), not the comparison's own.
DATA_OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "g2p": {"match": (), "label": ("source",)},
    "translation": {"match": ("src_lang", "tgt_lang"), "label": ("src_lang", "tgt_lang")},
    "summarization": {"match": ("dataset",), "label": ("dataset",)},
}


def _task_options(folder: Path, record: Any) -> dict | None:
    """The task options a result folder's run used: its config.yaml's, or for an extractive baseline
    (no config) the dataset its `qkv baseline` command names; ``None`` when the folder cannot say."""
    import yaml

    from qkv.results.paired import baseline_command

    if record.decoding == "extractive":
        return {"dataset": baseline_command(folder, record).task}
    if not (folder / "config.yaml").is_file():
        return None
    config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {}
    return dict((config.get("task") or {}).get("options") or {})


def reference_results(task: str, options: dict | None = None) -> list[dict]:
    """Converged reference runs of ``task`` on the comparison's data (task ``options``; the task's defaults
    where left out) from the repository's ``results/`` (``$QKV_RESULTS`` overrides), shown beside the
    budgeted verdict so that a 60-second result never stands alone."""
    from qkv.data.tasks import resolved_options
    from qkv.results import load_results, results_root

    root = results_root()
    if not root.is_dir():
        return []
    keys = DATA_OPTIONS.get(task, {"match": (), "label": ()})
    ours = resolved_options(task, options if options is not None else TASKS[task]["options"])
    keep = ("bleu", "bleu_lowercase", "chrf", "wer", "per", "rouge1", "rouge2", "rougeL")
    out = []
    for r in load_results(root):
        if r.task != task:
            continue
        options = _task_options(root / r.recipe, r)
        if options is None:  # which data it used is unknown: not shown as this comparison's reference
            continue
        theirs = resolved_options(task, options)
        if any(theirs.get(k) != ours.get(k) for k in keys["match"]):
            continue
        out.append(
            {
                "recipe": r.recipe,
                "model": r.model,
                "split": r.split,
                "data": {k: theirs.get(k) for k in keys["label"]},
                "examples": r.examples,
                "decoding": r.decoding,
                "baseline": r.train_seconds == 0,  # an extractive baseline: nothing trained
                "command": r.command,
                "train_seconds": r.train_seconds,
                "metrics": {k: v for k, v in r.metrics.items() if k in keep},
            }
        )
    return out


def _bar(budget: Budget, name: str, enabled: bool):
    from tqdm.auto import tqdm

    total = budget.amount if budget.kind == "seconds" else 100.0
    unit = "s" if budget.kind == "seconds" else "%"
    return tqdm(
        total=total,
        desc=f"{name:>16}",
        unit=unit,
        disable=not enabled,
        dynamic_ncols=True,
        bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f}" + unit + " [{elapsed}]{postfix}",
    )


def run_study(options: StudyOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run a comparison and write its report; returns the results (``results["status"]``: complete/partial)."""
    return Study(options, log).run()
