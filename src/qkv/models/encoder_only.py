"""A BERT-style encoder-only Transformer (Devlin et al. 2019).

The Transformer encoder alone: every token attends to every (non-padding) token in both directions,
producing one contextual vector per token. With an output ``head`` it is a per-token classifier
(logits ``(B, T, V)``); without one, ``forward`` returns the hidden states as ``logits`` (what Hugging
Face's ``BertModel`` calls ``last_hidden_state``).

Notation: ``B`` batch, ``T`` length, ``E`` model dim, ``V`` output vocabulary.
"""

from __future__ import annotations

from torch import Tensor, nn

from qkv.attention.masks import tokens_mask
from qkv.models.output import Attentions, ModelOutput
from qkv.models.transformer_stacks import TransformerEncoder
from qkv.special import BOS_ID, EOS_ID, PAD_ID


class EncoderOnly(nn.Module):
    """Bidirectional encoder, optionally with a per-token output layer; ``kind = "encoder"``."""

    kind = "encoder"

    def __init__(
        self,
        encoder: TransformerEncoder,
        head: nn.Linear | None = None,
        *,
        pad_id: int = PAD_ID,
        bos_id: int = BOS_ID,
        eos_id: int = EOS_ID,
    ) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id

    def forward(self, tokens: Tensor, *, need_weights: bool = False, token_types: Tensor | None = None) -> ModelOutput:
        """``tokens (B, T)`` (right-padded with ``pad_id``) -> ``(B, T, V)`` logits, or ``(B, T, E)`` states."""
        keep = tokens_mask(tokens, self.pad_id)  # (B, T)
        hidden, weights = self.encoder(tokens, keep, token_types=token_types, need_weights=need_weights)
        logits = hidden if self.head is None else self.head(hidden)
        return ModelOutput(logits, Attentions(encoder_self=weights) if need_weights else None, hidden)
