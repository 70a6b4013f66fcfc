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
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

from qkv.errors import UserError

if TYPE_CHECKING:
    from qkv.data.tokenizers import Tokenizer

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
    meta: dict[str, int | list[int]] = field(default_factory=dict)

    @property
    def references(self) -> list[str]:
        return self.refs or [self.tgt]


class Task(Protocol):
    """What every task offers (read-only properties, so plain fields and computed properties both fit)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...  # "seq2seq" | "lm"
    @property
    def primary_metric(self) -> str: ...
    @property
    def higher_is_better(self) -> bool: ...
    def splits(self) -> tuple[str, ...]: ...
    def build_tokenizers(self, train: Any) -> tuple[Tokenizer, Tokenizer]: ...  # train: examples or text


class Seq2SeqTask(Task, Protocol):
    """A task whose splits are examples (source, target, references), scored on decoded text."""

    def examples(self, split: str) -> list[Example]: ...
    def score(self, hyps: list[str], examples: list[Example]) -> dict[str, float]: ...


class LanguageModelingTask(Task, Protocol):
    """A task whose splits are running text, scored by likelihood."""

    def text(self, split: str) -> str: ...
    def score_nll(self, nll_nats: float, num_tokens: int, text: str | None = None) -> dict[str, float]: ...


def is_lm(task: Task) -> TypeGuard[LanguageModelingTask]:
    """Whether ``task`` is a language-modeling task (``kind == "lm"``)."""
    return task.kind == "lm"


def is_seq2seq(task: Task) -> TypeGuard[Seq2SeqTask]:
    """Whether ``task`` is a sequence-to-sequence task (``kind == "seq2seq"``)."""
    return task.kind == "seq2seq"


def list_tasks() -> list[str]:
    return list(_REGISTRY)


def get_task(name: str, **options: Any) -> Task:
    """Build task ``name`` with ``options``; an unknown task or option, or an option of the wrong type, is
    a UserError naming it."""
    problems = check_options(name, options)
    unknown = [key.removeprefix("options.") for key, message in problems if message.startswith("unknown option")]
    if unknown:
        known = problems[0][1].partition("(known: ")[2]
        raise UserError(f"unknown option(s) {', '.join(unknown)} for task {name!r} (known: {known}")
    if problems:
        key, message = problems[0]
        raise UserError(message if key == "name" else f"task option {key.removeprefix('options.')}: {message}")
    module, cls_name, fixed = _REGISTRY[name]
    task: Task = getattr(importlib.import_module(module), cls_name)(**fixed, **options)
    return task


def resolved_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` completed with the default of every option task ``name`` has and ``options`` leaves out:
    what a run with those options used (e.g. a translation recipe without ``src_lang`` read German)."""
    module, cls_name, fixed = _REGISTRY[name]
    cls = getattr(importlib.import_module(module), cls_name)
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(cls)
        if f.init and f.name not in fixed and f.default is not dataclasses.MISSING
    }
    return {**defaults, **options}


def check_options(name: str, options: dict[str, Any]) -> list[tuple[str, str]]:
    """``(key, message)`` for each problem of ``get_task(name, **options)`` found before building it: an
    unknown task (key ``name``), an unknown option or one of the wrong type (key ``options.KEY``). The
    recipe loader reports them at the recipe line or ``--set`` that gave the key."""
    if name not in _REGISTRY:
        return [("name", f"unknown task {name!r} (known: {', '.join(_REGISTRY)})")]
    module, cls_name, fixed = _REGISTRY[name]
    cls = getattr(importlib.import_module(module), cls_name)
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in fixed]
    problems = []
    for key, value in options.items():
        if key not in known:
            problems.append((f"options.{key}", f"unknown option for task {name!r} (known: {', '.join(known)})"))
        elif not _fits(hints[key], value):
            problems.append((f"options.{key}", f"expected {_type_name(hints[key])}, got {value!r}"))
    return problems


def _fits(tp: Any, value: Any) -> bool:
    """Whether ``value`` (parsed YAML) has type ``tp`` (an option's annotation)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_fits(a, value) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin in (list, tuple, Sequence):
        return isinstance(value, (list, tuple)) and (not args or all(_fits(args[0], v) for v in value))
    if origin is dict:
        return isinstance(value, dict) and (
            not args or all(_fits(args[0], k) and _fits(args[1], v) for k, v in value.items())
        )
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return not isinstance(tp, type) or isinstance(value, tp)


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin is dict:
        return "mapping" + (f" of {_type_name(args[0])} to {_type_name(args[1])}" if args else "")
    if origin in (list, tuple, Sequence):
        return "list" + (f" of {_type_name(args[0])}" if args else "")
    names = {type(None): "null", str: "string", int: "integer", float: "number", bool: "true/false"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def canonical_split(split: str, available: Sequence[str] = SPLITS, task: str | None = None) -> str:
    """The one place split names are resolved: ``split``'s canonical name (``train``, ``dev``, ``test``; ``val``,
    ``valid`` and ``validation`` mean ``dev``), checked against the task's ``available`` splits.

    A split the task does not have is a UserError naming what it has -- never a silent substitute (validating
    on ``test`` because there is no ``dev`` would choose checkpoints on the test set)."""
    name = _ALIASES.get(split, split)
    if name not in available:
        whose = f"task {task!r}" if task else "this task"
        if name not in SPLITS:
            raise UserError(f"unknown split {split!r} (use train, dev or test; {whose} has: {', '.join(available)})")
        raise UserError(f"{whose} has no {name!r} split (it has: {', '.join(available)})")
    return name


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
) -> tuple[Tokenizer, Tokenizer]:
    """Train separate source and target tokenizers on the training examples."""
    from qkv.data.tokenizers import train_tokenizer

    if not train:
        raise UserError("cannot train tokenizers on an empty training split")
    return (
        train_tokenizer(src_kind, [e.src for e in train], src_vocab),
        train_tokenizer(tgt_kind, [e.tgt for e in train], tgt_vocab),
    )


def shared_seq2seq_tokenizer(train: Sequence[Example], kind: str, vocab: int | None) -> tuple[Tokenizer, Tokenizer]:
    """One tokenizer trained on sources and targets together, returned for both sides: a token then has one
    id on both sides, so a model can share its embeddings (``model.share_embeddings``), tie its output layer
    to them (``model.tie_embeddings``) or copy source tokens (``model.copy``)."""
    from qkv.data.tokenizers import train_tokenizer

    if not train:
        raise UserError("cannot train tokenizers on an empty training split")
    shared = train_tokenizer(kind, [e.src for e in train] + [e.tgt for e in train], vocab)
    return shared, shared


if TYPE_CHECKING:  # the type checker proves that every registered task implements its protocol
    from qkv.data.g2p import G2PTask
    from qkv.data.lm import LMTask
    from qkv.data.probes import ProbeTask
    from qkv.data.summarization import SummarizationTask
    from qkv.data.translation import TranslationTask

    def _every_task_conforms(
        a: G2PTask, b: TranslationTask, c: SummarizationTask, d: ProbeTask, e: LMTask
    ) -> tuple[list[Seq2SeqTask], LanguageModelingTask]:
        return [a, b, c, d], e
