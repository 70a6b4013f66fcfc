"""Long-term dependencies: accuracy against dependency distance, per architecture, at equal size.

Two probes from :mod:`qkv.data.probes`, each a short training run of every architecture, sized to about
the same number of parameters (:func:`qkv.compare.recipes.sized_config`) and given the same budget:

- **assoc-recall** (Ba et al. 2016): ``k3 v1 k7 v0 ... ? k7 -> v0``. The distance is the number of tokens
  between the queried key and the query. Attention finds the key by content -- a query/key match -- at
  any distance; a recurrent network must have kept that pair in its fixed-size state.
- **copy** (Hochreiter & Schmidhuber 1997): output the input. In an encoder-decoder, output token ``i``
  depends on input token ``i`` through ``T`` recurrent steps (``T - i`` in the encoder, ``i`` in the
  decoder), so the dependency distance is the sequence length ``T``; each length is a short training of
  its own. Without attention every token must pass through one fixed-size vector, so accuracy falls with
  ``T``; with attention the decoder looks the token up directly (Bahdanau et al. 2015, Figure 2, made this
  argument for long sentences; Cho et al. 2014 measured the fall).

What is known about the Transformer row of assoc-recall (``benchmarks/recall_causal_vs_bidirectional.py``,
results/probes/): a 2-layer *decoder-only* (causal) Transformer -- qkv's GPT or PyTorch's own causal
``nn.TransformerEncoder`` -- learns the lookup in 750-1,500 steps on fresh data; the same stacks without
the causal mask, and qkv's encoder-decoder with a bidirectional or a causal encoder, stay at "one of the
values in the context" for 3,000+ steps. The encoder-decoder here is the comparison's model; a
decoder-only Transformer trained as a prefix LM on the probes is the next step (issue 11).

Every run is checked ``checks`` times along its budget (the budget ladder's rungs), so each model also
gets a learning curve and its **steps to solve**: the first check with exact match (copy-like probes: token
accuracy) >= ``solved_at`` percent, 99 by default. With ``until_solved`` a run ends at that check instead
of spending the rest of its budget, so the budget is a step cap: "train until solved or the cap".

Training goes through :func:`qkv.compare.budgeted.train_with_budget` (qkv's own training loop).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from qkv.compare.budget import Budget
from qkv.compare.budgeted import train_with_budget
from qkv.compare.cost import count_params
from qkv.compare.recipes import probe_architecture, probe_model_config, sized_config
from qkv.data.probes import ProbeTask
from qkv.training.config import Config, EvalConfig, OptimConfig, ScheduleConfig, TaskConfig, TrainingConfig
from qkv.training.evaluate import translate

DeviceName = Literal["auto", "cpu", "cuda"]  # TrainingConfig.device

DESCRIPTIONS = {
    "assoc-recall": "k v pairs, then `? k`: output the value stored with k. Distance = tokens between the queried "
    "key and the query (one model per architecture, distances drawn at random per example).",
    "copy": "output the input. Every output token depends on the input token T positions back through the "
    "encoder-decoder; distance = the sequence length T (one short training per length). Accuracy = "
    "output tokens right at their position.",
    "reverse": "output the input reversed; distance = the sequence length T (one short training per length).",
}
SOLVED = 99.0  # exact match (percent) at which a probe counts as solved, unless a study asks for another bar
DISTANCE_LABELS = {
    "assoc-recall": "tokens between the queried key and the query",
}


@dataclass
class ProbeSpec:
    """One probe setting: task name and options for :func:`qkv.data.get_task`."""

    probe: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.options.get("length", 32))


def probe_specs(
    probe: str,
    lengths: list[int],
    n_train: int,
    n_test: int,
    seed: int = 0,
    *,
    pairs: int | None = None,
    queries: int = 1,
    mixed_lengths: bool = False,
    echo_keys: bool = False,
) -> list[ProbeSpec]:
    """One spec per source length. assoc-recall: by default ``(length - 2) // 2`` key-value pairs fill
    the context; with ``pairs`` that many pairs sit among filler and ``queries`` keys are asked
    (multi-query recall, as in Zoology) -- the memory load stays fixed while the distance grows with
    the length; ``mixed_lengths`` spreads the training examples' lengths from the shortest that holds
    the pairs up to the test length. 16 keys (or one per pair), 8 values. The other probes: 8 data
    symbols."""
    specs = []
    for length in lengths:
        options: dict[str, Any] = {"length": length, "num_examples": n_train, "num_eval_examples": n_test, "seed": seed}
        if probe == "assoc-recall" and pairs is None and queries == 1 and not echo_keys:
            n_pairs = max((length - 2) // 2, 2)
            options.update(length=2 * n_pairs + 2, num_keys=max(n_pairs, 16), num_values=8)
        elif probe == "assoc-recall":
            n_pairs = pairs if pairs is not None else (length - 1 - queries) // 2
            slots = max((length - 1 - queries) // 2, n_pairs)
            options.update(
                length=2 * slots + 1 + queries,
                num_pairs=n_pairs,
                num_queries=queries,
                num_keys=max(n_pairs, 16),
                num_values=8,
            )
            if mixed_lengths:
                options["min_train_length"] = 2 * n_pairs + 1 + queries
            if echo_keys:
                options["echo_keys"] = True
        elif probe in ("copy", "reverse", "sort", "selective-copy"):
            options["vocab_size"] = 8
        specs.append(ProbeSpec(probe, options))
    return specs


PROBE_LR = 3e-3  # Adam's rate for an architecture the sweep below did not cover
# Adam's rate per architecture on the probes, picked by a sweep of 3e-4, 1e-3 and 3e-3 on recall at 10 and 128
# tokens and copy at 16 (results/probes/study/lr-sweep-*: ``qkv probe --lr 3e-4,1e-3,3e-3 ...``; the rule is
# :func:`qkv.compare.probe_study.sweep_winners`, and a test checks this table against those files). One rate
# for all made the comparison unfair: at 3e-3 the prefix LM never found the lookup at 128 tokens, at 1e-3 it
# solves it in 4,500 steps (docs/compare.md, "Probes: a learning rate per architecture").
PROBE_LRS: dict[str, float] = {
    "transformer": 3e-3,  # solves copy fastest at 3e-3; recall at no rate (the encoder-decoder's known limit)
    "prefix-lm": 1e-3,  # the only rate that solves all three (3e-3 is faster at short range, fails at 128)
    "gru-attention": 3e-3,  # fastest on all three
    "gru": 3e-3,  # solves none in the caps; the best accuracy at 3e-3
}


def probe_lr(name: str) -> float:
    """Adam's rate for architecture ``name`` on the probes: its sweep winner, else (a probe variant, not swept)
    its architecture's, else :data:`PROBE_LR`."""
    return PROBE_LRS.get(name, PROBE_LRS.get(probe_architecture(name), PROBE_LR))


def rate_text(lr: float) -> str:
    """A learning rate as people write it: ``1e-3``, ``3e-4``."""
    mantissa, exponent = f"{lr:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def probe_config(
    spec: ProbeSpec,
    name: str,
    target_params: int,
    max_tokens: int,
    seed: int,
    device: str,
    lr: float = PROBE_LR,
    width: int | None = None,
) -> Config:
    """The training config of architecture ``name`` on probe ``spec``: sized to about ``target_params``
    parameters, or, given ``width``, at that width (equal width instead of equal size)."""
    from qkv.data import get_task

    task = get_task(spec.probe, **spec.options)
    assert isinstance(task, ProbeTask)
    vocab = len(task.symbols()) + 4  # + the special tokens
    if width is not None:
        model = probe_model_config(name, width, max_len=spec.length + 8)
    else:
        model = sized_config(name, target_params, vocab, vocab, max_len=spec.length + 8)
    # One recipe for every architecture on these tiny tasks: Adam, a short warmup, then a constant rate.
    optim = OptimConfig(lr=lr, betas=[0.9, 0.98], eps=1e-8, label_smoothing=0.0, clip_norm=1.0)
    schedule = ScheduleConfig(kind="constant", warmup_steps=20)
    return Config(
        task=TaskConfig(name=spec.probe, options=dict(spec.options)),
        model=model,
        optim=optim,
        schedule=schedule,
        training=TrainingConfig(seed=seed, max_tokens=max_tokens, log_every=5, device=cast(DeviceName, device)),
        eval=EvalConfig(max_examples=100, beam=1, max_len=spec.length + 4, samples=0),
    )


def distance_bin(distance: int) -> int:
    """The power of two at or above ``distance`` (at least 4): the bins of long-range distance plots."""
    edge = 4
    while edge < distance:
        edge *= 2
    return edge


def by_distance(spec: ProbeSpec, examples: list, hyps: list[str]) -> dict[int, tuple[int, int]]:
    """Distance -> (correct, total). assoc-recall: per query, its token distance (per example when there
    is one query; binned to powers of two when the pairs sit among filler, whose distances take every
    value up to the length); with echoed keys a query's answer is its key and value together; other
    probes: output tokens right at their position, all at distance ``spec.length``."""
    counts: dict[int, list[int]] = {}
    for example, hyp in zip(examples, hyps, strict=True):
        if spec.probe == "assoc-recall" and "token_distances" in example.meta:
            ref, out = example.tgt.split(), hyp.split()
            width = 2 if spec.options.get("echo_keys") else 1  # echoed: answer j is "key value" at 2j, 2j + 1
            for j, distance in enumerate(example.meta["token_distances"]):
                c = counts.setdefault(distance_bin(int(distance)), [0, 0])
                c[0] += int(out[width * j : width * (j + 1)] == ref[width * j : width * (j + 1)])
                c[1] += 1
        elif spec.probe == "assoc-recall":
            c = counts.setdefault(int(example.meta["token_distance"]), [0, 0])
            c[0] += int(hyp.strip() == example.tgt.strip())
            c[1] += 1
        else:
            ref, out = example.tgt.split(), hyp.split()
            c = counts.setdefault(spec.length, [0, 0])
            c[0] += sum(x == y for x, y in zip(out, ref, strict=False))
            c[1] += max(len(ref), len(out), 1)
    return {d: (c[0], c[1]) for d, c in sorted(counts.items())}


def _score(run_dir: Path, spec: ProbeSpec, device: str) -> tuple[dict[str, float], list, list[str]]:
    """Exact match / token accuracy of ``checkpoints/last`` on the probe's test split."""
    from qkv.training.run import load_run

    run = load_run(run_dir, "last", device=device)
    task = run.task
    assert isinstance(task, ProbeTask)
    examples = task.examples("test")
    ids = translate(run.model, run.src_tok.encode_batch([e.src for e in examples]), max_len=spec.length + 4)
    hyps = [run.tgt_tok.decode(h) for h in ids]
    return task.score(hyps, examples), examples, hyps


def steps_to_solve(curve: list[dict[str, Any]], metric: str = "exact_match", solved_at: float = SOLVED) -> int | None:
    """The optimizer steps at the first check where ``metric`` >= ``solved_at`` (percent); None if never."""
    for point in curve:
        if point.get(metric) is not None and point[metric] >= solved_at:
            return int(point["steps"])
    return None


def solve_metric(probe: str) -> str:
    """What "solved" is measured on: whole answers for the lookup probes, output tokens for the copy-like ones."""
    return "exact_match" if probe in ("assoc-recall", "listops") else "token_accuracy"


def run_probe_model(
    spec: ProbeSpec,
    name: str,
    *,
    target_params: int,
    budget: Budget,
    run_dir: Path,
    max_tokens: int = 2048,
    seed: int = 0,
    device: str = "cpu",
    checks: int = 1,
    lr: float | None = None,
    solved_at: float = SOLVED,
    until_solved: bool = False,
    width: int | None = None,
) -> dict[str, Any]:
    """Train ``name`` on ``spec`` under ``budget`` (at Adam's rate ``lr``, by default the architecture's
    :func:`probe_lr`) and score it on the probe's test split, also at ``checks - 1`` evenly spaced points
    before the end (the learning curve). With ``until_solved`` the training ends at the first check that
    reaches ``solved_at`` percent."""
    from qkv.training.run import load_run

    lr = probe_lr(name) if lr is None else lr
    config = probe_config(spec, name, target_params, max_tokens, seed, device, lr, width)
    metric = solve_metric(spec.probe)
    curve: list[dict[str, Any]] = []
    last: dict[str, Any] = {}

    def check(amount: float, info: dict) -> bool:
        scores, examples, hyps = _score(run_dir, spec, device)
        curve.append({"budget": amount, "steps": info["steps"], "seconds": round(info["seconds"], 2), **scores})
        last.update(scores=scores, examples=examples, hyps=hyps)
        return until_solved and scores.get(metric) is not None and scores[metric] >= solved_at

    rungs = tuple(budget.amount * k / checks for k in range(1, checks))
    info = train_with_budget(config, run_dir, budget, rungs=rungs, on_rung=check)
    stopped = bool(info.get("stopped_at_rung"))
    if stopped:  # the model was just scored at the check that solved it
        scores, examples, hyps = last["scores"], last["examples"], last["hyps"]
    else:
        scores, examples, hyps = _score(run_dir, spec, device)
        curve.append({"budget": budget.amount, "steps": info["steps"], "seconds": round(info["seconds"], 2), **scores})
    run = load_run(run_dir, "last", device=device)
    return {
        "length": spec.length,
        "params": count_params(run.model),
        "width": run.config.model.d_model,
        "lr": lr,
        "steps": info["steps"],
        "seconds": info["seconds"],
        "exact_match": scores.get("exact_match"),
        "token_accuracy": scores.get("token_accuracy"),
        "curve": curve,
        "steps_to_solve": steps_to_solve(curve, metric, solved_at),
        "stopped_when_solved": stopped,
        "by_distance": {str(d): c for d, c in by_distance(spec, examples, hyps).items()},
    }


def run_probe(
    specs: list[ProbeSpec],
    models: list[str],
    *,
    target_params: int,
    budget: Budget,
    out_dir: Path,
    max_tokens: int = 2048,
    seed: int = 0,
    device: str = "cpu",
    checks: int = 1,
    lrs: list[float] | None = None,
    solved_at: float = SOLVED,
    until_solved: bool = False,
    width: int | None = None,
    progress: Callable[[str], None] = lambda name: None,
) -> dict[str, Any]:
    """Every architecture on one probe (one short training per spec, i.e. per length), each checked
    ``checks`` times along its budget (and stopped at the first check at ``solved_at`` with ``until_solved``).

    ``lrs``: Adam's rate for every architecture, or several rates -- a sweep: each (architecture, length)
    trains at each rate and keeps its :func:`best_of_sweep` run, the others listed in its ``lr_sweep``.
    By default each architecture trains at its own :func:`probe_lr`."""
    runs: dict[str, list[dict]] = {name: [] for name in models}
    metric = solve_metric(specs[0].probe) if specs else "exact_match"
    for spec in specs:
        for name in models:
            tried = []
            rates = lrs or [probe_lr(name)]
            for lr in rates:
                suffix = f"-lr{lr:g}" if len(rates) > 1 else ""
                progress(f"{name} (length {spec.length}{f', lr {rate_text(lr)}' if len(rates) > 1 else ''})")
                tried.append(
                    run_probe_model(
                        spec,
                        name,
                        target_params=target_params,
                        budget=budget,
                        max_tokens=max_tokens,
                        seed=seed,
                        device=device,
                        checks=checks,
                        lr=lr,
                        solved_at=solved_at,
                        until_solved=until_solved,
                        width=width,
                        run_dir=Path(out_dir) / f"{spec.probe}-{spec.length}-{name}{suffix}",
                    )
                )
            best = best_of_sweep(tried, metric)
            if len(tried) > 1:
                best = {**best, "lr_sweep": [_sweep_entry(run, metric) for run in tried]}
            runs[name].append(best)
    result = summarize(specs, runs, budget, solved_at)
    result["lr"] = {name: [r["lr"] for r in rs] for name, rs in runs.items()}
    result["sizing"] = {"width": width} if width is not None else {"params": target_params}
    return result


def best_of_sweep(runs: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """Of one (architecture, length) trained at several rates: the run that solved it in the fewest steps,
    else the one with the best ``metric`` at the end; a tie goes to the rate listed first."""

    def key(run: dict[str, Any]) -> tuple[bool, int, float]:
        solved = run.get("steps_to_solve")
        return (solved is None, solved or 0, -(run.get(metric) or 0.0))

    return min(runs, key=key)


def _sweep_entry(run: dict[str, Any], metric: str) -> dict[str, Any]:
    return {"lr": run["lr"], "steps": run["steps"], "steps_to_solve": run["steps_to_solve"], metric: run.get(metric)}


def _distance_label(specs: list[ProbeSpec]) -> str:
    probe = specs[0].probe
    if probe == "assoc-recall" and "num_pairs" in specs[0].options:
        options = specs[0].options
        return (
            f"tokens between a queried key and its query, binned (d = up to d tokens); "
            f"{options['num_pairs']} pairs among filler, {options['num_queries']} queries"
            + (", each answered with its key and value" if options.get("echo_keys") else "")
        )
    return DISTANCE_LABELS.get(probe, "sequence length T (tokens)")


def summarize(
    specs: list[ProbeSpec], runs: dict[str, list[dict]], budget: Budget, solved_at: float = SOLVED
) -> dict[str, Any]:
    """The results.json entry of one probe: a shared distance axis and accuracy (0-1) per model."""
    probe = specs[0].probe
    distances = sorted({int(d) for rs in runs.values() for r in rs for d in r["by_distance"]})
    accuracy = {}
    for name, rs in runs.items():
        row = []
        for d in distances:
            correct = sum(r["by_distance"].get(str(d), (0, 0))[0] for r in rs)
            total = sum(r["by_distance"].get(str(d), (0, 0))[1] for r in rs)
            row.append(correct / total if total else None)
        accuracy[name] = row
    return {
        "probe": probe,
        "description": DESCRIPTIONS.get(probe, ""),
        "options": [spec.options for spec in specs],
        "budget": {"kind": budget.kind, "amount": budget.amount},
        "distances": distances,
        "distance_label": _distance_label(specs),
        "binned_distances": probe == "assoc-recall" and "num_pairs" in specs[0].options,
        "accuracy": accuracy,
        "params": {name: round(sum(r["params"] for r in rs) / len(rs)) for name, rs in runs.items() if rs},
        "lengths": [spec.length for spec in specs],
        "steps_to_solve": {name: [r.get("steps_to_solve") for r in rs] for name, rs in runs.items()},
        "solved_at": solved_at,
        "solve_metric": solve_metric(probe),
        "runs": runs,
    }
