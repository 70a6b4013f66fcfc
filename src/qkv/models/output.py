"""What models return: `ModelOutput` from a forward pass, `Encoded` from `encode` (the decoding interface).

Attention weights are data, never stashed on modules (the annotated-transformer complaint): a forward pass
with ``need_weights=True`` returns every layer and every head, as in Vaswani et al. 2017, Figures 3-5.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from torch import Tensor

ATTENTION_KINDS = ("encoder_self", "decoder_self", "cross")


@dataclass(frozen=True)
class Attentions(Mapping[str, list[Tensor]]):
    """Every layer's and every head's attention weights from one forward pass, by kind.

    Each field is ``None`` when the model has no attention of that kind, else a list over layers of
    ``(B, H, T_q, T_k)`` weights -- the very tensors the layers' ``MultiHeadAttention`` returned (the viz hooks
    rely on that): ``encoder_self``, ``decoder_self`` (causal) and ``cross`` (decoder queries, encoder keys; an
    RNN's alignments: one layer, one head). Read a field (``out.attentions.cross``) or, as a read-only mapping
    over the kinds present, ``out.attentions["cross"]``, ``list(out.attentions)``, ``.items()``.
    """

    encoder_self: list[Tensor] | None = None
    decoder_self: list[Tensor] | None = None
    cross: list[Tensor] | None = None

    def __getitem__(self, kind: str) -> list[Tensor]:
        layers = getattr(self, kind, None) if kind in ATTENTION_KINDS else None
        if layers is None:
            raise KeyError(kind)
        return layers

    def __iter__(self) -> Iterator[str]:  # the kinds present, in ATTENTION_KINDS order
        return (f.name for f in fields(self) if getattr(self, f.name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class ModelOutput:
    """Result of ``model(...)``.

    - ``logits``: ``(B, T, V)``; for an encoder without an output head, the final hidden states ``(B, T, E)``.
    - ``attentions``: ``None`` unless asked for; else :class:`Attentions` (fields ``encoder_self``,
      ``decoder_self``, ``cross``, each a list over layers of ``(B, H, T_q, T_k)`` weights, rows summing to 1
      over allowed keys; also readable as a mapping, ``attentions["cross"]``). Recurrent alignments are
      ``cross``: one layer, one head.
    - ``hidden``: the final hidden states ``(B, T, E)`` (before the output projection), when the model has them.
    - ``state``: recurrent language models only, the recurrent state after the last token (a
      ``RecurrentState``), which truncated backpropagation through time carries into the next segment.
    - ``normalised``: ``logits`` are log-probabilities already (a pointer-generator's ``log P``,
      :mod:`qkv.models.copy`), so the loss reads them as they are instead of applying ``log_softmax`` again.
    """

    logits: Tensor
    attentions: Attentions | None = None
    hidden: Tensor | None = None
    state: Any = None
    normalised: bool = False


@dataclass
class Encoded:
    """The encoder's result, computed once per source batch and read by every ``decode_step``.

    - ``memory``: ``(B, T_s, E)`` encoder states (for RNNs: the encoder outputs);
    - ``src_mask``: ``(B, T_s)`` bool, True = a real (non-padding) source token;
    - ``state``: model-specific extras (e.g. an RNN encoder's final hidden state; a copying Transformer's source
      ids, :class:`qkv.models.copy.CopySource`); a plain Transformer leaves it None.
    """

    memory: Tensor
    src_mask: Tensor
    state: Any = None

    def select(self, index: Tensor) -> Encoded:
        """Batch rows ``index (B',)`` (kept, dropped or duplicated: beams, finished rows); ``state`` must
        have a ``select(index)`` of its own when it is set."""
        state = None if self.state is None else self.state.select(index)
        return Encoded(self.memory.index_select(0, index), self.src_mask.index_select(0, index), state)
