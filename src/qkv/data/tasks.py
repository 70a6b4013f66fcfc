"""The task registry: a task knows its data, its tokenizer defaults and its metrics.

``get_task(name, **options)`` builds one; ``list_tasks()`` names them. Seq2seq tasks give
``examples(split) -> list[Example]``; LM tasks give ``text(split) -> str``. Every task has ``name``,
``kind`` (``"seq2seq" | "lm"``), ``splits()``, ``build_tokenizers(train) -> (src_tok, tgt_tok)``,
``primary_metric`` and ``higher_is_better``; seq2seq tasks have ``score(hyps, examples)`` and LM tasks
``score_nll(nll, num_tokens, text)``. Split names are ``train``, ``dev``, ``test`` (``val``,
``valid`` and ``validation`` are accepted as ``dev``).
"""

from __future__ import annotations

import dataclasses
import importlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from qkv.errors import UserError

SPLITS = ("train", "dev", "test")
_ALIASES = {"val": "dev", "valid": "dev", "validation": "dev"}

# name -> (module, class, fixed options)
_REGISTRY: dict[str, tuple[str, str, dict[str, Any]]] = {
    "g2p": ("qkv.data.g2p", "G2PTask", {}),
    "translation": ("qkv.data.translation", "TranslationTask", {}),
    "lm": ("qkv.data.lm", "LMTask", {}),
    "summarization": ("qkv.data.summarization", "SummarizationTask", {}),
    **{
        probe: ("qkv.data.probes", "ProbeTask", {"probe": probe})
        for probe in ("copy", "reverse", "sort", "assoc-recall", "selective-copy", "listops")
    },
}


@dataclass(slots=True)
class Example:
    """One seq2seq example. ``refs`` lists every acceptable target (``tgt`` first); empty means ``[tgt]``.
    ``meta`` carries per-example facts such as a probe's dependency ``distance``."""

    src: str
    tgt: str
    refs: list[str] = field(default_factory=list)
    meta: dict[str, int] = field(default_factory=dict)

    @property
    def references(self) -> list[str]:
        return self.refs or [self.tgt]


class Task(Protocol):
    name: str
    kind: str
    primary_metric: str
    higher_is_better: bool

    def splits(self) -> tuple[str, ...]: ...
    def build_tokenizers(self, train: Any) -> tuple[Any, Any]: ...


def list_tasks() -> list[str]:
    return list(_REGISTRY)


def get_task(name: str, **options: Any) -> Any:
    """Build task ``name`` with ``options``; an unknown task or option is a UserError naming it."""
    if name not in _REGISTRY:
        raise UserError(f"unknown task {name!r} (known: {', '.join(_REGISTRY)})")
    module, cls_name, fixed = _REGISTRY[name]
    cls = getattr(importlib.import_module(module), cls_name)
    known = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in fixed]
    unknown = [k for k in options if k not in known]
    if unknown:
        raise UserError(f"unknown option(s) {', '.join(unknown)} for task {name!r} (known: {', '.join(known)})")
    return cls(**fixed, **options)


def canonical_split(split: str, available: Sequence[str] = SPLITS) -> str:
    s = _ALIASES.get(split, split)
    if s not in available:
        raise UserError(f"unknown split {split!r} (this task has: {', '.join(available)})")
    return s


def cap(items: list, n: int | None, seed: int) -> list:
    """At most ``n`` items: a seeded random subset, kept in the original order (None = all)."""
    if n is None or n >= len(items):
        return items
    if n < 1:
        raise UserError(f"max_examples must be at least 1, got {n}")
    keep = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in keep]


def seq2seq_tokenizers(
    train: Sequence[Example], src_kind: str, tgt_kind: str, src_vocab: int | None, tgt_vocab: int | None
) -> tuple[Any, Any]:
    """Train separate source and target tokenizers on the training examples."""
    from qkv.data.tokenizers import train_tokenizer

    if not train:
        raise UserError("cannot train tokenizers on an empty training split")
    return (
        train_tokenizer(src_kind, [e.src for e in train], src_vocab),
        train_tokenizer(tgt_kind, [e.tgt for e in train], tgt_vocab),
    )
