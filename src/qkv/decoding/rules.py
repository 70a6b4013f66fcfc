"""Output rules: constraints every decoder (greedy, beam, sampling) applies to the next-token scores before it
chooses, without changing the model or the scores it reports.

* ``no_repeat_ngram = n > 0`` never repeats an n-gram of the output (:mod:`qkv.decoding.repeats`; Paulus,
  Xiong & Socher 2018; fairseq's ``--no-repeat-ngram-size``).
* ``min_len = m > 0`` never ends an output before it holds ``m`` tokens: EOS is banned while fewer than
  ``m`` have been generated (fairseq's ``--min-len``, Hugging Face's ``min_new_tokens``). A summarizer
  trained on a short budget learns to stop early -- its outputs are about half as long as the references --
  and ROUGE's F1 charges for every missing word.
* ``ban_unk`` never outputs ``<unk>`` (OpenNMT's ``-ban_unk_token``; fairseq's ``--unkpen`` is the soft
  form): a word-level model writes ``<unk>`` where the word it wants is outside its vocabulary -- a whole
  output of ``<unk>`` for some inputs -- and no reference contains it, so its next-best word can only score
  better. The id is the ``<unk>`` of the vocabularies qkv trains (:data:`qkv.special.UNK_ID`).

A rule is part of the decoding, not of the model: results name it in their decoding label
(``greedy-norepeat3-min5-nounk``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from qkv.decoding.repeats import ban_repeated_ngrams
from qkv.special import UNK_ID


@dataclass(frozen=True)
class OutputRules:
    """The rules a decoding follows; the default follows none."""

    no_repeat_ngram: int = 0  # never repeat an n-gram of this size (0 = off)
    min_len: int = 0  # never end before this many generated tokens, EOS excluded (0 = off)
    ban_unk: bool = False  # never output <unk>

    def __post_init__(self) -> None:
        for name in ("no_repeat_ngram", "min_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0 (0 = off), got {value!r}")
        if not isinstance(self.ban_unk, bool):
            raise ValueError(f"ban_unk must be true or false, got {self.ban_unk!r}")

    @property
    def active(self) -> bool:
        """Whether any rule can change a decoding."""
        return bool(self.no_repeat_ngram or self.min_len or self.ban_unk)

    @property
    def label(self) -> str:
        """The suffix results append to a decoding's name: ``-norepeat3``, ``-min5``, ``-nounk``, or ``""``."""
        return (
            (f"-norepeat{self.no_repeat_ngram}" if self.no_repeat_ngram else "")
            + (f"-min{self.min_len}" if self.min_len else "")
            + ("-nounk" if self.ban_unk else "")
        )

    def apply(self, scores: Tensor, histories: Sequence[Sequence[int]], eos_id: int) -> None:
        """Set ``scores[r, t] = -inf`` (in place; ``scores`` is ``(R, V)``) for every token ``t`` the rules
        forbid after ``histories[r]``, the tokens row ``r`` has generated so far (prompt excluded)."""
        ban_repeated_ngrams(scores, histories, self.no_repeat_ngram)
        if self.min_len:
            short = [row for row, history in enumerate(histories) if len(history) < self.min_len]
            if short:
                scores[short, eos_id] = float("-inf")
        if self.ban_unk:
            scores[:, UNK_ID] = float("-inf")


NO_RULES = OutputRules()  # the default of every decoder: the model's own choice (frozen, so safe to share)
