"""Abstractive summarization: AESLC (Zhang & Tetreault 2019, "This Email Could Save Your Life:
Introducing the Task of Email Subject Line Generation") — email body to subject line — and SAMSum
(Gliwa et al. 2019, "SAMSum Corpus: A Human-annotated Dialogue Dataset for Abstractive
Summarization") — chat dialogue to summary.

AESLC is read straight from ``aeslc/aeslc.tar.gz`` (members ``.../enron_subject_line/{train,dev,test}/
*.subject``: body, then ``@subject``, and in dev/test ``@ann0``..``@ann2``), or from an unpacked
``aeslc/enron_subject_line/`` folder (not both). SAMSum is ``samsum/{train,validation,test}.csv`` or
``.csv.gz`` (one of the two per split, never both) with columns ``id,dialogue,summary``. Every file comes
from one folder (see :mod:`qkv.data.paths`). Metrics: ROUGE-1/2/L F1 (rouge-score, stemming); on AESLC
dev/test also ``*_ann``: ROUGE against the best of the three extra human subject lines.
"""

from __future__ import annotations

import functools
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from qkv.data import metrics, paths
from qkv.data.tasks import Example, canonical_split, cap, seq2seq_tokenizers, shared_seq2seq_tokenizer
from qkv.data.textio import check_lengths, decode, read_csv
from qkv.errors import UserError

AESLC_URL = "https://github.com/ryanzhumich/AESLC/archive/refs/heads/master.tar.gz"
SAMSUM_URL = "https://huggingface.co/datasets/knkarthick/samsum/resolve/main/{name}"
SAMSUM_FILES = {"train": "train", "dev": "validation", "test": "test"}
_AESLC_SPLITS = {"train": "train", "dev": "dev", "test": "test"}
_SECTIONS = ("@subject", "@ann0", "@ann1", "@ann2")


def parse_aeslc(text: str, where: str) -> tuple[str, list[str]]:
    """(body, [subject, ann0, ann1, ann2 when present]) of one ``.subject`` file."""
    parts: dict[str, list[str]] = {"body": []}
    current = "body"
    for line in text.split("\n"):
        if line.strip() in _SECTIONS:
            current = line.strip()
            parts[current] = []
        else:
            parts[current].append(line)
    subject = "\n".join(parts.get("@subject", [])).strip()
    body = "\n".join(parts["body"]).strip()
    if not subject or not body:
        raise UserError(f"{where}: expected an email body, then '@subject' and a subject line")
    anns = ["\n".join(parts[a]).strip() for a in _SECTIONS[1:] if a in parts]
    return body, [subject, *anns]


def read_aeslc(path: Path) -> dict[str, list[tuple[str, str, list[str]]]]:
    """split -> [(where, body, refs)] sorted by file name, from the tarball or an unpacked folder."""
    st = path.stat()
    return _read_aeslc(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=2)
def _read_aeslc(path: Path, *_stamp: int) -> dict[str, list[tuple[str, str, list[str]]]]:
    out: dict[str, list[tuple[str, str, list[str]]]] = {s: [] for s in _AESLC_SPLITS}
    if path.is_dir():
        for split in out:
            for f in sorted((path / split).glob("*.subject")):
                where = str(f)
                out[split].append((where, *parse_aeslc(decode(f.read_bytes(), where), where)))
        return out
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                if (
                    member.isfile()
                    and member.name.endswith(".subject")
                    and len(parts) >= 3
                    and parts[-3] == "enron_subject_line"
                    and parts[-2] in out
                ):
                    where = f"{path}:{member.name}"
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    out[parts[-2]].append((where, *parse_aeslc(decode(data, where), where)))
    except (tarfile.TarError, OSError, EOFError) as err:
        raise UserError(f"{path}: not a readable .tar.gz archive ({err})") from None
    for split, rows in out.items():
        if not rows:
            raise UserError(f"{path}: no enron_subject_line/{split}/*.subject files inside")
        rows.sort(key=lambda r: r[0])
    return out


def _aeslc_source(data_dir: str | None) -> Path:
    """The tarball, or the unpacked ``enron_subject_line/`` folder (one of them, in the one AESLC folder)."""
    return paths.locate("aeslc", "aeslc.tar.gz", data_dir, url=AESLC_URL, also=("enron_subject_line",))


def samsum_file(split: str, data_dir: str | None) -> Path:
    """``samsum/NAME.csv`` or ``NAME.csv.gz`` (both present is an error: they could differ)."""
    name = SAMSUM_FILES[split]
    return paths.locate(
        "samsum", f"{name}.csv", data_dir, url=SAMSUM_URL.format(name=f"{name}.csv"), also=(f"{name}.csv.gz",)
    )


def _count_aeslc(folder: Path) -> dict[str, int]:
    counts = dict.fromkeys(_AESLC_SPLITS, 0)
    with tarfile.open(folder / "aeslc.tar.gz", "r:gz") as tar:
        for name in tar.getnames():
            parts = name.split("/")
            if name.endswith(".subject") and len(parts) >= 3 and parts[-2] in counts:
                counts[parts[-2]] += 1
    return counts


def _count_samsum(folder: Path) -> dict[str, int]:
    return {s: len(read_csv(folder / f"{f}.csv.gz", ["dialogue", "summary"])[0]) for s, f in SAMSUM_FILES.items()}


DATASETS = [
    paths.DatasetInfo(
        name="aeslc",
        task="summarization",
        folder="aeslc",
        files=("aeslc.tar.gz",),
        source="github.com/ryanzhumich/AESLC",
        licence="CC BY-NC-SA 4.0",
        count=_count_aeslc,
    ),
    paths.DatasetInfo(
        name="samsum",
        task="summarization",
        folder="samsum",
        files=tuple(f"{f}.csv.gz" for f in SAMSUM_FILES.values()),
        source="huggingface.co/datasets/knkarthick/samsum",
        licence="CC BY-NC-ND 4.0",
        count=_count_samsum,
    ),
]


@dataclass
class SummarizationTask:
    """Summarization options: ``dataset`` (``aeslc`` | ``samsum``), ``tokenizer``/``vocab_size`` per side,
    ``max_examples`` caps train, ``max_src_chars``/``truncate`` bound the source length. ``shared_vocab``
    trains one tokenizer on sources and summaries together and uses it for both sides, so a model can
    share its encoder/decoder embeddings and tie the output layer to them (``model.share_embeddings``,
    ``model.tie_embeddings``): a word of the source is then the same vector in the summary, which is how
    Transformer summarizers learn to copy (See et al. 2017 share one vocabulary for the same reason)."""

    dataset: str = "samsum"
    data_dir: str | None = None
    tokenizer: str = "bpe"
    vocab_size: int = 8000
    max_examples: int | None = None
    max_src_chars: int | None = None
    truncate: bool = False
    shared_vocab: bool = False
    seed: int = 0
    name: str = field(default="summarization", init=False)
    kind: str = field(default="seq2seq", init=False)
    primary_metric: str = field(default="rougeL", init=False)
    higher_is_better: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if self.dataset not in ("aeslc", "samsum"):
            raise UserError(f"summarization dataset must be 'aeslc' or 'samsum', got {self.dataset!r}")
        self._cache: dict[str, list[Example]] = {}

    def splits(self) -> tuple[str, ...]:
        return ("train", "dev", "test")

    def _load(self, split: str) -> tuple[list[str], list[str], list[list[str]]]:
        if self.dataset == "aeslc":
            rows = read_aeslc(_aeslc_source(self.data_dir))[split]
            return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
        path = samsum_file(split, self.data_dir)
        table, lines = read_csv(path, ["id", "dialogue", "summary"])
        wheres = [f"{path}:{n}" for n in lines]
        srcs = [r["dialogue"].replace("\r\n", "\n").strip() for r in table]
        return wheres, srcs, [[r["summary"].strip()] for r in table]

    def examples(self, split: str) -> list[Example]:
        split = canonical_split(split, self.splits())
        if split not in self._cache:
            wheres, srcs, refs = self._load(split)
            srcs = check_lengths(srcs, lambda i: wheres[i], self.max_src_chars, self.truncate)
            exs = [Example(src=s, tgt=r[0], refs=r if len(r) > 1 else []) for s, r in zip(srcs, refs, strict=True)]
            self._cache[split] = cap(exs, self.max_examples, self.seed) if split == "train" else exs
        return self._cache[split]

    def build_tokenizers(self, train: list[Example]):
        if self.shared_vocab:
            return shared_seq2seq_tokenizer(train, self.tokenizer, self.vocab_size)
        return seq2seq_tokenizers(train, self.tokenizer, self.tokenizer, self.vocab_size, self.vocab_size)

    def metric_references(self, examples: list[Example]) -> list[list[str]]:
        """The references the main ROUGE scores use: the original subject line of each example."""
        return [[e.tgt] for e in examples]

    def score(self, hyps: list[str], examples: list[Example]) -> dict[str, float]:
        out = metrics.rouge(hyps, self.metric_references(examples))
        if examples and all(len(e.refs) > 1 for e in examples):
            out.update(metrics.rouge(hyps, [e.refs[1:] for e in examples], prefix="ann_"))
        return out
