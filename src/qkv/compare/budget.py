"""Equal budgets for a fair comparison, and how `qkv compare` spends its time.

A comparison is only honest when every architecture gets the same resources. The default currency is
**wall-clock seconds**: it is what a user pays for, and it rewards an architecture that does more useful
work per second (a Transformer processes every position of a sequence in parallel; a recurrent network
must walk through it one step at a time). ``--budget 500steps`` or ``--budget 2M-tokens`` switch to an
equal number of optimizer steps or of training tokens instead -- the per-step view that papers usually
report.

:func:`study_plan` picks the data caps, model sizes and the split of the total time between training,
the long-range probes and the sequence-length scaling study, so that the default run finishes in under
10 minutes on a 2-core CPU (``--quick``: under 2 minutes). The numbers are written down in
``docs/compare.md``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Literal

from qkv.errors import UserError

BudgetKind = Literal["seconds", "steps", "tokens"]

_UNITS = {
    "": ("seconds", 1.0),
    "s": ("seconds", 1.0),
    "sec": ("seconds", 1.0),
    "seconds": ("seconds", 1.0),
    "m": ("seconds", 60.0),
    "min": ("seconds", 60.0),
    "minutes": ("seconds", 60.0),
    "step": ("steps", 1.0),
    "steps": ("steps", 1.0),
    "tok": ("tokens", 1.0),
    "token": ("tokens", 1.0),
    "tokens": ("tokens", 1.0),
}
_SCALE = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6}


@dataclass(frozen=True)
class Budget:
    """How much training each model gets: ``amount`` seconds, optimizer steps, or training tokens."""

    kind: BudgetKind
    amount: float

    def describe(self) -> str:
        if self.kind == "seconds":
            return f"{self.amount:g} s of training per model"
        return f"{int(self.amount):,} {'optimizer steps' if self.kind == 'steps' else 'training tokens'} per model"

    def spent(self, *, seconds: float, steps: int, tokens: int) -> bool:
        """True once this budget is used up."""
        used = {"seconds": seconds, "steps": steps, "tokens": tokens}[self.kind]
        return used >= self.amount

    def fraction(self, *, seconds: float, steps: int, tokens: int) -> float:
        """How much of the budget is used, in [0, 1] (for progress bars)."""
        used = {"seconds": seconds, "steps": steps, "tokens": tokens}[self.kind]
        return min(used / self.amount, 1.0)


def parse_budget(text: str) -> Budget:
    """``"90"``, ``"90s"``, ``"2m"``, ``"500steps"``, ``"200k-tokens"``, ``"2M tokens"`` -> :class:`Budget`."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKM]?)[\s_-]*([a-z]*)\s*", str(text))
    if not match or match.group(3) not in _UNITS:
        raise UserError(f"--budget {text!r}: expected seconds (90, 90s, 2m), steps (500steps) or tokens (200k-tokens)")
    number, scale, unit = match.groups()
    kind, factor = _UNITS[unit]
    amount = float(number) * _SCALE[scale] * factor
    if amount <= 0:
        raise UserError(f"--budget {text!r}: must be > 0")
    return Budget(kind, amount)  # type: ignore[arg-type]


def parse_budgets(text: str) -> list[Budget]:
    """``"20s,1m,4m"`` -> budgets of one kind, smallest first (the budget ladder)."""
    budgets = sorted((parse_budget(part) for part in text.split(",") if part.strip()), key=lambda b: b.amount)
    if not budgets:
        raise UserError(f"--budgets {text!r}: expected a comma-separated list, e.g. 20s,1m,4m")
    kinds = {b.kind for b in budgets}
    if len(kinds) > 1:
        raise UserError(f"--budgets {text!r}: all rungs must be of one kind (seconds, steps or tokens)")
    return budgets


class Stopwatch:
    """Wall-clock seconds since creation (``time.perf_counter``); ``lap()`` returns and restarts."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def lap(self) -> float:
        now = time.perf_counter()
        out, self.start = now - self.start, now
        return out


@dataclass
class ProbePlan:
    """The long-range probes: short training per architecture at a comparable parameter count."""

    budget: Budget = field(default_factory=lambda: Budget("seconds", 7.0))  # copy: per architecture and run
    target_params: int = 40_000  # every architecture is sized to about this many parameters
    # assoc-recall gets optimizer steps, not seconds: learning the lookup is a phase change after a plateau
    # (results/probes/study: 500 steps for prefix-lm, 750 for gru-attention at length 10), and seconds on a
    # busy machine would move that verdict. ``recall_checks`` test-set checks give steps-to-solve.
    recall_budget: Budget = field(default_factory=lambda: Budget("steps", 800))
    recall_checks: int = 4
    recall_train: int = 50_000  # fresh enough that no model can memorise its way through
    assoc_length: int = 10  # assoc-recall source length in tokens (4 key-value pairs; distances 3-9)
    copy_lengths: tuple[int, ...] = (4, 8, 16)  # one short training per length
    n_train: int = 4000
    n_test: int = 300
    max_tokens: int = 2048


@dataclass
class ScalingPlan:
    """The sequence-length scaling study (one training step of each architecture per length)."""

    lengths: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    batch_size: int = 8
    d_model: int = 128  # Transformer width; the recurrent hidden size matches it
    layers: int = 2
    repeats: int = 3  # timed steps per length (after one warm-up step); the median is reported
    max_step_seconds: float = 3.0  # stop growing the length for an architecture once a step is this slow


@dataclass
class StudyPlan:
    """Everything that decides how long ``qkv compare`` takes and what it measures."""

    train: Budget
    eval_every_seconds: float  # validation metric vs wall-clock time: one point every this many seconds
    max_train_examples: int | None
    max_eval_examples: int  # validation examples decoded at each curve point
    max_test_examples: int  # test examples scored with greedy decoding
    beam: int
    max_beam_examples: int  # test examples also scored with beam search
    max_tokens: int  # tokens per training batch
    n_examples: int = 6  # side-by-side examples in the report
    n_attention_maps: int = 3  # test examples whose cross-attention maps are drawn
    latency_examples: int = 32  # sequences decoded one at a time for the latency measurement
    model_size: str = "small"
    probes: ProbePlan = field(default_factory=ProbePlan)
    scaling: ScalingPlan = field(default_factory=ScalingPlan)
    ladder: tuple[float, ...] = ()  # budget ladder: smaller budgets (same kind as ``train``) also evaluated
    deadline_seconds: float | None = 570.0  # whole study; None = no deadline (a budget given by the user)
    scaling_seconds: float = 60.0  # what the scaling study is expected to take on 2 threads (see fit_probes)

    def with_budget(self, budget: Budget | None, ladder: tuple[float, ...] | None = None) -> StudyPlan:
        """The plan for a user's budget (no deadline); ``ladder`` replaces the default rungs."""
        plan = (
            self
            if budget is None
            else replace(
                self,
                train=budget,
                deadline_seconds=None,
                ladder=tuple(a * budget.amount / self.train.amount for a in self.ladder),
            )
        )
        return plan if ladder is None else replace(plan, ladder=tuple(sorted(ladder)))

    def ladder_budgets(self) -> list[Budget]:
        """Every rung of the budget ladder, the full budget last."""
        return [Budget(self.train.kind, a) for a in self.ladder if a < self.train.amount] + [self.train]


def fit_probes(
    plan: StudyPlan, elapsed: float, n_models: int, overhead: float = 3.0, threads: int = 2
) -> tuple[ProbePlan, str | None]:
    """Shrink the copy probes so the study still ends by its deadline (a busy machine makes training slower).

    Called after the recall probe, whose fixed step budget has then been spent (and counted in
    ``elapsed``). Training budgets are never touched (they must stay equal across models); the copy
    probes, which come last before the scaling study, get what is left: fewer lengths and a shorter
    budget per run, at least 2 s. The scaling study still to come is expected to take
    ``plan.scaling_seconds`` on 2 threads and proportionally longer on fewer (on one thread of a busy
    2-core VM it took 128 s against the 60 s planned). Returns the probe plan to use and a note saying
    what changed (None when nothing did).
    """
    probes = plan.probes
    if plan.deadline_seconds is None or probes.budget.kind != "seconds":
        return probes, None
    left = plan.deadline_seconds - elapsed - plan.scaling_seconds * max(1.0, 2 / max(threads, 1))
    lengths = probes.copy_lengths
    runs = n_models * len(lengths)
    if runs * (probes.budget.amount + overhead) <= left:
        return probes, None
    if len(lengths) > 2:
        lengths = (lengths[0], lengths[-1])
        runs = n_models * len(lengths)
    seconds = max(2.0, left / runs - overhead)
    if seconds >= probes.budget.amount:
        seconds = probes.budget.amount
    fitted = replace(probes, budget=Budget("seconds", round(seconds, 1)), copy_lengths=lengths)
    note = (
        f"behind schedule after {elapsed:.0f} s: copy probes cut to {fitted.budget.describe()} and copy lengths "
        f"{', '.join(map(str, lengths))} to end near the {plan.deadline_seconds:.0f} s deadline"
    )
    return fitted, note


def study_plan(task: str, *, quick: bool = False, n_models: int = 3) -> StudyPlan:
    """The default plan for ``task``: under 10 minutes on a 2-core CPU (``quick``: under 2 minutes).

    The training budget per model shrinks with the number of models so the total stays about the same.
    """
    if quick:
        per_model = max(8.0, 30.0 / max(n_models, 1))
        return StudyPlan(
            train=Budget("seconds", per_model),
            eval_every_seconds=per_model / 2,
            max_train_examples=20_000,
            max_eval_examples=100,
            max_test_examples=200,
            beam=4,
            max_beam_examples=50,
            max_tokens=2048,
            n_examples=4,
            n_attention_maps=2,
            latency_examples=16,
            model_size="tiny",
            probes=ProbePlan(
                budget=Budget("seconds", 3.0),
                recall_budget=Budget("seconds", 3.0),
                recall_checks=1,
                recall_train=2000,
                target_params=25_000,
                assoc_length=10,
                copy_lengths=(4, 12),
                n_train=2000,
                n_test=150,
            ),
            ladder=(per_model / 3,),
            deadline_seconds=110.0,
            scaling_seconds=15.0,
            scaling=ScalingPlan(
                lengths=(16, 32, 64, 128, 256), batch_size=4, d_model=64, repeats=1, max_step_seconds=1.5
            ),
        )
    per_model = max(30.0, 180.0 / max(n_models, 1))
    heavy = task in ("translation", "summarization")
    return StudyPlan(
        train=Budget("seconds", per_model),
        eval_every_seconds=per_model / 5,
        max_train_examples=None if not heavy else 30_000,
        max_eval_examples=200,
        max_test_examples=500 if not heavy else 300,
        beam=4,
        max_beam_examples=100,
        max_tokens=2048,
        model_size="small",
        probes=ProbePlan(),
        scaling=ScalingPlan(),
        ladder=(per_model / 4,),
    )
