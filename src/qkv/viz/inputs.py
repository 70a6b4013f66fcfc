"""What to type into a model: an example the model understands, and user text turned into what its task
was trained on.

- :func:`example_text` -- the explorer's and the CLI's default input for a task: a shipped model's
  example, else the first validation example of a synthetic task (``reverse``: ``"3 1 4 1 5 9"``-like
  digits), else a generic sentence.
- :func:`prepare` -- G2P models read one lowercased word (``G2PTask.normalize``): ``"Attention "`` becomes
  ``"attention"``; several words or characters outside the model's alphabet are a clear message, never
  ``<unk>`` tokens and a nonsense output.
"""

from __future__ import annotations

from typing import Any

from qkv.errors import UserError

FALLBACK = "the cat sat on the mat"
LM_EXAMPLE = "ROMEO:\nWhat light"  # tinyshakespeare, the LM recipe's data set
PROBES = ("copy", "reverse", "sort", "assoc-recall", "selective-copy", "listops")


def task_name(task: Any) -> str | None:
    return getattr(task, "name", None) if task is not None else None


def example_text(task: Any) -> str:
    """A short input that the model of ``task`` was trained to read."""
    from qkv.assets import example_for

    name = task_name(task)
    if name == "translation" and getattr(task, "src_lang", "de") != "de":
        name = None  # the shipped example is German
    if name == "lm":
        return LM_EXAMPLE
    shipped = example_for(name)
    if shipped is not None:
        return shipped
    if name in PROBES:
        try:
            split = next(s for s in task.splits() if s != "train")
            return task.examples(split)[0].src
        except Exception:  # a probe that cannot build its data here: the generic example
            return FALLBACK
    return FALLBACK


def prepare(text: str, task: Any, tokenizer: Any) -> str:
    """``text`` as the task reads it (G2P: one lowercased word in the model's alphabet)."""
    if task_name(task) != "g2p":
        return text
    word = task.normalize(text) if hasattr(task, "normalize") else text.strip().lower()
    words = word.split()
    if len(words) > 1:
        raise UserError(
            f"this grapheme-to-phoneme model transcribes one word at a time; the text has {len(words)} words "
            f"({', '.join(words[:4])}{', ...' if len(words) > 4 else ''}): type one of them"
        )
    alphabet = _alphabet(tokenizer)
    if alphabet is not None and word:
        unknown = sorted({c for c in word if c not in alphabet})
        if unknown:
            raise UserError(
                f"the word {word!r} has characters the model never saw ({' '.join(map(repr, unknown))}); "
                f"it reads {' '.join(sorted(alphabet))}"
            )
    return word


def _alphabet(tokenizer: Any) -> set[str] | None:
    """The characters of a character-level tokenizer (None for other kinds)."""
    if getattr(tokenizer, "kind", None) != "char":
        return None
    return {t for t in getattr(tokenizer, "tokens", []) if len(t) == 1}  # the special tokens are "<...>"
