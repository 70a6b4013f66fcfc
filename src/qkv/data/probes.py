"""Long-range dependency probes: generated, seeded seq2seq tasks of any length.

* ``copy`` — output the input (with ``distance`` blank ``_`` tokens after it: the "copying memory"
  task of Hochreiter & Schmidhuber 1997 / Arjovsky et al. 2016).
* ``reverse`` — output the input reversed.  ``sort`` — output the input sorted (numbers as words).
* ``assoc-recall`` — ``k3 v1 k7 v0 ... ? k7`` → ``v0`` (associative recall, Ba et al. 2016, "Using Fast
  Weights to Attend to the Recent Past"): a Q/K/V lookup in its purest form. ``distance=d`` puts the
  queried pair ``d`` pairs before the query (``d=1`` is the last pair), i.e. ``2d + 1`` tokens between
  the queried key and the query key; without it the pair is uniform at random. ``meta["distance"]`` is
  ``d`` and ``meta["token_distance"]`` is ``2d + 1``. With ``num_pairs`` the context holds that many
  pairs at random two-token slots among ``_ _`` filler, so the distance grows with the length while the
  memory load stays fixed; with ``num_queries=m`` the input ends ``? ka kb ...`` and the output is the
  ``m`` values in that order -- multi-query associative recall (MQAR, Arora et al. 2023, "Zoology"), which
  also gives ``m`` supervised tokens per example. ``meta["token_distances"]`` lists, per query, the
  positions from its key in the context to it in the query. ``echo_keys`` makes the answer say each
  query key before its value (``ka va kb vb ...``): every value is then predicted right after its key, the
  layout Zoology trains (``... ka va kb vb``). Without it, answer ``j`` must first find the ``j``-th query
  by position and only then look it up -- one hop more, which no qkv model learnt in 6,000 steps
  (results/probes/study/assoc-recall-T255-mqar-*); the echo itself is a copy, learnt in a few hundred
  steps. ``min_train_length`` makes the training examples' filler random, so their lengths spread from
  it to ``length`` (dev and test stay at ``length``).
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
    (train; dev and test get ``num_eval_examples``), ``vocab_size`` (data symbols), ``num_keys``,
    ``num_values``, ``num_pairs``, ``num_queries`` and ``min_train_length`` (assoc-recall), ``num_tokens``
    (selective-copy), ``depth`` and ``max_args`` (listops)."""

    probe: str = "copy"
    length: int = 32
    distance: int | None = None
    num_examples: int = 2000
    num_eval_examples: int = 500
    vocab_size: int = 16
    num_keys: int | None = None
    num_values: int = 16
    num_pairs: int | None = None
    num_queries: int = 1
    echo_keys: bool = False
    min_train_length: int | None = None
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
        for name in ("num_examples", "num_eval_examples"):  # an empty split would score as zeros, not a result
            if getattr(self, name) < 1:
                raise UserError(f"{self.probe}: {name} must be at least 1, got {getattr(self, name)}")
        minimum = {"assoc-recall": 4, "listops": 3, "selective-copy": self.num_tokens}.get(self.probe, 1)
        if self.length < minimum:
            raise UserError(f"{self.probe}: length must be at least {minimum}, got {self.length}")
        self.name = self.probe
        # assoc-recall: the context is ``slots`` two-token slots, then "?" and the query keys.
        self.slots = max(1, (self.length - 1 - self.num_queries) // 2)
        self.pairs = self.num_pairs if self.num_pairs is not None else self.slots
        if self.probe != "assoc-recall" and (self.num_pairs is not None or self.num_queries != 1 or self.echo_keys):
            raise UserError(f"{self.probe}: num_pairs, num_queries and echo_keys are options of assoc-recall only")
        if self.probe == "assoc-recall":
            if not 1 <= self.pairs <= self.slots:
                raise UserError(
                    f"assoc-recall: num_pairs must be 1..{self.slots} (length {self.length} holds {self.slots} "
                    f"pairs before {self.num_queries} query key(s)), got {self.pairs}"
                )
            if not 1 <= self.num_queries <= self.pairs:
                raise UserError(f"assoc-recall: num_queries must be 1..{self.pairs}, got {self.num_queries}")
            if self.distance is not None and (self.num_pairs is not None or self.num_queries != 1 or self.echo_keys):
                raise UserError(
                    "assoc-recall: distance is for the single-query task without filler (no num_pairs, no echo_keys)"
                )
            if self.min_train_length is not None and self.num_pairs is None:
                raise UserError("assoc-recall: min_train_length needs num_pairs (the filler is what varies)")
            shortest = 2 * self.pairs + 1 + self.num_queries
            if self.min_train_length is not None and not shortest <= self.min_train_length <= self.length:
                raise UserError(
                    f"assoc-recall: min_train_length must be {shortest}..{self.length} (the pairs and queries "
                    f"must fit), got {self.min_train_length}"
                )
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
            filler = ["_"] if self.pairs < self.slots else []
            return [f"k{i}" for i in range(self.keys)] + [f"v{i}" for i in range(self.num_values)] + ["?"] + filler
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
            if split == "train" and self.min_train_length is not None:
                make = self._mixed_length_recall
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
        if self.num_pairs is not None or self.num_queries != 1 or self.echo_keys:
            return self._multi_query_recall(rng)
        keys = rng.sample(range(self.keys), self.pairs)
        values = [rng.randrange(self.num_values) for _ in keys]
        back = self.distance if self.distance is not None else rng.randint(1, self.pairs)
        q = self.pairs - back
        context = [tok for k, v in zip(keys, values, strict=True) for tok in (f"k{k}", f"v{v}")]
        src = " ".join([*context, "?", f"k{keys[q]}"])
        return Example(src, f"v{values[q]}", meta={"distance": back, "token_distance": 2 * back + 1})

    def _mixed_length_recall(self, rng: random.Random) -> Example:
        """A training example with a random amount of filler: its context holds ``pairs`` to ``slots``
        slots, uniformly, so short examples (where the lookup is easy to find) teach the long ones."""
        fewest = (self.min_train_length or self.length) - 1 - self.num_queries
        return self._multi_query_recall(rng, slots=rng.randint(max(self.pairs, fewest // 2), self.slots))

    def _multi_query_recall(self, rng: random.Random, slots: int | None = None) -> Example:
        """``pairs`` pairs at random slots among ``_ _`` filler, then ``? k_a k_b ...`` -> ``v_a v_b ...``
        (with ``echo_keys``: ``k_a v_a k_b v_b ...``)."""
        slots = slots or self.slots
        keys = rng.sample(range(self.keys), self.pairs)
        values = [rng.randrange(self.num_values) for _ in keys]
        slot_of_pair = sorted(rng.sample(range(slots), self.pairs))
        context = ["_"] * (2 * slots)
        for slot, key, value in zip(slot_of_pair, keys, values, strict=True):
            context[2 * slot : 2 * slot + 2] = [f"k{key}", f"v{value}"]
        asked = rng.sample(range(self.pairs), self.num_queries)
        # Query j sits at position 2 * slots + 1 + j; its key at 2 * slot_of_pair[pair].
        distances = [2 * slots + 1 + j - 2 * slot_of_pair[pair] for j, pair in enumerate(asked)]
        src = " ".join([*context, "?", *(f"k{keys[pair]}" for pair in asked)])
        if self.echo_keys:  # each query key, then its value: Zoology's query layout
            tgt = " ".join(f"k{keys[pair]} v{values[pair]}" for pair in asked)
        else:
            tgt = " ".join(f"v{values[pair]}" for pair in asked)
        meta: dict[str, int | list[int]] = {
            "distance": distances[0],
            "token_distance": distances[0],
            "token_distances": distances,
        }
        return Example(src, tgt, meta=meta)

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
            value = e.meta[key]
            if not isinstance(value, int):
                raise ValueError(f"score_by: meta[{key!r}] is a list (one per query); group by a single number")
            groups.setdefault(value, []).append(i)
        return {k: self.score([hyps[i] for i in idx], [examples[i] for i in idx]) for k, idx in sorted(groups.items())}
