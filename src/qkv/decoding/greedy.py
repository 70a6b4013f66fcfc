"""Greedy decoding: at every step take the single most probable next token."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from qkv.decoding.hypotheses import Hypotheses
from qkv.decoding.loop import generate


def greedy(model: Any, src: Tensor | None = None, max_len: int = 100, *, prompt: Any = None) -> Hypotheses:
    """Greedy search for every row of ``src (B, T_s)`` (seq2seq) or every ``prompt`` (LM; ``src=None``).

    ``max_len`` bounds the generated tokens (EOS included); ``prompt`` is a list of token-id lists (or a
    ``(B, T)`` tensor). Returns :class:`Hypotheses` (tokens without BOS/prompt/EOS, log-probability scores).
    """
    return generate(model, src, max_len, lambda logits: logits.argmax(dim=-1), prompt)
