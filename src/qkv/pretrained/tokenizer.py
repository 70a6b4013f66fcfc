"""A checkpoint's own tokenizer (its ``tokenizer.json``, read with Hugging Face ``tokenizers``) behind qkv's
tokenizer protocol: ``encode`` (no specials), ``encode_batch``, ``decode`` (skips specials), ``token``,
``vocab_size``, ``kind``, ``save``.

Unlike qkv's own tokenizers, a checkpoint keeps its special ids (BERT's ``[PAD]`` is 0 and ``[CLS]`` 101;
GPT-2's ``<|endoftext|>`` is 50256): the model's ``pad_id``/``bos_id``/``eos_id`` say which they are.
``encode_for_model`` adds the specials the checkpoint expects (BERT: ``[CLS] ... [SEP]``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer

from qkv.data.tokenizers import META_FILE
from qkv.errors import UserError


class PretrainedTokenizer:
    kind = "pretrained"

    def __init__(self, hf: Tokenizer) -> None:
        self.hf = hf
        self.hf.no_padding()  # some checkpoints ship fixed-length padding/truncation for batch inference
        self.hf.no_truncation()

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> PretrainedTokenizer:
        try:
            hf = Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises a bare Exception for unreadable files
            raise UserError(f"{path}: not a readable Hugging Face tokenizer file ({err})") from None
        return cls(hf)

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.hf.encode_batch(list(texts), add_special_tokens=False)]

    def encode_for_model(self, text: str) -> list[int]:
        """Token ids with the checkpoint's own special tokens added (its post-processor template)."""
        return self.hf.encode(text).ids

    def decode(self, ids: Iterable[int]) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=True)

    def token(self, i: int) -> str:
        token = self.hf.id_to_token(i)
        if token is None:
            raise IndexError(f"token id {i} is outside the vocabulary (size {self.vocab_size})")
        return token

    def token_id(self, token: str) -> int | None:
        return self.hf.token_to_id(token)

    def save(self, directory: str | os.PathLike) -> None:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.hf.save(str(path / "tokenizer.json"))
        (path / META_FILE).write_text(json.dumps({"kind": self.kind}))
