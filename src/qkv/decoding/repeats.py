"""Blocking repeated n-grams at decoding time (Paulus, Xiong & Socher 2018, "A Deep Reinforced Model for
Abstractive Summarization", section 2.5: "we never output the same trigram twice"; fairseq's
``--no-repeat-ngram-size``, Hugging Face's ``no_repeat_ngram_size``).

A summarizer trained for a short budget loops ("Outlook Outage Outlook Outage"); banning, at every step,
each token that would complete an n-gram the hypothesis already contains removes those loops without
retraining. The ban is a decoding rule, not part of the model: results name it in their decoding label.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor


def repeated_ngram_bans(tokens: Sequence[int], n: int) -> list[int]:
    """The tokens that, appended to ``tokens``, would repeat one of its ``n``-grams (``n >= 1``).

    The last ``n - 1`` tokens are the prefix of the n-gram being completed; every earlier place where that
    prefix occurs bans the token that followed it there. ``n = 1`` bans every token already generated.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if len(tokens) < n:  # too short to contain an n-gram yet
        return []
    prefix = list(tokens[len(tokens) - n + 1 :])  # the (n - 1)-gram the next token would complete
    return [tokens[i + n - 1] for i in range(len(tokens) - n + 1) if list(tokens[i : i + n - 1]) == prefix]


def ban_repeated_ngrams(scores: Tensor, histories: Sequence[Sequence[int]], n: int) -> None:
    """Set ``scores[r, t] = -inf`` (in place; ``scores`` is ``(R, V)``) for every token ``t`` that would repeat
    an ``n``-gram of ``histories[r]``. ``n = 0`` leaves the scores as they are."""
    if n <= 0:
        return
    for row, history in enumerate(histories):
        banned = repeated_ngram_bans(history, n)
        if banned:
            scores[row, banned] = float("-inf")
