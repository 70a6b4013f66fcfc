"""Training one model under a :class:`~qkv.compare.budget.Budget`, with qkv's own training loop.

There is no second training loop here. :func:`qkv.training.loop.train` runs to ``training.max_steps``,
evaluates, saves a resumable checkpoint, and ``resume=True`` continues bit-for-bit where it stopped. So
a wall-clock (or token) budget is spent in *chunks*: train to step ``s_1``, read how long the steps took
from the run's ``metrics.jsonl``, pick ``s_2`` so that the next chunk takes about ``eval_every_seconds``,
resume, and so on until the budget is used. Each chunk ends with an evaluation on the validation set,
which gives the "metric against wall-clock time" curve for free. With the Noam or constant schedules
the learning rate does not depend on ``max_steps``, so the chunks train exactly like one long run.

Training seconds are the loop's own clock between its first and last step of each chunk: data loading,
model building and the evaluations are not counted against the budget (they are the same for every
architecture, and a budget should buy training, not bookkeeping).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qkv.compare.budget import Budget
from qkv.training.config import Config
from qkv.training.metrics_log import read_metrics

FIRST_CHUNK_STEPS = 10  # a short first chunk measures the speed (and gives an early curve point)
MIN_CHUNK_STEPS = 10  # steps budgets: never chunks shorter than this (each chunk costs an evaluation)


def fresh_run_dir(run_dir: Path) -> None:
    """Remove a previous comparison's run in ``run_dir`` (only if it looks like a run directory)."""
    if run_dir.exists() and ((run_dir / "config.yaml").exists() or (run_dir / "checkpoints").exists()):
        shutil.rmtree(run_dir)


def _saved_state(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "checkpoints" / "last.json").read_text(encoding="utf-8"))


def train_with_budget(
    config: Config,
    run_dir: str | Path,
    budget: Budget,
    *,
    eval_every_seconds: float | None = None,
    on_chunk: Callable[[dict], None] = lambda info: None,
    rungs: tuple[float, ...] = (),
    on_rung: Callable[[float, dict], bool | None] = lambda amount, info: None,
) -> dict[str, Any]:
    """Train ``config`` into ``run_dir`` until ``budget`` is spent; return what happened.

    Returns ``{"steps", "tokens", "seconds", "tokens_per_s", "steps_per_s", "chunks",
    "curves": {"train": [{step, seconds, loss, tokens}], "eval": [{step, seconds, <metrics>}]}}`` where
    ``seconds`` counts training time only. ``on_chunk`` is called after every chunk with the same dict
    (so a caller can checkpoint its own results and update a progress bar).

    ``rungs`` (amounts of the budget's kind, below ``budget.amount``) are the budget ladder: a chunk ends at
    each rung, and ``on_rung(amount, info)`` is called there with ``checkpoints/last`` holding the model
    as trained for that amount -- the same run continues to the next rung, so a ladder costs one training.
    ``on_rung`` returning True stops the training there (``info["stopped_at_rung"]`` is then True): a probe
    trained "until solved" ends at the first check that reaches the bar.
    """
    from qkv.training.loop import train

    run_dir = Path(run_dir)
    fresh_run_dir(run_dir)
    config = copy.deepcopy(config)
    config.eval.every = 10**9  # evaluate only at the end of each chunk
    steps, tokens, seconds, elapsed_saved = 0, 0, 0.0, 0.0
    train_points: list[dict] = []
    eval_points: list[dict] = []
    info: dict[str, Any] = {}
    chunks = 0
    pending = sorted(r for r in rungs if 0 < r < budget.amount)
    target = Budget(budget.kind, pending[0]) if pending else budget
    chunk_steps = FIRST_CHUNK_STEPS if budget.kind == "seconds" else _first_chunk(budget)
    if budget.kind == "steps":  # a step budget's first rung can come before its first chunk would end
        chunk_steps = min(chunk_steps, max(int(target.amount), 1))
    while True:
        config.training.max_steps = steps + max(int(chunk_steps), 1)
        # The loop prints each evaluation; the comparison shows its own progress (the log is in metrics.jsonl).
        with contextlib.redirect_stdout(io.StringIO()):
            train(config, run_dir, resume=chunks > 0, progress=False)
        chunks += 1
        records = [r for r in read_metrics(run_dir) if r.get("step", 0) > steps]
        state = _saved_state(run_dir)
        chunk_train = [r for r in records if r.get("split") == "train"]
        chunk_seconds = (chunk_train[-1]["time"] - elapsed_saved) if chunk_train else 0.0
        for r in chunk_train:
            train_points.append(
                {
                    "step": r["step"],
                    "seconds": round(seconds + r["time"] - elapsed_saved, 3),
                    "loss": r.get("loss"),
                    "tokens": r.get("tokens"),
                }
            )
        chunk_new_steps = int(state["step"]) - steps
        steps, tokens = int(state["step"]), int(state["tokens"])
        seconds += max(chunk_seconds, 0.0)
        elapsed_saved = float(state["elapsed"])
        for r in records:
            if r.get("split") == "valid":
                metrics = {k: v for k, v in r.items() if k not in ("step", "split")}
                eval_points.append({"step": r["step"], "seconds": round(seconds, 3), **metrics})
        info = {
            "steps": steps,
            "tokens": tokens,
            "seconds": round(seconds, 3),
            "chunks": chunks,
            "tokens_per_s": tokens / seconds if seconds > 0 else None,
            "steps_per_s": steps / seconds if seconds > 0 else None,
            "budget": {"kind": budget.kind, "amount": budget.amount},
            "fraction": budget.fraction(seconds=seconds, steps=steps, tokens=tokens),
            "curves": {"train": train_points, "eval": eval_points},
        }
        on_chunk(info)
        while pending and (target.spent(seconds=seconds, steps=steps, tokens=tokens) or chunk_new_steps <= 0):
            if on_rung(pending.pop(0), info):
                return {**info, "stopped_at_rung": True}
            target = Budget(budget.kind, pending[0]) if pending else budget
        if budget.spent(seconds=seconds, steps=steps, tokens=tokens) or chunk_new_steps <= 0:
            return info
        chunk_steps = _next_chunk(target, info, chunk_new_steps, max(chunk_seconds, 1e-6), eval_every_seconds)
        while chunk_steps < 1 and pending:  # less than half a step to the rung: it is reached
            if on_rung(pending.pop(0), info):
                return {**info, "stopped_at_rung": True}
            target = Budget(budget.kind, pending[0]) if pending else budget
            chunk_steps = _next_chunk(target, info, chunk_new_steps, max(chunk_seconds, 1e-6), eval_every_seconds)
        if chunk_steps < 1:
            return info


def _first_chunk(budget: Budget) -> int:
    """Steps/tokens budgets: a sixth of the budget per chunk (six curve points), at least 10 steps."""
    if budget.kind == "steps":
        return max(int(math.ceil(budget.amount / 6)), min(int(budget.amount), MIN_CHUNK_STEPS))
    return FIRST_CHUNK_STEPS  # tokens: measure tokens per step first


def _next_chunk(budget: Budget, info: dict, last_steps: int, last_seconds: float, every: float | None) -> int:
    """Steps for the next chunk: about ``every`` seconds of training, never past the budget."""
    steps_per_s = last_steps / last_seconds
    if budget.kind == "seconds":
        remaining = budget.amount - info["seconds"]
        if remaining * steps_per_s < 0.5:  # less than half a step left
            return 0
        span = min(every or remaining, remaining)
        if remaining - span < 0.25 * span:  # don't leave a tiny last chunk
            span = remaining
        return max(int(round(span * steps_per_s)), 1)
    if budget.kind == "steps":
        remaining = int(budget.amount) - info["steps"]
        per_chunk = max(int(math.ceil(budget.amount / 6)), MIN_CHUNK_STEPS)
        return max(min(per_chunk, remaining), 0)
    tokens_per_step = info["tokens"] / max(info["steps"], 1)
    remaining = (budget.amount - info["tokens"]) / tokens_per_step
    per_chunk = max(budget.amount / 6 / tokens_per_step, 1)
    return max(int(math.ceil(min(per_chunk, remaining))), 0)
