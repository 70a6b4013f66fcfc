"""What every search returns: :class:`Hypotheses`, one generated sequence per input row."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Hypotheses:
    """The result of :func:`~qkv.decoding.greedy`, :func:`~qkv.decoding.beam_search` or :func:`~qkv.decoding.sample`.

    - ``tokens``: one list of token ids per input row -- what was generated, without BOS, without the
      prompt, without the final EOS;
    - ``scores``: the model's log-probability of those tokens (plus the EOS when ``finished``), summed;
      sampling reports it under the *unmodified* model (temperature 1, no filtering);
    - ``finished``: whether the row ended with EOS (False: it hit ``max_len``);
    - ``normalized_scores``: beam search only -- ``scores / length_penalty(length)``, the number beams
      are ranked by (see ``docs/decoding.md``).
    """

    tokens: list[list[int]]
    scores: list[float]
    finished: list[bool]
    normalized_scores: list[float] | None = None

    def __len__(self) -> int:
        return len(self.tokens)
