"""Evaluation: decode a split and score it with the task's metric, or measure a language model's loss.

- Sequence-to-sequence tasks: greedy or beam-search decoding (``qkv.decoding``), detokenized by the
  target tokenizer, scored by ``task.score`` (sacreBLEU, ROUGE, WER/PER, ...); plus the teacher-forced
  validation loss (mean negative log-likelihood per target token, no label smoothing).
- Language models: the mean negative log-likelihood per token over non-overlapping windows of the split,
  its perplexity ``exp(loss)`` and bits per token ``loss / ln 2``. With ``stride`` (``eval.lm_stride``) the
  windows slide instead, and each scores only its last ``stride`` tokens, so every token is predicted
  from at least ``context - stride`` tokens (the first window's excepted) -- the sliding-window
  perplexity of Hugging Face's "Perplexity of fixed-length models" guide. A recurrent LM trained with truncated
  BPTT (``training.carry_state``) is scored with its state carried through the text, as in Zaremba et al.:
  the split cut into 16 long streams, each read segment by segment (only each stream's first token is
  predicted without context -- 16 of PTB's 82k test tokens -- where Zaremba et al. read the test set as one).

Nothing here draws from the global random generators, so evaluating in the middle of training does not
change what training does next (exact resumption relies on that).
"""

from __future__ import annotations

from collections.abc import Sequence, Sized
from typing import TYPE_CHECKING

import torch
from torch import nn

from qkv.data.batching import collate, lm_windows, make_batch
from qkv.decoding.rules import NO_RULES, OutputRules
from qkv.special import EOS_ID, PAD_ID
from qkv.training.losses import count_tokens, token_cross_entropy

if TYPE_CHECKING:
    from qkv.data.tasks import Example, LanguageModelingTask, Seq2SeqTask, Task
    from qkv.data.tokenizers import Tokenizer
    from qkv.training.config import Config


def _require_data(data: Sized, task: Task) -> None:
    """Refuse to score nothing (:func:`qkv.training.run.split_data` names the empty split earlier)."""
    if not data:
        from qkv.errors import UserError

        raise UserError(f"task {task.name}: no examples to evaluate (an empty split scores as zeros, not a result)")


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def seq2seq_loss(model: nn.Module, src_ids: list[list[int]], tgt_ids: list[list[int]], batch_size: int = 64) -> float:
    """Teacher-forced mean NLL per target token (targets include EOS)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    device = _device(model)
    for start in range(0, len(src_ids), batch_size):
        index = list(range(start, min(start + batch_size, len(src_ids))))
        batch = make_batch(index, src_ids, tgt_ids)
        assert batch.src is not None  # (make_batch gives seq2seq batches a source)
        src, tgt = batch.src.to(device), batch.tgt.to(device)
        out = model(src, tgt[:, :-1])  # logits (B, T_t - 1, V)
        total += token_cross_entropy(out.logits, tgt[:, 1:], normalised=out.normalised).item()
        count += count_tokens(tgt[:, 1:])
    model.train(was_training)
    return total / max(count, 1)


@torch.no_grad()
def lm_nll(
    model: nn.Module,
    ids: list[int],
    context: int,
    max_tokens: int,
    batch_size: int = 16,
    *,
    carry_state: bool = False,
    stride: int | None = None,
) -> tuple[float, int]:
    """Summed NLL (nats) and number of predicted tokens over non-overlapping windows of ``context`` tokens,
    using at most the first ``max_tokens`` tokens of ``ids``.

    ``stride`` (attention LMs): windows of ``context`` tokens start every ``stride`` tokens, and each after
    the first scores only its last ``stride`` targets, so each token is scored once, from at least
    ``context - stride`` tokens of history (``None`` or ``context``: the non-overlapping windows).

    ``carry_state`` (recurrent LMs): instead, cut those tokens into ``batch_size`` contiguous streams and
    read each in segments of ``context`` tokens, every segment starting from the state the previous one
    ended with -- each token is predicted from its whole stream so far (all but each stream's first)."""
    was_training = model.training
    model.eval()
    ids = ids[: max_tokens + 1]
    device = _device(model)
    if carry_state:
        read = _carried_segments(model, ids, context, batch_size, device)
    else:
        read = _windows(model, ids, context, stride or context, batch_size, device)
    total, count = 0.0, 0
    for targets, logits in read:
        total += token_cross_entropy(logits, targets, pad_id=None).item()  # running text: no padding
        count += count_tokens(targets, pad_id=None)
    model.train(was_training)
    return total, count


def _windows(model: nn.Module, ids: list[int], context: int, stride: int, batch_size: int, device: torch.device):
    """Yield ``(targets (B, k), logits (B, k, V))`` over windows of ``context`` inputs starting every
    ``stride`` tokens, each read from the model's empty state: the first window's ``k = context`` targets,
    then each window's last ``k = stride`` (the ones no earlier window scored)."""
    windows = lm_windows(ids, context, stride)  # (N, context + 1)
    first = windows[:1].to(device)  # (1, context + 1): nothing before it, so all its targets are new
    yield first[:, 1:], model(first[:, :-1]).logits  # (1, context), (1, context, V)
    for start in range(1, len(windows), batch_size):  # a later window's new targets are its last `stride`
        chunk = windows[start : start + batch_size].to(device)  # (B, context + 1)
        logits = model(chunk[:, :-1]).logits  # (B, context, V)
        yield chunk[:, -stride:], logits[:, -stride:]  # (B, stride), (B, stride, V)


def _carried_segments(model: nn.Module, ids: list[int], context: int, streams: int, device: torch.device):
    """Yield ``(targets (B, t), logits (B, t, V))`` reading ``ids`` as ``B`` contiguous streams in
    consecutive segments of ``t <= context`` inputs, the recurrent state carried from segment to segment."""
    streams = max(1, min(streams, (len(ids) - 1) // max(context, 1)))  # each stream gets >= one full segment
    per_row = len(ids) // streams
    if per_row < 2:
        from qkv.errors import UserError

        raise UserError(f"text has {len(ids)} tokens, too few to score")
    rows = torch.as_tensor(ids[: streams * per_row], dtype=torch.long).view(streams, per_row).to(device)  # (B, n)
    state = None
    for start in range(0, per_row - 1, context):
        segment = rows[:, start : start + context + 1]  # (B, t + 1): t inputs and their next tokens
        out = model(segment[:, :-1], state=state)
        state = out.state
        yield segment[:, 1:], out.logits  # (B, t) targets, (B, t, V)


def lm_stride(config: Config, override: int | None = None, language_model: bool = True) -> int | None:
    """The window stride to score a run with: ``override`` (the ``--lm-stride`` flag) or the recipe's
    ``eval.lm_stride``; ``None`` for disjoint windows, a recurrent model scored with its state carried, or a
    task that is not language modeling (where the flag is an error: nothing is read in windows)."""
    if override is None:
        return config.eval.lm_stride if language_model else None
    from qkv.errors import UserError

    context = config.training.context
    if not language_model:
        raise UserError(f"--lm-stride applies to language models; {config.task.name} is decoded, not read in windows")
    if config.training.carry_state:
        raise UserError("--lm-stride: this run is scored with its recurrent state carried, not in windows")
    if not 1 <= override <= context:
        raise UserError(f"--lm-stride {override}: must be between 1 and the run's context ({context})")
    return override


def lm_scoring_label(config: Config, stride: int | None) -> str:
    """How a language model's text was scored, for result tables: ``teacher-forced`` plus the reading."""
    if config.training.carry_state:
        return "teacher-forced, state carried"
    if stride is not None and stride < config.training.context:
        return f"teacher-forced, sliding window (stride {stride} of {config.training.context})"
    return "teacher-forced"


def evaluate_lm(
    model: nn.Module,
    task: LanguageModelingTask,
    text: str,
    tok: Tokenizer,
    context: int,
    max_tokens: int,
    *,
    carry_state: bool = False,
    stride: int | None = None,
) -> dict[str, float]:
    """``loss``, ``ppl``, ``bits_per_token`` (and ``bpc`` for character-level tasks) on ``text``;
    ``carry_state`` and ``stride``: see :func:`lm_nll`. Empty ``text`` is a UserError."""
    _require_data(text, task)
    nll, count = lm_nll(model, tok.encode(text), context, max_tokens, carry_state=carry_state, stride=stride)
    # character-level: one token per character, so the scored text is its first `count + 1` characters
    chars = text[: count + 1][1:] if getattr(task, "level", None) == "char" else None
    return {k: float(v) for k, v in task.score_nll(nll, count, chars).items()}


@torch.no_grad()
def translate(
    model: nn.Module,
    src_ids: Sequence[Sequence[int]],
    *,
    beam: int = 1,
    max_len: int = 128,
    batch_size: int = 64,
    rules: OutputRules = NO_RULES,
) -> list[list[int]]:
    """Decode each source (token ids without specials) to target ids, greedy or with beam search, under
    ``rules`` (:mod:`qkv.decoding.rules`: no repeated n-grams, a minimum length).

    Sources are decoded in batches of similar length; the result is in the input order.
    """
    from qkv.decoding import as_decoding_model, beam_search, greedy

    check_positions(model, src_ids, max_len)
    decoder = as_decoding_model(model)
    was_training = model.training
    model.eval()
    device = _device(model)
    order = sorted(range(len(src_ids)), key=lambda i: len(src_ids[i]))
    out: list[list[int]] = [[] for _ in src_ids]
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        src = collate([list(src_ids[i]) + [EOS_ID] for i in index], PAD_ID).to(device)  # (B, T_s)
        if beam > 1:
            hyps = beam_search(decoder, src, beam=beam, max_len=max_len, rules=rules)
        else:
            hyps = greedy(decoder, src, max_len=max_len, rules=rules)
        for i, tokens in zip(index, hyps.tokens, strict=True):
            out[i] = [int(t) for t in tokens]
    model.train(was_training)
    return out


def check_positions(model: nn.Module, src_ids: Sequence[Sequence[int]], max_len: int) -> None:
    """A model with learned positions has no position beyond its table: a source longer than it (with its
    ``<eos>``), or ``max_len`` decoded tokens past it, is an error naming the input or the length, before any
    decoding (the model itself would stop with a traceback in the middle of a batch)."""
    from qkv.errors import UserError
    from qkv.models.positions import learned_position_limit

    limit = learned_position_limit(model)
    if limit is None:
        return
    for number, ids in enumerate(src_ids, 1):
        if len(ids) + 1 > limit:
            raise UserError(
                f"input {number} has {len(ids) + 1} tokens (with <eos>), more than the {limit} positions this "
                f"model learned (model.max_len): shorten it"
            )
    if max_len > limit:
        raise UserError(
            f"decoding up to {max_len} tokens needs more positions than the {limit} this model learned "
            f"(model.max_len): ask for at most {limit} (--max-len, or eval.max_len in a recipe)"
        )


def evaluate_seq2seq(
    model: nn.Module,
    task: Seq2SeqTask,
    examples: list[Example],
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    *,
    beam: int = 1,
    max_len: int = 128,
    rules: OutputRules = NO_RULES,
) -> tuple[dict[str, float], list[str]]:
    """Decode ``examples`` and score them: ``(metrics, hypotheses)``; metrics include ``loss``. No examples
    is a UserError: their scores would be zeros that read like a result."""
    _require_data(examples, task)
    src_ids = src_tok.encode_batch([e.src for e in examples])
    tgt_ids = tgt_tok.encode_batch([e.tgt for e in examples])
    decoded = translate(model, src_ids, beam=beam, max_len=max_len, rules=rules)
    hyps = [tgt_tok.decode(ids) for ids in decoded]
    metrics = {k: float(v) for k, v in task.score(hyps, examples).items()}
    metrics["loss"] = seq2seq_loss(model, src_ids, tgt_ids)
    return metrics, hyps


def primary(task: Task, metrics: dict[str, float]) -> tuple[str, float, bool]:
    """``(name, value, higher_is_better)`` of the metric that picks the best checkpoint."""
    name = task.primary_metric
    if name not in metrics:
        return "loss", metrics["loss"], False
    return name, metrics[name], task.higher_is_better
