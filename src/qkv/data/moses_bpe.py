"""BPE on Moses tokens: the preprocessing of most Multi30k papers (Sennrich et al. 2016, "Neural Machine
Translation of Rare Words with Subword Units", applied to text split by the Moses tokenizer, Koehn et al.
2007), e.g. Wu et al. 2021's Transformer-Tiny: lowercased, Moses-tokenized, 10k joint BPE merges.

qkv's other BPE (:class:`qkv.data.hf_tokenizers.BPETokenizer`) is byte-level, as in GPT-2: it reads raw text
and splits words itself. This one reads what the papers' models read:

- ``encode(text)``: lowercase (for ``lowercase-moses-bpe``), split into Moses tokens for the tokenizer's
  language (sacremoses, without XML escaping), then split each token into BPE subwords that end in ``</w>``
  at a word's last piece, as subword-nmt does (Hugging Face ``tokenizers``: a ``BPE`` model with
  ``end_of_word_suffix``); a character never seen in training is ``<unk>``;
- ``decode(ids)``: join the subwords back into Moses tokens (Hugging Face's ``BPEDecoder``), then undo the
  Moses split (sacremoses' detokenizer), so a hypothesis is ordinary text for sacreBLEU.

A joint vocabulary (``shared_vocab``) is learnt on both languages' Moses tokens; each side keeps its own
language for the Moses rules (German and English abbreviations differ), over the same ids.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qkv.atomic import atomic_write_text
from qkv.data.hf_tokenizers import META_FILE, _TrainedByQkv
from qkv.data.metrics import moses_tokenizer
from qkv.errors import UserError
from qkv.special import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID

if TYPE_CHECKING:
    from tokenizers import Tokenizer as HFTokenizer

MOSES_KINDS = ("moses-bpe", "lowercase-moses-bpe")
_END_OF_WORD = "</w>"


class MosesBPETokenizer(_TrainedByQkv):
    """Moses tokens split into BPE subwords (module docstring); ``lang`` picks the Moses rules."""

    def __init__(self, hf: HFTokenizer, lang: str, *, lowercase: bool) -> None:
        from sacremoses import MosesDetokenizer

        super().__init__(hf)
        self.lang, self.lowercase = lang, lowercase
        self.kind = MOSES_KINDS[1] if lowercase else MOSES_KINDS[0]
        self.moses = moses_tokenizer(lang, lowercase=lowercase, escape=False)
        self._detok = MosesDetokenizer(lang=lang)

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(self.moses(text), add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        moses = [self.moses(t) for t in texts]
        return [e.ids for e in self.hf.encode_batch(moses, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        """Pieces joined into Moses tokens (a ``<unk>`` stands as a token of its own: it lacks the ``</w>``
        that would end its word), then the Moses split undone."""
        pieces = [self.token(i) for i in ids if i not in (PAD_ID, BOS_ID, EOS_ID)]
        pieces = [p + _END_OF_WORD if p == SPECIAL_TOKENS[UNK_ID] else p for p in pieces]
        return self._detok.detokenize(self.hf.decoder.decode(pieces).split())

    def save(self, directory: str | os.PathLike) -> None:
        """``tokenizer.json``, then the meta file with the kind and the Moses language (each atomically)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path / "tokenizer.json", self.hf.to_str(pretty=True))
        atomic_write_text(path / META_FILE, json.dumps({"kind": self.kind, "lang": self.lang}))

    @classmethod
    def load(cls, directory: str | os.PathLike, meta: dict) -> MosesBPETokenizer:
        """Read back what :meth:`save` wrote (``meta``: the meta file's JSON, already read)."""
        lang = meta.get("lang")
        if not isinstance(lang, str) or not lang:
            raise UserError(f"{Path(directory) / META_FILE}: a {meta.get('kind')} tokenizer needs its Moses 'lang'")
        from tokenizers import Tokenizer

        path = Path(directory) / "tokenizer.json"
        try:
            hf = Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises a bare Exception for unreadable files
            raise UserError(f"{path}: not a readable Hugging Face tokenizer file ({err})") from None
        try:
            return cls(hf, lang, lowercase=meta.get("kind") == MOSES_KINDS[1])
        except ValueError as err:
            raise UserError(f"{path}: {err}") from None


def train_moses_bpe(
    texts: Mapping[str, Sequence[str]], vocab_size: int, *, lowercase: bool, min_frequency: int = 2
) -> dict[str, MosesBPETokenizer]:
    """One BPE vocabulary of at most ``vocab_size`` tokens -- qkv's specials, the symbols of the training
    text (each character, and each character ending a word, ``e</w>``), then merges -- learnt on the Moses
    tokens of every language's ``texts`` (language -> training texts) together; one tokenizer per language
    over it. Pass one language for a vocabulary of its own.

    The merges are learnt by subword-nmt (Sennrich et al.'s own ``learn_bpe``, as the papers did: a pair is
    merged while it occurs ``min_frequency`` times or more) and applied by Hugging Face ``tokenizers``."""
    import contextlib
    import io
    from collections import Counter

    from subword_nmt.learn_bpe import learn_bpe
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    words: Counter[str] = Counter()
    for lang, group in texts.items():
        split = moses_tokenizer(lang, lowercase=lowercase, escape=False)  # (once: it reads the language's rules)
        words.update(word for text in group for word in split(text).split())
    alphabet = sorted({c for word in words for c in word[:-1]} | {word[-1] + _END_OF_WORD for word in words})
    n_merges = vocab_size - len(SPECIAL_TOKENS) - len(alphabet)
    if n_merges < 0:
        raise UserError(
            f"vocab_size {vocab_size} leaves no room for BPE merges: the training text alone has "
            f"{len(alphabet)} symbols (+ {len(SPECIAL_TOKENS)} specials); raise vocab_size"
        )
    learnt = io.StringIO()
    dictionary = [f"{word} {count}" for word, count in words.items()]  # (subword-nmt's "word count" lines)
    if n_merges > 0 and any(len(word) > 1 for word in words):  # (learn_bpe fails when there is no pair)
        with contextlib.redirect_stderr(io.StringIO()):  # (its progress bar: seconds, not worth a line)
            learn_bpe(dictionary, learnt, n_merges, min_frequency=min_frequency, is_dict=True)
    pairs = [line.split(" ") for line in learnt.getvalue().splitlines()[1:]]  # (after "#version: 0.2")
    merges = [(a, b) for a, b in pairs]
    order = SPECIAL_TOKENS + alphabet + [a + b for a, b in merges]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(order))}  # (two merges may make one token)
    hf = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token=SPECIAL_TOKENS[UNK_ID], end_of_word_suffix=_END_OF_WORD)
    )
    hf.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # the Moses tokens, as they are
    hf.decoder = decoders.BPEDecoder(suffix=_END_OF_WORD)
    return {lang: MosesBPETokenizer(hf, lang, lowercase=lowercase) for lang in texts}
