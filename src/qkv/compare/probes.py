"""Long-term dependencies: accuracy against dependency distance, per architecture, at equal size.

Two probes from :mod:`qkv.data.probes`, each a short training run of every architecture, sized to about
the same number of parameters (:func:`qkv.compare.recipes.sized_config`) and given the same budget:

- **assoc-recall** (Ba et al. 2016): ``k3 v1 k7 v0 ... ? k7 -> v0``. The distance is the number of tokens
  between the queried key and the query. Attention finds the key by content -- a query/key match -- at
  any distance; a recurrent network must have kept that pair in its fixed-size state.
- **copy** (Hochreiter & Schmidhuber 1997): output the input. Output token ``i`` depends on input token
  ``i``, which lies ``T_s - i`` tokens before the end of the source, where decoding starts. An
  encoder-decoder without attention must carry every token through one vector, so its per-token
  accuracy falls with that distance; with attention the decoder looks the token up directly (Bahdanau et
  al. 2015 made this argument for long sentences).

Training goes through :func:`qkv.compare.budgeted.train_with_budget` (qkv's own training loop).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qkv.compare.budget import Budget
from qkv.compare.budgeted import train_with_budget
from qkv.compare.cost import count_params
from qkv.compare.recipes import optim_recipe, sized_config
from qkv.training.config import Config, EvalConfig, TaskConfig, TrainingConfig
from qkv.training.evaluate import translate

DESCRIPTIONS = {
    "assoc-recall": "k v pairs, then `? k`: output the value stored with k. Distance = tokens between the queried "
                    "key and the query.",
    "copy": "output the input. Distance = tokens from an input token to the end of the input (where decoding "
            "starts); accuracy per output token.",
    "reverse": "output the input reversed.",
}


@dataclass
class ProbeSpec:
    """One probe setting: task name and options for :func:`qkv.data.get_task`."""

    probe: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.options.get("length", 32))


def default_specs(length: int, n_train: int, n_test: int, seed: int = 0) -> list[ProbeSpec]:
    """The two probes of ``qkv compare`` at source length about ``length``."""
    pairs = max((length - 2) // 2, 2)
    return [
        ProbeSpec("assoc-recall", {"length": 2 * pairs + 2, "num_keys": max(pairs, 16), "num_values": 8,
                                   "num_examples": n_train, "num_eval_examples": n_test, "seed": seed}),
        ProbeSpec("copy", {"length": length, "vocab_size": 8, "num_examples": n_train,
                           "num_eval_examples": n_test, "seed": seed}),
    ]


def probe_config(spec: ProbeSpec, name: str, target_params: int, max_tokens: int, seed: int, device: str) -> Config:
    """The training config of architecture ``name`` on probe ``spec``."""
    from qkv.data import get_task

    task = get_task(spec.probe, **spec.options)
    vocab = len(task.symbols()) + 4  # + the special tokens
    model = sized_config(name, target_params, vocab, vocab, max_len=spec.length + 8)
    optim, schedule = optim_recipe(name, quick=True)
    optim.label_smoothing = 0.0
    return Config(
        task=TaskConfig(name=spec.probe, options=dict(spec.options)),
        model=model, optim=optim, schedule=schedule,
        training=TrainingConfig(seed=seed, max_tokens=max_tokens, log_every=5, device=device),
        eval=EvalConfig(max_examples=100, beam=1, max_len=spec.length + 4, samples=0),
    )


def by_distance(spec: ProbeSpec, examples: list, hyps: list[str]) -> dict[int, tuple[int, int]]:
    """Distance -> (correct, total) for the probe's notion of dependency distance."""
    counts: dict[int, list[int]] = {}
    for example, hyp in zip(examples, hyps, strict=False):
        if spec.probe == "copy":
            src, ref, out = example.src.split(), example.tgt.split(), hyp.split()
            for i, token in enumerate(ref):
                d = len(src) - i  # tokens from input token i to the end of the source
                c = counts.setdefault(d, [0, 0])
                c[0] += int(i < len(out) and out[i] == token)
                c[1] += 1
        else:
            d = int(example.meta.get("token_distance", example.meta.get("distance", 0)))
            c = counts.setdefault(d, [0, 0])
            c[0] += int(hyp.strip() == example.tgt.strip())
            c[1] += 1
    return {d: (c[0], c[1]) for d, c in sorted(counts.items())}


def run_probe_model(spec: ProbeSpec, name: str, *, target_params: int, budget: Budget, run_dir: Path,
                    max_tokens: int = 2048, seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """Train ``name`` on ``spec`` under ``budget`` and score it on the probe's test split."""
    from qkv.training.run import load_run

    config = probe_config(spec, name, target_params, max_tokens, seed, device)
    info = train_with_budget(config, run_dir, budget)
    run = load_run(run_dir, "last", device=device)
    examples = run.task.examples("test")
    ids = translate(run.model, run.src_tok.encode_batch([e.src for e in examples]), max_len=spec.length + 4)
    hyps = [run.tgt_tok.decode(h) for h in ids]
    scores = run.task.score(hyps, examples)
    return {
        "params": count_params(run.model),
        "width": run.config.model.d_model,
        "steps": info["steps"], "seconds": info["seconds"],
        "exact_match": scores.get("exact_match"), "token_accuracy": scores.get("token_accuracy"),
        "by_distance": {str(d): c for d, c in by_distance(spec, examples, hyps).items()},
    }


def run_probe(spec: ProbeSpec, models: list[str], *, target_params: int, budget: Budget, out_dir: Path,
              max_tokens: int = 2048, seed: int = 0, device: str = "cpu",
              progress: Callable[[str], None] = lambda name: None) -> dict[str, Any]:
    """Every architecture on one probe: accuracy per distance, parameters, steps trained."""
    per_model: dict[str, dict] = {}
    for name in models:
        progress(name)
        per_model[name] = run_probe_model(spec, name, target_params=target_params, budget=budget,
                                          run_dir=Path(out_dir) / f"{spec.probe}-{name}", max_tokens=max_tokens,
                                          seed=seed, device=device)
    return summarize(spec, per_model, budget)


def summarize(spec: ProbeSpec, per_model: dict[str, dict], budget: Budget) -> dict[str, Any]:
    """The results.json entry of one probe: shared distance axis, accuracy (0-1) per model."""
    distances = sorted({int(d) for m in per_model.values() for d in m["by_distance"]})
    accuracy = {}
    for name, m in per_model.items():
        row = []
        for d in distances:
            correct, total = m["by_distance"].get(str(d), (0, 0))
            row.append(correct / total if total else None)
        accuracy[name] = row
    return {
        "description": DESCRIPTIONS.get(spec.probe, ""),
        "options": spec.options,
        "budget": {"kind": budget.kind, "amount": budget.amount},
        "distances": distances,
        "distance_label": "tokens between the queried key and the query" if spec.probe == "assoc-recall"
        else "tokens from the input token to the end of the input",
        "accuracy": accuracy,
        "params": {n: m["params"] for n, m in per_model.items()},
        "models": per_model,
    }
