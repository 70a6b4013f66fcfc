"""Machine translation on Multi30k (Elliott et al. 2016, "Multi30K: Multilingual English-German Image
Descriptions") in any direction among en/de/fr/cs, or on any pair of line-aligned files.

Multi30k splits: ``train`` (29,000), ``dev`` = ``val`` (1,014), ``test`` = ``test_2016_flickr`` (1,000), raw
untokenized text from github.com/multi30k/dataset ``data/task1/raw/``. User files: ``files={"train":
[src, tgt], "dev": [...], "test": [...]}``, or one pair ``src_file``/``tgt_file`` split by line number
(line i is dev when i % 20 == 18, test when i % 20 == 19, else train). Metrics: sacreBLEU and chrF on
detokenized text, with their signatures in ``signatures`` after ``score``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qkv.data import metrics, paths
from qkv.data.moses_bpe import MOSES_KINDS
from qkv.data.tasks import Example, canonical_split, cap, seq2seq_tokenizers, shared_seq2seq_tokenizer
from qkv.data.textio import read_parallel, split_lines
from qkv.errors import UserError

LANGS = ("en", "de", "fr", "cs")
MULTI30K_FILES = {"train": "train", "dev": "val", "test": "test_2016_flickr"}
MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/{name}"
# SHA-256 of the decompressed content, to verify downloads (recompression does not change it).
MULTI30K_SHA256 = {
    "train.en.gz": "460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6",
    "train.de.gz": "2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72",
    "train.fr.gz": "5925a3c18f1587b6b54b87743106e6e8ab93618edb6f65d19eac0621f853a10d",
    "train.cs.gz": "2be68b38c8d586ff4f54eb13cc6e1baaaa053695b3f070d3038303a47f2268da",
    "val.en.gz": "1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227",
    "val.de.gz": "660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660",
    "val.fr.gz": "5304e444d842e962b2dda4d816b70b22a1765b15401642b7ca37a67477e708dc",
    "val.cs.gz": "d53827e469b0a1ca8d57e9e26b2b64c4bc4b33f5479c7b03ae87ae5c882c3e33",
    "test_2016_flickr.en.gz": "399a4382932c1aadd3ceb9bef1008d388a64c76d4ae4e9d4728c6f4301cac182",
    "test_2016_flickr.de.gz": "4be6b5b3236b79c25475c6bb829800a7ce559e9ba7a1f6c2394fe4d40be46d16",
    "test_2016_flickr.fr.gz": "cb3160d69b002bb638e66cc7612fcd56cb0af82eadc9c142dedc438afb885ef6",
    "test_2016_flickr.cs.gz": "45adb85f688de8407fddcbe1b36dca15d12aab868149b337e2576f2d6d2ff8d8",
}


def multi30k_file(split: str, lang: str, data_dir: str | None = None) -> Path:
    """``multi30k/SPLIT.LANG.gz`` from the one Multi30k folder (:func:`qkv.data.paths.dataset_folder`)."""
    name = f"{MULTI30K_FILES[split]}.{lang}.gz"
    return paths.locate(
        "multi30k", name, data_dir, url=MULTI30K_URL.format(name=name), sha256=MULTI30K_SHA256.get(name)
    )


def line_split(i: int) -> str:
    """Split of 0-based line ``i`` of a single user file pair: 18 of every 20 lines train, 1 dev, 1 test."""
    return {18: "dev", 19: "test"}.get(i % 20, "train")


def _count_multi30k(folder: Path) -> dict[str, int]:
    from qkv.data.textio import decode, read_bytes

    return {
        s: len(split_lines(decode(read_bytes(p), p)))
        for s, p in ((s, folder / f"{f}.en.gz") for s, f in MULTI30K_FILES.items())
    }


DATASETS = [
    paths.DatasetInfo(
        name="multi30k",
        task="translation",
        folder="multi30k",
        files=tuple(f"{f}.{lang}.gz" for f in MULTI30K_FILES.values() for lang in ("en", "de")),
        source="github.com/multi30k/dataset data/task1/raw/",
        licence="research use (Flickr30k captions)",
        count=_count_multi30k,
    )
]


@dataclass
class TranslationTask:
    """Translation options: ``src_lang``/``tgt_lang`` (Multi30k) or user ``files``/``src_file``+``tgt_file``;
    ``tokenizer`` (``bpe`` | ``word`` | ``char``, or ``lowercase-bpe`` | ``lowercase-word``: the model reads and
    writes lowercased text, as most Multi30k systems in the literature do, and is scored against lowercased
    references, so its cased and lowercased BLEU are one number; ``moses-bpe`` | ``lowercase-moses-bpe``: BPE on
    Moses tokens, split by the rules of ``src_lang`` and ``tgt_lang``, as those papers preprocess, see
    :mod:`qkv.data.moses_bpe`) and ``vocab_size`` per side; ``max_examples``
    caps train; ``max_chars``/``truncate`` bound line length. ``shared_vocab`` trains one tokenizer (of
    ``vocab_size``) on both languages and uses it for both sides, so the model can share and tie its embeddings
    (``model.share_embeddings``, ``model.tie_embeddings``), as Press & Wolf 2017 and the small Multi30k
    Transformers in the literature do."""

    src_lang: str = "de"
    tgt_lang: str = "en"
    files: dict[str, list[str]] | None = None
    src_file: str | None = None
    tgt_file: str | None = None
    data_dir: str | None = None
    tokenizer: str = "bpe"
    vocab_size: int = 8000
    max_examples: int | None = None
    max_chars: int | None = None
    truncate: bool = False
    shared_vocab: bool = False
    encoding: str = "utf-8"
    seed: int = 0
    name: str = field(default="translation", init=False)
    kind: str = field(default="seq2seq", init=False)
    primary_metric: str = field(default="bleu", init=False)
    higher_is_better: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if self.multi30k:
            for key in ("src_lang", "tgt_lang"):
                if getattr(self, key) not in LANGS:
                    raise UserError(f"translation {key}={getattr(self, key)!r}: Multi30k has {', '.join(LANGS)}")
            if self.src_lang == self.tgt_lang:
                raise UserError(f"translation src_lang and tgt_lang are both {self.src_lang!r}")
        if (self.src_file is None) != (self.tgt_file is None):
            raise UserError("translation needs both src_file and tgt_file (line-aligned), or neither")
        self.signatures: dict[str, str] = {}
        self._cache: dict[str, list[Example]] = {}

    @property
    def multi30k(self) -> bool:
        """Multi30k in ``src_lang``/``tgt_lang`` (False for the user's own files, whose languages are unknown)."""
        return self.files is None and self.src_file is None and self.tgt_file is None

    @property
    def lowercase(self) -> bool:
        """The tokenizer lowercases what it reads, so the data (targets, references) is lowercased too."""
        return self.tokenizer.startswith("lowercase-")

    def splits(self) -> tuple[str, ...]:
        if self.files is not None:
            return tuple(s for s in ("train", "dev", "test") if s in self.files)
        return ("train", "dev", "test")

    def _read(self, src: Path | str, tgt: Path | str) -> tuple[list[str], list[str]]:
        return read_parallel(src, tgt, encoding=self.encoding, max_chars=self.max_chars, truncate=self.truncate)

    def _pairs(self, split: str) -> list[tuple[str, str]]:
        if self.files is not None:
            pair = self.files[split]
            if len(pair) != 2:
                raise UserError(f"translation files[{split!r}] must be [source_file, target_file], got {pair!r}")
            return list(zip(*self._read(*pair), strict=True))
        if self.src_file is not None:
            rows = list(zip(*self._read(self.src_file, self.tgt_file), strict=True))  # type: ignore[arg-type]
            return [r for i, r in enumerate(rows) if line_split(i) == split]
        src = multi30k_file(split, self.src_lang, self.data_dir)
        tgt = multi30k_file(split, self.tgt_lang, self.data_dir)
        return list(zip(*self._read(src, tgt), strict=True))

    def examples(self, split: str) -> list[Example]:
        split = canonical_split(split, self.splits())
        if split not in self._cache:
            pairs = self._pairs(split)
            if not pairs:
                raise UserError(f"translation split {split!r} is empty")
            if split == "train":
                pairs = cap(pairs, self.max_examples, self.seed)
            if self.lowercase:  # training targets and the references it is scored against
                pairs = [(s.lower(), t.lower()) for s, t in pairs]
            self._cache[split] = [Example(src=s, tgt=t) for s, t in pairs]
        return self._cache[split]

    def build_tokenizers(self, train: list[Example]):
        if self.tokenizer in MOSES_KINDS:  # each side split by its own language's Moses rules
            return self._moses_tokenizers(train)
        if self.shared_vocab:
            return shared_seq2seq_tokenizer(train, self.tokenizer, self.vocab_size)
        return seq2seq_tokenizers(train, self.tokenizer, self.tokenizer, self.vocab_size, self.vocab_size)

    def _moses_tokenizers(self, train: list[Example]):
        from qkv.data.moses_bpe import train_moses_bpe

        if not train:
            raise UserError("cannot train tokenizers on an empty training split")
        lowercase = self.lowercase
        src, tgt = [e.src for e in train], [e.tgt for e in train]
        if self.shared_vocab:
            texts = (
                {self.src_lang: src + tgt}
                if self.src_lang == self.tgt_lang
                else {self.src_lang: src, self.tgt_lang: tgt}
            )
            both = train_moses_bpe(texts, self.vocab_size, lowercase=lowercase)
            return both[self.src_lang], both[self.tgt_lang]
        return (
            train_moses_bpe({self.src_lang: src}, self.vocab_size, lowercase=lowercase)[self.src_lang],
            train_moses_bpe({self.tgt_lang: tgt}, self.vocab_size, lowercase=lowercase)[self.tgt_lang],
        )

    def score(self, hyps: list[str], examples: list[Example]) -> dict[str, float]:
        refs = [e.references for e in examples]
        b, c = metrics.bleu(hyps, refs), metrics.chrf(hyps, refs)
        self.signatures = {"bleu": b.signature, "chrf": c.signature}
        return {"bleu": b.value, "chrf": c.value}
