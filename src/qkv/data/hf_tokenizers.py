"""Hugging Face ``tokenizers`` behind qkv's tokenizer protocol -- the one home of that wrapper.

These kinds share it:

- :class:`BPETokenizer` (``kind = "bpe"``): byte-level BPE (Sennrich et al. 2016, "Neural Machine Translation
  of Rare Words with Subword Units"; byte-level as in GPT-2) trained by qkv on a task's training split, with
  qkv's special ids (``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3); any text round-trips.
- :class:`LowercaseBPETokenizer` (``kind = "lowercase-bpe"``): the same BPE behind Hugging Face's ``Lowercase``
  normalizer, so every input -- training text, a user's sentence in ``qkv generate`` or the explorer -- is
  lowercased before it is split: the text of the Multi30k systems in the literature (lowercased, tokenized, BPE;
  e.g. Wu et al. 2021's data). Text round-trips lowercased.
- :class:`LowercaseWordTokenizer` (``kind = "lowercase-word"``): whole words, lowercased, with punctuation
  marks as tokens of their own (Hugging Face ``WordLevel`` over its ``Whitespace`` pre-tokenizer, which splits
  ``\\w+|[^\\w\\s]+``), trained by qkv with the same special ids; a word outside the vocabulary is ``<unk>``.
  This is the text See et al. 2017 summarize (lowercased, tokenized words): a model that copies from its
  source then copies whole words, never subword pieces glued into non-words. ROUGE (rouge-score) lowercases
  and splits at every non-alphanumeric character itself, so scores of decoded text are unchanged by it.
- :class:`PretrainedTokenizer` (``kind = "pretrained"``): a checkpoint's own ``tokenizer.json``. It keeps the
  checkpoint's special ids (BERT's ``[PAD]`` is 0 and ``[CLS]`` 101; GPT-2's ``<|endoftext|>`` is 50256): the
  model's ``pad_id``/``bos_id``/``eos_id`` say which they are; ``encode_for_model`` adds the specials the
  checkpoint expects (BERT: ``[CLS] ... [SEP]``).

All: ``encode`` (no specials), ``encode_batch``, ``decode`` (skips specials), ``token(i)`` (an id outside
``0 .. vocab_size - 1`` raises ``IndexError`` naming it, as for every qkv tokenizer), ``token_id``,
``vocab_size``, ``kind``, ``save(dir)`` (``tokenizer.json`` + qkv's small meta file) and ``from_file``.

This module imports nothing of qkv above :mod:`qkv.data` (a test checks that reading a tokenizer does not
import :mod:`qkv.pretrained` and its checkpoint converters).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from qkv.atomic import atomic_write_text
from qkv.errors import UserError
from qkv.special import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID

if TYPE_CHECKING:
    from tokenizers import Tokenizer as HFTokenizer

META_FILE = "qkv_tokenizer.json"
"""The small JSON file (``{"kind": ...}``) that every saved qkv tokenizer directory holds."""

_QKV_SPECIAL_IDS = {PAD_ID, BOS_ID, EOS_ID}
_T = TypeVar("_T", bound="_HFTokenizer")


def check_token_id(i: int, vocab_size: int) -> None:
    """Raise ``IndexError`` naming ``i`` unless ``0 <= i < vocab_size`` (shared by every tokenizer's ``token``)."""
    if not 0 <= i < vocab_size:
        raise IndexError(f"token id {i} is outside the vocabulary (ids 0 to {vocab_size - 1})")


class _HFTokenizer:
    """What both kinds share: a ``tokenizers.Tokenizer`` in ``self.hf``; subclasses set ``kind`` and ``decode``."""

    kind = ""

    def __init__(self, hf: HFTokenizer) -> None:
        self.hf = hf

    @classmethod
    def from_file(cls: type[_T], path: str | os.PathLike) -> _T:
        """Read ``tokenizer.json`` at ``path``; a damaged file or a wrong vocabulary is a UserError naming it."""
        from tokenizers import Tokenizer

        try:
            hf = Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises a bare Exception for unreadable files
            raise UserError(f"{path}: not a readable Hugging Face tokenizer file ({err})") from None
        try:
            return cls(hf)
        except ValueError as err:
            raise UserError(f"{path}: {err}") from None

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.hf.encode_batch(list(texts), add_special_tokens=False)]

    def token(self, i: int) -> str:
        check_token_id(i, self.vocab_size)
        token = self.hf.id_to_token(i)
        if token is None:  # an id inside the range with no entry: a gap in tokenizer.json
            raise IndexError(f"token id {i} has no token in this vocabulary (a gap in tokenizer.json)")
        return token

    def token_id(self, token: str) -> int | None:
        """The id of ``token`` (e.g. ``"[CLS]"``), ``None`` when the vocabulary has no such token."""
        return self.hf.token_to_id(token)

    def save(self, directory: str | os.PathLike) -> None:
        """Write ``tokenizer.json``, then the small file naming the kind; each atomically (a kill or a full
        disk leaves the old file, never a cut-off one), and the kind last, so it never names a missing vocabulary."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path / "tokenizer.json", self.hf.to_str(pretty=True))  # what hf.save writes
        atomic_write_text(path / META_FILE, json.dumps({"kind": self.kind}))


class _TrainedByQkv(_HFTokenizer):
    """A vocabulary qkv trains itself: its first ids are qkv's special tokens (checked on load)."""

    def __init__(self, hf: HFTokenizer) -> None:
        super().__init__(hf)
        for i, tok in enumerate(SPECIAL_TOKENS):
            if self.hf.token_to_id(tok) != i:
                raise ValueError(f"{self.kind} vocabulary must give {tok} id {i}")

    def decode(self, ids: Iterable[int]) -> str:
        """Skips ``<pad>``/``<bos>``/``<eos>``; ``<unk>`` stays visible."""
        return self.hf.decode([i for i in ids if i not in _QKV_SPECIAL_IDS], skip_special_tokens=False)


class BPETokenizer(_TrainedByQkv):
    """Byte-level BPE trained by qkv: qkv's special ids, any text round-trips, no ``<unk>`` needed.

    The literal strings ``<pad>``/``<bos>``/``<eos>``/``<unk>`` in input text are read as the special tokens.
    """

    kind = "bpe"

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> BPETokenizer:
        return cls(_train_bpe(texts, vocab_size, min_frequency, lowercase=False))


def _train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int, *, lowercase: bool) -> HFTokenizer:
    """Byte-level BPE of ``vocab_size`` tokens learnt from ``texts``, qkv's special tokens first; ``lowercase``
    puts Hugging Face's ``Lowercase`` normalizer in front (in training and after: it is saved with the tokenizer)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    hf = Tokenizer(models.BPE())
    if lowercase:
        hf.normalizer = normalizers.Lowercase()
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf.train_from_iterator(texts, trainer=trainer)
    return hf


class LowercaseBPETokenizer(BPETokenizer):
    """:class:`BPETokenizer` that lowercases its input first (Hugging Face ``normalizers.Lowercase``, saved in
    ``tokenizer.json``, so a loaded tokenizer lowercases too); the special tokens are matched before it."""

    kind = "lowercase-bpe"

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> LowercaseBPETokenizer:
        return cls(_train_bpe(texts, vocab_size, min_frequency, lowercase=True))


class LowercaseWordTokenizer(_TrainedByQkv):
    """Lowercased whole words and punctuation marks, the most frequent first after qkv's special ids;
    decoded with one space between tokens (``"re : q3 budget"``: a WordLevel tokenizer has no decoder, and
    Hugging Face then joins tokens with spaces)."""

    kind = "lowercase-word"

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 30000, min_frequency: int = 2) -> LowercaseWordTokenizer:
        """Keep the ``vocab_size`` most frequent words seen at least ``min_frequency`` times."""
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

        hf = Tokenizer(models.WordLevel(unk_token=SPECIAL_TOKENS[UNK_ID]))
        hf.normalizer = normalizers.Lowercase()
        hf.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS, show_progress=False
        )
        hf.train_from_iterator(texts, trainer=trainer)
        return cls(hf)


class PretrainedTokenizer(_HFTokenizer):
    """A checkpoint's own tokenizer: its special ids, its post-processor (``encode_for_model``)."""

    kind = "pretrained"

    def __init__(self, hf: HFTokenizer) -> None:
        super().__init__(hf)
        self.hf.no_padding()  # some checkpoints ship fixed-length padding/truncation for batch inference
        self.hf.no_truncation()

    def encode_for_model(self, text: str) -> list[int]:
        """Token ids with the checkpoint's own special tokens added (its post-processor template)."""
        return self.hf.encode(text).ids

    def decode(self, ids: Iterable[int]) -> str:
        """Skips every special token of the checkpoint."""
        return self.hf.decode(list(ids), skip_special_tokens=True)
