"""Extractive baselines for summarization: Lead-n and Longest-n, scored with the task's own ROUGE.

The floor a neural summarizer has to clear before it has learned anything a copy of the input does not
already give:

* **Lead-n** -- the first ``n`` sentences of the source, the classic news baseline (Nenkova 2005,
  "Automatic Text Summarization of Newswire: Lessons Learned from the Document Understanding
  Conference"; See et al. 2017 report Lead-3 on CNN/DailyMail). For AESLC (Zhang & Tetreault 2019,
  "This Email Could Save Your Life") Lead-1 proposes the email's first sentence as its subject line.
* **Longest-n** -- the ``n`` longest units in their original order; on SAMSum (Gliwa et al. 2019,
  "SAMSum Corpus"), whose paper reports Lead-3 and Longest-3, a unit is one utterance (one line,
  ``"Speaker: text"``, the speaker's name kept: the reference summaries name the speakers too).

Units: an email body is split into sentences (:func:`email_sentences`): AESLC bodies already hold one
sentence per line, and each line is further split after ``.``, ``!`` or ``?`` followed by a space and a
capital or digit, except after common abbreviations (``Mr.``, ``e.g.``, ``Inc.``) and single initials
(``W.``). A dialogue is split into its non-empty lines (:func:`dialogue_turns`).

Greetings (a decision, documented here): with ``skip_greeting`` (the default for emails) a leading
salutation is not part of the subject -- a first sentence that is only a greeting (``"Hi John,"``,
``"Hello all!"``) is dropped, and a greeting or bare addressee at the start of the first sentence
(``"Hi John, could you ..."``, ``"Phillip, could you ..."``, ``"Jeff/Brenda: please ..."``,
``"John - you may ..."``: one or two capitalised words, then ``,`` ``:`` ``;`` or `` -``) is cut off.
Only the first kept sentence is treated this way. :func:`strip_greeting` holds the rule.

Scores come from ``task.score`` -- the same ROUGE-1/2/L F1 (rouge-score, Porter stemming, x100) and, on
AESLC dev/test, the same ``ann_*`` scores against the annotators' subject lines, that the neural models
get from ``qkv evaluate``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qkv.data.summarization import SummarizationTask

# words that end in a period without ending a sentence (compared lowercased, without the final period)
ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "etc",
        "inc",
        "corp",
        "co",
        "ltd",
        "no",
        "nos",
        "fig",
        "dept",
        "est",
        "approx",
        "e.g",
        "i.e",
        "a.m",
        "p.m",
        "u.s",
        "u.k",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
    }
)
_END = re.compile(r"[.!?]+[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")  # a sentence end, then the next one's start
_GREETING_WORD = r"(?i:hi|hello|hey|dear|greetings|good\s+(?:morning|afternoon|evening))\b"
_ONLY_GREETING = re.compile(rf"^{_GREETING_WORD}[^.!?]{{0,30}}[,:;.!]*$")  # "Hi John," "Hello all!"
_GREETING_PREFIX = re.compile(rf"^{_GREETING_WORD}[^,:;.!?]{{0,30}}[,:;!]\s*(?=\S)")  # "Hi John, could .."
_ADDRESSEE_PREFIX = re.compile(r"^[A-Z][\w'/-]*(?:\s+[A-Z][\w'/-]*)?(?:\s*[,:;]|\s+-)\s+(?=\S)")  # "Phillip, could"

METHODS = ("lead", "longest")


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``: every line, cut after sentence-final punctuation (see the module notes)."""
    sentences: list[str] = []
    for line in text.split("\n"):
        start = 0
        for end in _END.finditer(line):
            words = line[start : end.start() + 1].split()
            last = words[-1].strip("\"'([").rstrip(".").lower() if words else ""  # "(Wed." -> "wed"
            if line[end.start()] == "." and (last in ABBREVIATIONS or (len(last) == 1 and last.isalpha())):
                continue  # "Mr. Smith", "James W. Reitmeyer": not a sentence end
            sentences.append(line[start : end.end()].strip())
            start = end.end()
        sentences.append(line[start:].strip())
    return [" ".join(s.split()) for s in sentences if s.strip()]


def strip_greeting(sentence: str) -> str:
    """``sentence`` without a leading salutation; ``""`` when it is nothing but a greeting."""
    if _ONLY_GREETING.match(sentence) and len(sentence.split()) <= 4:
        return ""
    for _ in range(3):  # "Hi all, John: ..." or "ARNOLD, JOHN D: ...": a few salutations in a row
        stripped = _ADDRESSEE_PREFIX.sub("", _GREETING_PREFIX.sub("", sentence, count=1), count=1)
        if stripped == sentence:
            break
        sentence = stripped[:1].upper() + stripped[1:]
    return sentence


def email_sentences(body: str, *, skip_greeting: bool = True) -> list[str]:
    """The sentences of an email body, the greeting removed from the front when ``skip_greeting``."""
    sentences = split_sentences(body)
    if skip_greeting:
        while sentences:
            first = strip_greeting(sentences[0])
            if first:
                sentences[0] = first
                break
            sentences.pop(0)
    return sentences


def dialogue_turns(dialogue: str) -> list[str]:
    """The utterances of a chat dialogue: its non-empty lines, ``"Speaker: text"``, whitespace normalised."""
    return [" ".join(line.split()) for line in dialogue.split("\n") if line.strip()]


def lead(units: list[str], n: int) -> str:
    """The first ``n`` units, joined by spaces."""
    return " ".join(units[:n])


def longest(units: list[str], n: int) -> str:
    """The ``n`` longest units (in words; the earlier one wins a tie), in their original order."""
    ranked = sorted(range(len(units)), key=lambda i: (-len(units[i].split()), i))[:n]
    return " ".join(units[i] for i in sorted(ranked))


def default_n(dataset: str) -> int:
    """Lead-1 for AESLC's one-line subjects, 3 for SAMSum's few-sentence summaries (Gliwa et al.)."""
    return 1 if dataset == "aeslc" else 3


def summarize(
    source: str, dataset: str, method: str = "lead", n: int | None = None, *, skip_greeting: bool = True
) -> str:
    """The baseline summary of one ``source`` (an AESLC email body or a SAMSum dialogue)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    n = default_n(dataset) if n is None else n
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    units = email_sentences(source, skip_greeting=skip_greeting) if dataset == "aeslc" else dialogue_turns(source)
    pick: Callable[[list[str], int], str] = lead if method == "lead" else longest
    return pick(units, n)


def run_baseline(
    task: SummarizationTask, split: str, method: str = "lead", n: int | None = None, *, skip_greeting: bool = True
) -> tuple[dict[str, float], list[str]]:
    """Summarize every example of ``task``'s ``split`` and score it with ``task.score``:
    ``(metrics, hypotheses)``."""
    examples = task.examples(split)
    hyps = [summarize(e.src, task.dataset, method, n, skip_greeting=skip_greeting) for e in examples]
    return {k: float(v) for k, v in task.score(hyps, examples).items()}, hyps
