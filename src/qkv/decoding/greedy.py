"""Greedy decoding: at every step take the single most probable next token."""

from __future__ import annotations

from torch import Tensor

from qkv.decoding.hypotheses import Hypotheses
from qkv.decoding.interface import DecodingModel, Prompt
from qkv.decoding.loop import generate
from qkv.decoding.rules import NO_RULES, OutputRules


def greedy(
    model: DecodingModel,
    src: Tensor | None = None,
    max_len: int = 100,
    *,
    prompt: Prompt = None,
    rules: OutputRules = NO_RULES,
) -> Hypotheses:
    """Greedy search for every row of ``src (B, T_s)`` (seq2seq) or every ``prompt`` (LM; ``src=None``).

    ``max_len`` bounds the generated tokens (EOS included); ``prompt`` is a list of token-id lists (or a
    ``(B, T)`` tensor); ``rules`` ban tokens before each choice (:mod:`qkv.decoding.rules`).
    Returns :class:`Hypotheses` (tokens without BOS/prompt/EOS, the model's log-probability scores).
    """
    return generate(model, src, max_len, lambda logits: logits.argmax(dim=-1), prompt, rules)
