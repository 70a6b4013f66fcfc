"""Long-range dependency probes: generated, seeded seq2seq tasks of any length.

* ``copy`` — output the input (with ``distance`` blank ``_`` tokens after it: the "copying memory"
  task of Hochreiter & Schmidhuber 1997 / Arjovsky et al. 2016).
* ``reverse`` — output the input reversed.  ``sort`` — output the input sorted (numbers as words).
* ``assoc-recall`` — ``k3 v1 k7 v0 ... ? k7`` → ``v0`` (associative recall, Ba et al. 2016, "Using Fast
  Weights to Attend to the Recent Past"): a Q/K/V lookup in its purest form. ``distance=d`` puts the
  queried pair ``d`` pairs before the query (``d=1`` is the last pair), i.e. ``2d + 1`` tokens between
  the queried key and the query key; without it the pair is uniform at random. ``meta["distance"]`` is
  ``d`` and ``meta["token_distance"]`` is ``2d + 1``.
* ``selective-copy`` — ``num_tokens`` data tokens scattered among ``.`` noise; output them in order (Gu &
  Dao 2023, "Mamba"). ``meta["distance"]`` = tokens from the first data token to the end of the input.
* ``listops`` — nested ``[MAX``/``[MIN``/``[MED``/``[SM`` expressions over digits, answer one digit
  (Nangia & Bowman 2018; the Long Range Arena version, Tay et al. 2021). ``meta["depth"]`` = nesting.

Every token is a space-separated word; the tokenizer is a word tokenizer over the probe's full symbol
set (no unknown tokens at any length). ``length`` is the source length in tokens (assoc-recall:
``2 * pairs + 2``; listops: at most ``length``). Examples are a pure function of ``(probe, options,
seed, split)``. Metrics: exact-match accuracy and token accuracy, in percent.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from qkv.data import metrics
from qkv.data.tasks import Example, canonical_split
from qkv.data.tokenizers import WordTokenizer
from qkv.errors import UserError
from qkv.special import SPECIAL_TOKENS

PROBES = ("copy", "reverse", "sort", "assoc-recall", "selective-copy", "listops")
_LISTOPS: dict[str, Callable[[list[int]], float]] = {
    "[MAX": max,
    "[MIN": min,
    "[MED": statistics.median_low,
    "[SM": lambda xs: sum(xs) % 10,
}


@dataclass
class ProbeTask:
    """Probe options: ``length``, ``distance`` (copy delay / assoc-recall pairs back), ``num_examples``
    (train; dev and test get ``num_eval_examples``), ``vocab_size`` (data symbols), ``num_keys`` and
    ``num_values`` (assoc-recall), ``num_tokens`` (selective-copy), ``depth`` and ``max_args`` (listops)."""

    probe: str = "copy"
    length: int = 32
    distance: int | None = None
    num_examples: int = 2000
    num_eval_examples: int = 500
    vocab_size: int = 16
    num_keys: int | None = None
    num_values: int = 16
    num_tokens: int = 8
    depth: int = 6
    max_args: int = 5
    seed: int = 0
    data_dir: str | None = None  # accepted for a uniform interface; probes read no files
    kind: str = field(default="seq2seq", init=False)
    primary_metric: str = field(default="exact_match", init=False)
    higher_is_better: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if self.probe not in PROBES:
            raise UserError(f"unknown probe {self.probe!r} (known: {', '.join(PROBES)})")
        minimum = {"assoc-recall": 4, "listops": 3, "selective-copy": self.num_tokens}.get(self.probe, 1)
        if self.length < minimum:
            raise UserError(f"{self.probe}: length must be at least {minimum}, got {self.length}")
        self.name = self.probe
        self.pairs = max(1, (self.length - 2) // 2)
        if self.probe == "assoc-recall":
            self.keys = self.num_keys if self.num_keys is not None else max(64, self.pairs)
            if self.keys < self.pairs:
                raise UserError(f"assoc-recall: {self.pairs} pairs need num_keys >= {self.pairs}, got {self.keys}")
            if self.distance is not None and not 1 <= self.distance <= self.pairs:
                raise UserError(f"assoc-recall: distance must be 1..{self.pairs} (pairs back), got {self.distance}")
        if self.distance is not None and self.probe not in ("copy", "assoc-recall"):
            raise UserError(f"{self.probe}: distance is not an option of this probe (copy, assoc-recall have it)")
        self._cache: dict[str, list[Example]] = {}

    def splits(self) -> tuple[str, ...]:
        return ("train", "dev", "test")

    def symbols(self) -> list[str]:
        """Every token this probe can produce, in a fixed order."""
        if self.probe == "assoc-recall":
            return [f"k{i}" for i in range(self.keys)] + [f"v{i}" for i in range(self.num_values)] + ["?"]
        if self.probe == "listops":
            return [str(d) for d in range(10)] + list(_LISTOPS) + ["]"]
        extra = {"copy": ["_"], "selective-copy": ["."]}.get(self.probe, [])
        return [str(i) for i in range(self.vocab_size)] + extra

    def examples(self, split: str) -> list[Example]:
        split = canonical_split(split, self.splits())
        if split not in self._cache:
            rng = random.Random(f"{self.probe}/{self.length}/{self.distance}/{self.seed}/{split}")
            n = self.num_examples if split == "train" else self.num_eval_examples
            make = getattr(self, "_" + self.probe.replace("-", "_"))
            self._cache[split] = [make(rng) for _ in range(n)]
        return self._cache[split]

    # --- generators: one per probe, each (rng) -> Example ---------------------------------------
    def _seq(self, rng: random.Random, n: int) -> list[int]:
        return [rng.randrange(self.vocab_size) for _ in range(n)]

    def _copy(self, rng: random.Random) -> Example:
        delay = self.distance or 0
        seq = [str(x) for x in self._seq(rng, self.length - delay if delay < self.length else 1)]
        return Example(" ".join(seq + ["_"] * delay), " ".join(seq), meta={"distance": delay})

    def _reverse(self, rng: random.Random) -> Example:
        seq = [str(x) for x in self._seq(rng, self.length)]
        return Example(" ".join(seq), " ".join(reversed(seq)))

    def _sort(self, rng: random.Random) -> Example:
        seq = self._seq(rng, self.length)
        return Example(" ".join(map(str, seq)), " ".join(map(str, sorted(seq))))

    def _assoc_recall(self, rng: random.Random) -> Example:
        keys = rng.sample(range(self.keys), self.pairs)
        values = [rng.randrange(self.num_values) for _ in keys]
        back = self.distance if self.distance is not None else rng.randint(1, self.pairs)
        q = self.pairs - back
        context = [tok for k, v in zip(keys, values, strict=True) for tok in (f"k{k}", f"v{v}")]
        src = " ".join([*context, "?", f"k{keys[q]}"])
        return Example(src, f"v{values[q]}", meta={"distance": back, "token_distance": 2 * back + 1})

    def _selective_copy(self, rng: random.Random) -> Example:
        positions = sorted(rng.sample(range(self.length), self.num_tokens))
        data = [str(x) for x in self._seq(rng, self.num_tokens)]
        src = ["."] * self.length
        for p, d in zip(positions, data, strict=True):
            src[p] = d
        return Example(" ".join(src), " ".join(data), meta={"distance": self.length - positions[0]})

    def _listops(self, rng: random.Random) -> Example:
        tokens, value, depth = self._expr(rng, self.length, self.depth)
        return Example(" ".join(tokens), str(value), meta={"depth": depth})

    def _expr(self, rng: random.Random, budget: int, depth: int) -> tuple[list[str], int, int]:
        """A random expression of at most ``budget`` tokens: (tokens, value, nesting depth)."""
        op = rng.choice(list(_LISTOPS))
        room = budget - 2  # the operator and "]"
        args: list[tuple[list[str], int, int]] = []
        while room > 0 and len(args) < self.max_args:
            last = len(args) == self.max_args - 1
            if depth > 1 and room >= 3 and (last or rng.random() < 0.3):
                sub_budget = room if last else rng.randint(3, room)
                args.append(self._expr(rng, sub_budget, depth - 1))
            else:
                d = rng.randrange(10)
                args.append(([str(d)], d, 0))
            room -= len(args[-1][0])
        tokens = [op, *(t for a in args for t in a[0]), "]"]
        return tokens, int(_LISTOPS[op]([a[1] for a in args])), 1 + max(a[2] for a in args)

    # --- tokenizers and metrics ------------------------------------------------------------------
    def build_tokenizers(self, train: list[Example]):
        """A word tokenizer over the full symbol set, shared by source and target."""
        tok = WordTokenizer(SPECIAL_TOKENS + self.symbols())
        return tok, tok

    def score(self, hyps: list[str], examples: list[Example]) -> dict[str, float]:
        return metrics.accuracy(hyps, [e.tgt for e in examples])

    def score_by(self, key: str, hyps: list[str], examples: list[Example]) -> dict[int, dict[str, float]]:
        """Scores grouped by ``meta[key]`` (e.g. ``"distance"``), for accuracy-vs-distance plots."""
        groups: dict[int, list[int]] = {}
        for i, e in enumerate(examples):
            groups.setdefault(e.meta[key], []).append(i)
        return {k: self.score([hyps[i] for i in idx], [examples[i] for i in idx]) for k, idx in sorted(groups.items())}
