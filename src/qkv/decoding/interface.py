"""The decoding interface: what greedy search, beam search, sampling and scoring ask of a model.

Every qkv model family implements it (Transformer encoder-decoder, decoder-only LM, the recurrent
encoder-decoders and LMs), so each search is written once (fairseq's one incremental-decoding protocol for
LSTM and Transformer decoders). ``docs/architecture.md`` states the contract; this Protocol is its type.

- ``kind``: ``"seq2seq"`` (decode from a source) or ``"lm"`` (continue a prompt; ``encode(None) -> None``).
- ``bos_id``, ``eos_id``, ``pad_id``: the model's special ids (a pretrained checkpoint brings its own).
- ``encode(src (B, T_s)) -> Encoded`` once per batch; ``init_state(encoded, batch_size) -> state``;
  ``decode_step(tokens (B, t), encoded, state) -> (logits (B, t, V), state)`` for ``t >= 1`` tokens that
  follow what ``state`` has seen; ``reorder(encoded, state, index (B',), same_rows=False) -> (encoded,
  state)`` selects or duplicates batch rows (beams, and dropping finished rows); ``same_rows=True``
  promises that each new row comes from a row of the same input, so what the encoder computed (equal
  for all beams of an input) may be kept without copying.
- ``state`` is model-specific and opaque to the searches: KV caches for Transformers, hidden (and cell,
  input-feed) state for RNNs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from torch import Tensor, nn

from qkv.models.output import Encoded

if TYPE_CHECKING:
    from qkv.models.decoder_only import DecoderOnlyLM
    from qkv.models.encoder_decoder import Transformer
    from qkv.models.recurrent import RecurrentSeq2Seq
    from qkv.models.recurrent_lm import RecurrentLM

State: TypeAlias = Any
"""A model's decoder state (``DecoderState`` for Transformers, ``RecurrentState`` for RNNs): opaque here."""

Prompt: TypeAlias = "Tensor | Sequence[Sequence[int]] | None"
"""Per row, token ids fed before the search chooses: a list of lists (any lengths) or a ``(B, T)`` tensor."""


@runtime_checkable
class DecodingModel(Protocol):
    """A model the searches in :mod:`qkv.decoding` can run (see the module docstring)."""

    kind: str
    bos_id: int
    eos_id: int
    pad_id: int

    # ``src`` and ``encoded`` are typed ``Any``: a seq2seq model takes ``Tensor``/``Encoded`` there, an LM ``None``
    # (a parameter typed ``Tensor | None`` would reject both, parameters being contravariant).
    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...
    def encode(self, src: Any) -> Encoded | None: ...
    def init_state(self, encoded: Any, batch_size: int) -> State: ...
    def decode_step(self, tokens: Tensor, encoded: Any, state: State) -> tuple[Tensor, State]: ...
    def reorder(
        self, encoded: Any, state: State, index: Tensor, *, same_rows: bool = False
    ) -> tuple[Encoded | None, State]: ...


def as_decoding_model(model: nn.Module) -> DecodingModel:
    """``model`` typed as a :class:`DecodingModel`; ``TypeError`` naming what is missing when it is not one
    (e.g. an encoder-only model, which has nothing to decode)."""
    if isinstance(model, DecodingModel):
        return model
    needed = ("kind", "bos_id", "eos_id", "pad_id", "encode", "init_state", "decode_step", "reorder")
    missing = [name for name in needed if not hasattr(model, name)]
    raise TypeError(f"{type(model).__name__} does not implement the decoding interface (missing: {', '.join(missing)})")


if TYPE_CHECKING:  # the type checker proves that every model family implements the interface

    def _every_family_decodes(
        a: Transformer, b: DecoderOnlyLM, c: RecurrentSeq2Seq, d: RecurrentLM
    ) -> list[DecodingModel]:
        return [a, b, c, d]
