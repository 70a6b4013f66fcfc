"""Greedy decoding: at every step take the single most probable next token."""

from __future__ import annotations

from torch import Tensor

from qkv.decoding.hypotheses import Hypotheses
from qkv.decoding.interface import DecodingModel, Prompt
from qkv.decoding.loop import generate


def greedy(
    model: DecodingModel,
    src: Tensor | None = None,
    max_len: int = 100,
    *,
    prompt: Prompt = None,
    no_repeat_ngram: int = 0,
) -> Hypotheses:
    """Greedy search for every row of ``src (B, T_s)`` (seq2seq) or every ``prompt`` (LM; ``src=None``).

    ``max_len`` bounds the generated tokens (EOS included); ``prompt`` is a list of token-id lists (or a
    ``(B, T)`` tensor); ``no_repeat_ngram = n > 0`` never repeats an n-gram (:mod:`qkv.decoding.repeats`).
    Returns :class:`Hypotheses` (tokens without BOS/prompt/EOS, the model's log-probability scores).
    """
    return generate(model, src, max_len, lambda logits: logits.argmax(dim=-1), prompt, no_repeat_ngram)
