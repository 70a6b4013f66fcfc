"""A run directory, and how every command opens one: ``load_run(RUN) -> Run``.

Layout (written by ``qkv train --out RUN``)::

    RUN/config.yaml                     the resolved recipe
    RUN/tokenizer/src/, tokenizer/tgt/  the tokenizers, trained on the training split
    RUN/checkpoints/last.safetensors    weights + training state (resumable), last.json a readable copy;
                                        the state records a finished run (max_steps reached / early stop)
    RUN/checkpoints/previous.safetensors  the last before it (kept in case the newest proves bad)
    RUN/checkpoints/diverged.safetensors  a checkpoint set aside after a NaN because it was not good
    RUN/checkpoints/best.safetensors    weights of the best evaluation so far
    RUN/checkpoints/averaged.safetensors  mean of the last N step checkpoints (training.average_last)
    RUN/metrics.jsonl                   one JSON object per log line / evaluation
    RUN/samples.txt                     a few decoded examples at each evaluation

This module also holds the small helpers that turn the ``task`` section into data: opening the task,
naming its splits (a split the task lacks is an error, never a substitute), and capping their size.
"""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import torch
from torch import nn

from qkv.errors import UserError
from qkv.training.checkpoint import check_vocabulary, fit_weights, load_weights
from qkv.training.config import Config, TaskConfig, load_config

if TYPE_CHECKING:
    from qkv.data.tasks import Example, LanguageModelingTask, Seq2SeqTask, Task
    from qkv.data.tokenizers import Tokenizer

CONFIG_FILE = "config.yaml"
_Sized = TypeVar("_Sized", bound=Sized)
CHECKPOINT_NAMES = ("best", "last", "averaged")


@dataclass
class Run:
    """An opened run: the model (eval mode, weights loaded), its config, tokenizers and task."""

    model: nn.Module
    config: Config
    src_tok: Tokenizer
    tgt_tok: Tokenizer
    task: Task
    directory: Path
    checkpoint: Path


def open_task(cfg: TaskConfig) -> Task:
    """``qkv.data.get_task`` with the recipe's options (and ``data_dir`` when set)."""
    from qkv.data.tasks import get_task

    options = dict(cfg.options)
    if cfg.data_dir:
        options["data_dir"] = cfg.data_dir
    return get_task(cfg.name, **options)


def split_name(task: Task, which: str) -> str:
    """The canonical name (``train``, ``dev``, ``test``) of ``which`` for ``task``; ``valid``/``val``/``validation``
    mean ``dev`` (:func:`qkv.data.tasks.canonical_split`, the one place aliases live). A split the task lacks is
    a UserError naming the splits it has: a recipe without ``dev`` does not validate on ``test``, and
    ``evaluate --split test`` on a task without ``test`` does not score ``dev`` instead."""
    from qkv.data.tasks import canonical_split

    return canonical_split(which, task.splits(), task=task.name)


def split_data(task: Task, which: str, cap: int | None) -> list[Example] | str:
    """A split's examples (seq2seq: :func:`split_examples`) or text (lm: :func:`split_text`)."""
    from qkv.data.tasks import is_lm, is_seq2seq

    if is_lm(task):
        return split_text(task, which, cap)
    if is_seq2seq(task):
        return split_examples(task, which, cap)
    raise ValueError(f"task {task.name!r} has kind {task.kind!r} (expected 'seq2seq' or 'lm')")


def split_examples(task: Seq2SeqTask, which: str, cap: int | None) -> list[Example]:
    """A split's examples, capped to a seeded random subset of ``cap`` kept in file order (files are often
    sorted, so the first N would be a biased sample)."""
    from qkv.data.tasks import cap as random_subset

    name = split_name(task, which)
    return _not_empty(random_subset(list(task.examples(name)), cap, seed=0), task, name)


def split_text(task: LanguageModelingTask, which: str, cap: int | None) -> str:
    """A split's text, cut to its first ``cap`` characters."""
    name = split_name(task, which)
    text = task.text(name)
    return _not_empty(text[:cap] if cap else text, task, name)


def _not_empty(data: _Sized, task: Task, split: str) -> _Sized:
    """``data`` itself; an empty split is a UserError naming the task and the split: scored, it would give a
    loss of 0 and made-up metrics that look like a result."""
    if not data:
        raise UserError(f"task {task.name}: the {split} split is empty (no examples to train on or score)")
    return data


def resolve_checkpoint(run_dir: Path, checkpoint: str) -> Path:
    """``best`` (falls back to ``last``), ``last``, ``averaged``, or a path to a .safetensors file."""
    if checkpoint not in CHECKPOINT_NAMES:
        path = Path(checkpoint)
        if not path.is_file():
            raise UserError(f"{checkpoint}: no such checkpoint (use best, last, averaged or a file path)")
        return path
    order = ("best", "last") if checkpoint == "best" else (checkpoint,)
    for name in order:
        path = run_dir / "checkpoints" / f"{name}.safetensors"
        if path.is_file():
            return path
    raise UserError(f"{run_dir}: no {checkpoint} checkpoint in {run_dir / 'checkpoints'} (was the run trained?)")


def load_run(run_dir: str | Path, checkpoint: str = "best", device: str | torch.device = "cpu") -> Run:
    """Open a run directory: rebuild the model from its config, load weights and tokenizers."""
    from qkv.data.tokenizers import load_tokenizer
    from qkv.models.builder import build_model

    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise UserError(f"{run_dir}: not a run directory (no {CONFIG_FILE}); create one with `qkv train`")
    config = load_config(run_dir / CONFIG_FILE, every_section=True)  # (written whole by qkv train)
    src_tok = load_tokenizer(run_dir / "tokenizer" / "src")
    tgt_tok = load_tokenizer(run_dir / "tokenizer" / "tgt")
    model = build_model(config.model, src_tok.vocab_size, tgt_tok.vocab_size)
    path = resolve_checkpoint(run_dir, checkpoint)
    check_vocabulary(path, {"src": src_tok, "tgt": tgt_tok}, run_dir / "tokenizer")
    fit_weights(model, load_weights(path), path, run_dir / CONFIG_FILE)
    model.to(device).eval()
    return Run(model, config, src_tok, tgt_tok, open_task(config.task), run_dir, path)
