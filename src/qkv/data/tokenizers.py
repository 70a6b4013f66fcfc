"""Tokenizers: characters, words, lowercased words with punctuation split off, and byte-level BPE
(Sennrich et al. 2016, "Neural Machine Translation of Rare Words with Subword Units"; byte-level as in
GPT-2), cased or lowercasing its input, all sharing the special ids of :mod:`qkv.special` (``<pad>`` 0,
``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3).

Protocol (every tokenizer): ``encode(text) -> list[int]`` (no specials added), ``encode_batch(texts)``,
``decode(ids) -> str`` (skips pad/bos/eos; an unknown symbol decodes as ``<unk>``), ``token(i) -> str``
(an id outside ``0 .. vocab_size - 1`` raises ``IndexError`` naming it), ``vocab_size``, ``kind`` and
``save(dir)``; :func:`load_tokenizer` reads any of them back, a checkpoint's own tokenizer included.
Tokenizers are trained on the training split only (:func:`train_tokenizer`).
BPE, lowercased words and a checkpoint's tokenizer wrap Hugging Face ``tokenizers``: :mod:`qkv.data.hf_tokenizers`.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from qkv.atomic import atomic_write_text
from qkv.data.hf_tokenizers import (
    META_FILE,
    BPETokenizer,
    LowercaseBPETokenizer,
    LowercaseWordTokenizer,
    PretrainedTokenizer,
    check_token_id,
)
from qkv.data.moses_bpe import MOSES_KINDS, MosesBPETokenizer, train_moses_bpe
from qkv.errors import UserError
from qkv.special import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID

__all__ = [
    "META_FILE",
    "BPETokenizer",
    "CharTokenizer",
    "LowercaseBPETokenizer",
    "LowercaseWordTokenizer",
    "MosesBPETokenizer",
    "PretrainedTokenizer",
    "Tokenizer",
    "WordTokenizer",
    "coverage",
    "describe",
    "load_tokenizer",
    "train_tokenizer",
    "vocabulary_fingerprint",
]
_SKIP = {PAD_ID, BOS_ID, EOS_ID}
TOKENIZER_KINDS = ("char", "word", "lowercase-word", "bpe", "lowercase-bpe", *MOSES_KINDS)
"""What :func:`train_tokenizer` trains (``lowercase-*`` kinds lowercase every input before splitting it;
``*moses-bpe``: BPE on Moses tokens, :mod:`qkv.data.moses_bpe`)."""
_WORD_RE = re.compile(r"\n|[^\s]+")


class Tokenizer(Protocol):
    """What every tokenizer offers (module docstring); ``token(i)`` raises ``IndexError`` outside the vocabulary."""

    kind: str

    @property
    def vocab_size(self) -> int: ...
    def encode(self, text: str) -> list[int]: ...
    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]: ...
    def decode(self, ids: Iterable[int]) -> str: ...
    def token(self, i: int) -> str: ...
    def save(self, directory: str | os.PathLike) -> None: ...


class _VocabTokenizer:
    """Shared plumbing of the character and word tokenizers: a token list with specials first."""

    kind = ""

    def __init__(self, tokens: Sequence[str]) -> None:
        if list(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"vocabulary must start with {SPECIAL_TOKENS}, got {list(tokens[:4])}")
        self.tokens = list(tokens)
        self._index = {t: i for i, t in enumerate(self.tokens) if i >= len(SPECIAL_TOKENS)}
        self._index[SPECIAL_TOKENS[UNK_ID]] = UNK_ID

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def token(self, i: int) -> str:
        check_token_id(i, len(self.tokens))  # (a negative id would otherwise index from the end)
        return self.tokens[i]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]  # type: ignore[attr-defined]

    def save(self, directory: str | os.PathLike) -> None:
        """Write the vocabulary as JSON (UTF-8), atomically: a kill or a full disk leaves the old file."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path / META_FILE, json.dumps({"kind": self.kind, "tokens": self.tokens}, ensure_ascii=False))


class CharTokenizer(_VocabTokenizer):
    """One id per Unicode character seen in training; unseen characters map to ``<unk>``."""

    kind = "char"

    @classmethod
    def train(cls, texts: Iterable[str]) -> CharTokenizer:
        chars: set[str] = set()
        for t in texts:
            chars.update(t)
        return cls(SPECIAL_TOKENS + sorted(chars - set(SPECIAL_TOKENS)))

    def encode(self, text: str) -> list[int]:
        get = self._index.get
        return [get(c, UNK_ID) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.tokens[i] for i in ids if i not in _SKIP)


class WordTokenizer(_VocabTokenizer):
    """Whitespace-separated words (a newline is a token of its own); most frequent words first."""

    kind = "word"

    @classmethod
    def train(cls, texts: Iterable[str], max_size: int | None = None, min_freq: int = 1) -> WordTokenizer:
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(_WORD_RE.findall(t))
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)
        words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max(0, max_size - len(SPECIAL_TOKENS))]
        return cls(SPECIAL_TOKENS + words)

    def encode(self, text: str) -> list[int]:
        get = self._index.get
        return [get(w, UNK_ID) for w in _WORD_RE.findall(text)]

    def decode(self, ids: Iterable[int]) -> str:
        out: list[str] = []
        for i in ids:
            if i in _SKIP:
                continue
            tok = self.tokens[i]
            if out and tok != "\n" and out[-1] != "\n":
                out.append(" ")
            out.append(tok)
        return "".join(out)


def train_tokenizer(kind: str, texts: Sequence[str], vocab_size: int | None = None, *, lang: str = "en") -> Tokenizer:
    """Train a ``char``, ``word``, ``lowercase-word``, ``bpe``, ``lowercase-bpe``, ``moses-bpe`` or
    ``lowercase-moses-bpe`` tokenizer on ``texts`` (the training split only); ``lang``: the Moses rules."""
    if kind == "char":
        return CharTokenizer.train(texts)
    if kind == "word":
        return WordTokenizer.train(texts, max_size=vocab_size)
    if kind == "lowercase-word":
        return LowercaseWordTokenizer.train(texts, vocab_size=vocab_size or 30000)
    if kind in MOSES_KINDS:
        _check_line_lengths(texts)
        return train_moses_bpe({lang: texts}, vocab_size or 8000, lowercase=kind.startswith("lowercase-"))[lang]
    if kind in ("bpe", "lowercase-bpe"):
        _check_line_lengths(texts)
        bpe = LowercaseBPETokenizer if kind == "lowercase-bpe" else BPETokenizer
        return bpe.train(texts, vocab_size=vocab_size or 8000)
    raise UserError(f"unknown tokenizer {kind!r} (choose {', '.join(TOKENIZER_KINDS)})")


FINGERPRINT_VERSION = "v1"
"""Prefix of :func:`vocabulary_fingerprint`'s value; a checkpoint recording another version is not checked
(so a later change of the definition never refuses the runs written before it)."""


def vocabulary_fingerprint(tok: Tokenizer) -> str:
    """``v1:`` + the SHA-256 of ``KIND \\0 LANG`` (``LANG``: a Moses tokenizer's language, else empty), then
    ``\\0 TOKEN`` for every id in order (UTF-8; an id without a token hashes as empty): what the checkpoints of
    a run record (:func:`qkv.training.checkpoint.save_checkpoint`), so that a run's weights are never read
    with another tokenizer's ids (a tokenizer folder copied from another run of the same vocabulary size
    loads and decodes without an error, into the wrong words)."""
    import hashlib

    digest = hashlib.sha256(f"{tok.kind}\0{getattr(tok, 'lang', '')}".encode())
    for i in range(tok.vocab_size):
        try:
            token = tok.token(i)
        except IndexError:  # a gap in a pretrained tokenizer.json: no token, hashed as such
            token = ""
        digest.update(b"\0" + token.encode("utf-8", "surrogatepass"))
    return f"{FINGERPRINT_VERSION}:{digest.hexdigest()}"


def _check_line_lengths(texts: Sequence[str]) -> None:
    from qkv.data.textio import MAX_LINE_CHARS

    longest = max(range(len(texts)), key=lambda i: len(texts[i]), default=None)
    if longest is not None and len(texts[longest]) > MAX_LINE_CHARS:  # (readers check first, naming the line)
        raise UserError(
            f"BPE training text {longest + 1} has {len(texts[longest]):,} characters, more than "
            f"qkv's limit of {MAX_LINE_CHARS:,} for one example (BPE training time grows with the "
            "square of a text's longest word); shorten or drop it"
        )


def load_tokenizer(directory: str | os.PathLike) -> Tokenizer:
    """Read back a tokenizer written by ``save``; a damaged or foreign file is a UserError naming it."""
    path = Path(directory)
    meta_path = path / META_FILE
    if not meta_path.exists():
        raise UserError(f"{meta_path}: no tokenizer saved here")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{meta_path}: not a qkv tokenizer file (binary data, not UTF-8 JSON)") from None
    except ValueError as err:
        raise UserError(f"{meta_path}: not valid JSON ({err}); the file is damaged") from None
    kind = meta.get("kind") if isinstance(meta, dict) else None
    if kind in ("char", "word"):
        tokens = meta.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise UserError(f"{meta_path}: 'tokens' must be a list of strings (the vocabulary); the file is damaged")
        try:
            return (CharTokenizer if kind == "char" else WordTokenizer)(tokens)
        except ValueError as err:
            raise UserError(f"{meta_path}: {err}") from None
    if kind == "bpe":
        return BPETokenizer.from_file(path / "tokenizer.json")
    if kind == "lowercase-bpe":
        return LowercaseBPETokenizer.from_file(path / "tokenizer.json")
    if kind == "lowercase-word":
        return LowercaseWordTokenizer.from_file(path / "tokenizer.json")
    if kind in MOSES_KINDS:
        return MosesBPETokenizer.load(path, meta)
    if kind == "pretrained":  # a checkpoint's own tokenizer, saved with a run that starts from it
        return PretrainedTokenizer.from_file(path / "tokenizer.json")
    raise UserError(
        f"{meta_path}: unknown tokenizer kind {kind!r} (expected {', '.join(TOKENIZER_KINDS)} or pretrained)"
    )


def coverage(tok: Tokenizer, texts: Sequence[str]) -> float:
    """Fraction of tokens in ``texts`` that are not ``<unk>`` (1.0 for byte-level BPE)."""
    total = unk = 0
    for ids in tok.encode_batch(texts):
        total += len(ids)
        unk += sum(1 for i in ids if i == UNK_ID)
    return 1.0 - unk / total if total else 1.0


def describe(tok: Tokenizer, texts: Sequence[str]) -> dict[str, float | int | str]:
    """What a run reports about a tokenizer: its kind, vocabulary size, and coverage of ``texts``
    (use held-out text, e.g. the dev split, to see how much of it becomes ``<unk>``)."""
    return {"kind": tok.kind, "vocab_size": tok.vocab_size, "coverage": coverage(tok, texts)}
