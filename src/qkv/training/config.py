"""Typed, validated training recipes (the YAML files in ``configs/``).

A recipe has six sections, each a dataclass::

    task:      which task and how much of it (TaskConfig)
    model:     the architecture (qkv.models.config.ModelConfig)
    optim:     AdamW (or plain SGD), label smoothing, clipping (OptimConfig)
    schedule:  learning-rate schedule: Noam, cosine, constant or step decay (ScheduleConfig)
    training:  steps, batch size, devices, checkpoints (TrainingConfig)
    eval:      how often and how to evaluate, early stopping (EvalConfig)

Every field is typed. :func:`load_config` checks the YAML against these dataclasses and turns any
mistake -- an unknown key, a wrong type, an impossible value -- into a :class:`qkv.errors.UserError`
that names the key path, the file and the line (from PyYAML's node marks). ``--set a.b=c`` overrides
are parsed as YAML scalars and checked the same way. The resolved config is written to every run
(:func:`save_config`) so a run can be re-created and resumed from its own directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from qkv.atomic import atomic_write_text
from qkv.errors import UserError
from qkv.models.config import ModelConfig


@dataclass
class TaskConfig:
    name: str = "g2p"
    data_dir: str | None = None  # else $QKV_DATA, then ~/.cache/qkv
    options: dict[str, Any] = field(default_factory=dict)  # passed to qkv.data.get_task(name, **options)
    max_train_examples: int | None = None  # cap the training set (LM: characters of training text)
    max_eval_examples: int | None = None  # cap validation/test sets (LM: characters)
    max_src_len: int | None = None  # drop training pairs longer than this (tokens)
    max_tgt_len: int | None = None

    def check(self) -> list[tuple[str, str]]:
        from qkv.data.tasks import check_options

        errors = check_options(self.name, self.options)  # the task's name, its options and their types
        for name in ("max_train_examples", "max_eval_examples", "max_src_len", "max_tgt_len"):
            value = getattr(self, name)
            if value is not None and value < 1:
                errors.append((name, f"must be >= 1 or null, got {value}"))
        return errors


@dataclass
class OptimConfig:
    name: Literal["adamw", "sgd"] = "adamw"  # sgd: plain SGD (with optional momentum), as Zaremba et al. 2014
    lr: float = 1e-3  # peak learning rate
    momentum: float = 0.0  # sgd only
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-9
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    clip_norm: float | None = 1.0  # max gradient norm; null = no clipping

    def check(self) -> list[tuple[str, str]]:
        errors = []
        # `not x > 0` rather than `x <= 0`: NaN fails every comparison, and must fail the check too
        for name in ("lr", "eps"):
            if not 0 < getattr(self, name) < math.inf:
                errors.append((name, f"must be a finite number > 0, got {getattr(self, name)}"))
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            errors.append(("betas", f"must be two numbers in [0, 1), got {self.betas}"))
        if not 0 <= self.momentum < 1:
            errors.append(("momentum", f"must be in [0, 1), got {self.momentum}"))
        if self.momentum and self.name != "sgd":
            errors.append(("momentum", "applies to optim.name: sgd only (AdamW's momentum is betas[0])"))
        if not 0 <= self.weight_decay < math.inf:
            errors.append(("weight_decay", f"must be a finite number >= 0, got {self.weight_decay}"))
        if not 0 <= self.label_smoothing < 1:
            errors.append(("label_smoothing", f"must be in [0, 1), got {self.label_smoothing}"))
        if self.clip_norm is not None and not 0 < self.clip_norm < math.inf:
            errors.append(("clip_norm", f"must be a finite number > 0 or null, got {self.clip_norm}"))
        return errors


@dataclass
class ScheduleConfig:
    kind: Literal["noam", "cosine", "constant", "step"] = "noam"
    warmup_steps: int = 400
    min_lr: float = 0.0  # cosine: the learning rate reached at training.max_steps
    # step: the peak until step decay_start, then multiplied by decay every decay_every steps
    decay_start: int = 0
    decay_every: int = 1000
    decay: float = 0.5

    def check(self) -> list[tuple[str, str]]:
        errors = []
        if self.warmup_steps < 0:
            errors.append(("warmup_steps", f"must be >= 0, got {self.warmup_steps}"))
        if not 0 <= self.min_lr < math.inf:
            errors.append(("min_lr", f"must be a finite number >= 0, got {self.min_lr}"))
        if self.decay_start < 0:
            errors.append(("decay_start", f"must be >= 0, got {self.decay_start}"))
        if self.decay_every < 1:
            errors.append(("decay_every", f"must be >= 1, got {self.decay_every}"))
        if not 0 < self.decay <= 1:
            errors.append(("decay", f"must be in (0, 1], got {self.decay}"))
        if self.kind == "step" and self.decay_start < self.warmup_steps:
            errors.append(("decay_start", f"must be >= warmup_steps ({self.warmup_steps}), got {self.decay_start}"))
        defaults = ScheduleConfig.__dataclass_fields__
        for name in ("decay_start", "decay_every", "decay"):
            if self.kind != "step" and getattr(self, name) != defaults[name].default:
                errors.append((name, f"applies to schedule.kind: step only (this schedule is {self.kind!r})"))
        return errors


SEED_LIMIT = 2**63  # training.seed must be below it (a torch seed is a 64-bit integer)


@dataclass
class TrainingConfig:
    seed: int = 1
    max_steps: int = 1000  # optimizer steps
    max_tokens: int = 4096  # seq2seq: padded size of one batch, len(batch) * longest max(src, tgt) (fairseq's)
    batch_size: int = 32  # lm: sequences in one global batch
    context: int = 128  # lm: tokens per sequence
    grad_accum: int = 1  # micro-batches per optimizer step (each gets the full budget above)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto = bf16 autocast on CUDA, fp32 on CPU
    compile: bool = False  # torch.compile the model
    log_every: int = 10
    save_every: int = 0  # also write checkpoints/last every N steps (0 = only at each evaluation)
    save_every_seconds: float = 300.0  # and once this much wall-clock time passed since the last save (0 = off)
    average_last: int = 0  # keep the last N step checkpoints and write checkpoints/averaged (0 = off)
    # lm with lstm-lm/gru-lm only: truncated backpropagation through time (Zaremba et al. 2014) -- batch_size
    # parallel streams read in consecutive segments of `context` tokens, the state carried from step to step;
    # evaluation then carries the state through the text too (default: random windows from the zero state)
    carry_state: bool = False

    def check(self) -> list[tuple[str, str]]:
        errors = []
        if not 0 <= self.seed < SEED_LIMIT:  # torch.manual_seed and the checkpoint's JSON take 64-bit seeds
            errors.append(("seed", f"must be between 0 and 2**63 - 1, got {self.seed}"))
        positive = ("max_steps", "max_tokens", "batch_size", "context", "grad_accum", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                errors.append((name, f"must be >= 1, got {getattr(self, name)}"))
        for name in ("save_every", "save_every_seconds", "average_last"):
            if not getattr(self, name) >= 0:  # (NaN too)
                errors.append((name, f"must be >= 0, got {getattr(self, name)}"))
        return errors


@dataclass
class EvalConfig:
    every: int = 500  # evaluate every N optimizer steps (and at the end)
    max_examples: int | None = 500  # seq2seq: decode at most this many validation examples
    beam: int = 1  # 1 = greedy
    max_len: int = 128  # longest hypothesis, in tokens
    lm_tokens: int = 65536  # lm: validation tokens scored per evaluation
    # lm, attention models: windows of `context` tokens advanced by `lm_stride`, each scoring only its last
    # `lm_stride` tokens, so each is predicted from >= context - lm_stride tokens (null = context: disjoint)
    lm_stride: int | None = None
    patience: int = 0  # stop after this many evaluations without improvement (0 = never)
    samples: int = 3  # examples written to samples.txt at each evaluation

    def check(self) -> list[tuple[str, str]]:
        errors = []
        for name in ("every", "beam", "max_len", "lm_tokens"):
            if getattr(self, name) < 1:
                errors.append((name, f"must be >= 1, got {getattr(self, name)}"))
        if self.max_examples is not None and self.max_examples < 1:
            errors.append(("max_examples", f"must be >= 1 or null, got {self.max_examples}"))
        if self.lm_stride is not None and self.lm_stride < 1:
            errors.append(("lm_stride", f"must be >= 1 or null, got {self.lm_stride}"))
        for name in ("patience", "samples"):
            if getattr(self, name) < 0:
                errors.append((name, f"must be >= 0, got {getattr(self, name)}"))
        return errors


@dataclass
class Config:
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# ----------------------------------------------------------------------------------------------
# Loading


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class _Where:
    """Where each key path came from: ``file:line`` for YAML keys, ``--set k=v`` for overrides."""

    def __init__(self, source: str, lines: dict[str, int]) -> None:
        self.source, self.lines = source, lines
        self.overrides: dict[str, str] = {}  # key path -> "--set key=value"

    def __call__(self, path: str) -> str:
        for p in _prefixes(path):
            if p in self.overrides:
                return self.overrides[p]
            if p not in self.lines:  # not in the file: a --set below it made it (e.g. --set nosuch.key=1)
                below = [v for k, v in self.overrides.items() if k.startswith(p + ".")]
                if below:
                    return below[0]
            else:
                return f"{self.source}:{self.lines[p]}"
        return self.source


def _prefixes(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _line_map(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    """Key path -> 1-based line of that key, from the composed YAML node tree."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}{key_node.value}"
            lines[path] = key_node.start_mark.line + 1
            lines.update(_line_map(value_node, path + "."))
    return lines


def _read_text(path: Path) -> str:
    """The recipe's text (UTF-8, a byte-order mark dropped); bytes that are not UTF-8 are a UserError naming
    the line (:func:`qkv.data.textio.decode` words it), not a UnicodeDecodeError traceback."""
    from qkv.data.textio import decode, read_bytes

    raw = read_bytes(path)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        decode(raw, path)  # raises the UserError (not called first: it also refuses CR-only line ends, valid YAML)
        raise


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping: plain PyYAML keeps the last one in
    silence, so a second ``training:`` block would replace the first without a word."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` merges are allowed to repeat keys
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if _hashable(key) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {seen[key]}, again at line {line}); keep one",
                    key_node.start_mark,
                )
            if _hashable(key):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _hashable(key: Any) -> bool:
    """Whether ``key`` can be a dict key (an unhashable one is reported by PyYAML itself)."""
    try:
        hash(key)
    except TypeError:
        return False
    return True


SECTIONS = tuple(f.name for f in dataclasses.fields(Config))


def _require_sections(data: dict, path: Path) -> None:
    """A run's saved config names every section; one missing is a file cut short (or a hand edit)."""
    missing = [name for name in SECTIONS if name not in data]
    if missing:
        raise UserError(
            f"{path}: lacks the section(s) {', '.join(missing)} that every saved run config has "
            "(the file was cut short or edited?); restore it, or train the run again"
        )


def load_config(path: str | Path, overrides: list[str] | None = None, *, every_section: bool = False) -> Config:
    """Read a recipe, apply ``key.path=value`` overrides, and return a validated :class:`Config`.

    ``every_section``: the file is a run's own ``config.yaml`` (:func:`save_config` writes all six sections),
    so a missing section means the file was cut short or edited -- an error, not the section's defaults."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{path}: no such config file", hint="recipes live in configs/, e.g. configs/g2p-transformer.yaml"
        )
    text = _read_text(path)
    try:
        lines = _line_map(yaml.compose(text, Loader=_UniqueKeyLoader))
        data = yaml.load(text, Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(f"{where}: invalid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a recipe is a mapping of sections (task, model, ...), got {type(data).__name__}")
    if every_section:
        _require_sections(data, path)
    origin = _Where(str(path), lines)
    apply_overrides(data, overrides or [], origin)
    return from_dict(data, origin)


def apply_overrides(data: dict, overrides: list[str], where: _Where | None = None) -> None:
    """Apply ``a.b=c`` strings to a nested dict in place; values are parsed as YAML scalars."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. --set training.max_steps=100")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
        if where is not None:
            where.overrides[key] = f"--set {item}"


def from_dict(data: dict, where: _Where | None = None) -> Config:
    """Build and validate a :class:`Config` from plain data (a parsed recipe)."""
    where = where or _Where("<config>", {})
    config = _build(Config, data, "", where)
    errors: list[tuple[str, str]] = []
    for section in ("task", "optim", "schedule", "training", "eval"):
        errors += [(f"{section}.{k}", msg) for k, msg in getattr(config, section).check()]
    errors += _check_model(config.model, where)
    errors += _check_carry_state(config)
    errors += _check_lm_stride(config)
    errors += _check_learned_positions(config)
    if errors:
        key, msg = errors[0]
        raise UserError(f"{where(key)}: {msg}" if msg.startswith(key) else f"{where(key)}: {key}: {msg}")
    return config


def _check_learned_positions(config: Config) -> list[tuple[str, str]]:
    """A table of learned positions has ``model.max_len`` rows, and a longer sequence has no row to read
    (the other position kinds have no such limit). Found here, the mistake is one line before training;
    found by the model, it is a traceback at step 1 (a language model's ``training.context`` inputs) or at
    the first evaluation, after the work since the last save (``eval.max_len`` decoded tokens, each one
    read back at the next position: the last at ``eval.max_len - 1``)."""
    model = config.model
    if model.positions != "learned" or model.family != "transformer":
        return []
    if config.task.name == "lm" and config.training.context > model.max_len:
        return [
            (
                "training.context",
                f"must be <= model.max_len ({model.max_len}, the rows of the learned position table), "
                f"got {config.training.context}: raise model.max_len or lower training.context",
            )
        ]
    if config.task.name != "lm" and config.eval.max_len > model.max_len:
        return [
            (
                "eval.max_len",
                f"must be <= model.max_len ({model.max_len}, the rows of the learned position table), "
                f"got {config.eval.max_len}: raise model.max_len or lower eval.max_len",
            )
        ]
    return []


def _check_lm_stride(config: Config) -> list[tuple[str, str]]:
    """``eval.lm_stride`` slides windows of ``training.context`` tokens: a longer stride would skip tokens,
    and a recurrent model scored with its state carried has no windows to slide."""
    stride = config.eval.lm_stride
    if stride is None:
        return []
    if stride > config.training.context:
        return [("eval.lm_stride", f"must be <= training.context ({config.training.context}), got {stride}")]
    if config.training.carry_state:
        return [("eval.lm_stride", "does not apply with training.carry_state (the state is carried instead)")]
    return []


def _check_carry_state(config: Config) -> list[tuple[str, str]]:
    """``training.carry_state`` needs a recurrent language model and one micro-batch per step (the next
    segment's starting state is the previous segment's final state)."""
    if not config.training.carry_state:
        return []
    from qkv.models.config import RECURRENT_LM_NAMES

    key = "training.carry_state"
    if config.task.name != "lm" or config.model.name not in RECURRENT_LM_NAMES:
        names = "/".join(RECURRENT_LM_NAMES)
        return [
            (
                key,
                f"carries a recurrent state: needs task lm with model {names}, got task "
                f"{config.task.name} with model {config.model.name}",
            )
        ]
    if config.training.grad_accum != 1:
        return [
            (
                key,
                f"needs training.grad_accum = 1 (each segment starts from the previous one's final "
                f"state), got {config.training.grad_accum}",
            )
        ]
    return []


def _check_model(model: ModelConfig, where: _Where) -> list[tuple[str, str]]:
    """ModelConfig validates itself (ValueError naming ``model.<key>``); report it at the key the user set
    (an override first, else the first key named in the message)."""
    try:
        model.validate()
    except ValueError as err:
        keys = re.findall(r"model\.\w+", str(err)) or ["model"]
        key = next((k for k in keys if any(p in where.overrides for p in _prefixes(k))), keys[0])
        return [(key, str(err))]
    return []


def _build(cls: type, data: Any, prefix: str, where: _Where) -> Any:
    section = prefix.rstrip(".") or "the config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{where(section)}: {section}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else f" (known: {', '.join(fields)})"
            raise UserError(f"{where(path)}: unknown key '{path}'{hint}")
        kwargs[key] = _convert(hints[key], value, path, where)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError, AssertionError) as err:
        raise UserError(f"{where(section)}: {section}: {err}") from None
    except UserError as err:
        raise UserError(f"{where(section)}: {section}: {err}") from None


def _convert(tp: Any, value: Any, path: str, where: _Where) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = UserError(f"{where(path)}: {path}: expected {_type_name(tp)}, got {value!r}")
    if tp is Any:
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, path + ".", where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, path, where)
            except UserError:
                continue
        raise bad
    if origin is Literal:
        if value not in args:
            raise UserError(f"{where(path)}: {path}: must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise bad
            pairs = enumerate(zip(args, value, strict=True))
            return tuple(_convert(a, v, f"{path}[{i}]", where) for i, (a, v) in pairs)
        item = args[0] if args else Any
        return origin(_convert(item, v, f"{path}[{i}]", where) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            return float(value)  # PyYAML reads 3e-4 (no dot) as a string; it is meant as a number
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise bad
    return value


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


# ----------------------------------------------------------------------------------------------
# Saving


def to_dict(config: Config) -> dict:
    """Plain nested dict (lists, not tuples) that :func:`from_dict` turns back into ``config``."""

    def plain(x: Any) -> Any:
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        return x

    return plain(dataclasses.asdict(config))


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (sections in recipe order), atomically: a kill or a full disk in the
    middle leaves the old file, never a cut-off one (which would still parse, its lost keys defaulted)."""
    atomic_write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))
