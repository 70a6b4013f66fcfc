"""A decoder-only Transformer language model (Radford et al. 2018/2019, "GPT"/"GPT-2").

The Transformer decoder without cross-attention: causal self-attention and feed-forward layers over one
token stream, predicting each next token. Prompts are fed through ``decode_step`` like any other tokens
(``encode(None) -> None``), so :mod:`qkv.decoding` continues prompts with the same code that translates.

Notation: ``B`` batch, ``T`` length, ``E`` model dim, ``V`` vocabulary.
"""

from __future__ import annotations

from torch import Tensor, nn

from qkv.models.output import Attentions, ModelOutput
from qkv.models.transformer_stacks import DecoderState, TransformerDecoder
from qkv.special import BOS_ID, EOS_ID, PAD_ID


class DecoderOnlyLM(nn.Module):
    """GPT-style language model; ``kind = "lm"``."""

    kind = "lm"

    def __init__(
        self,
        decoder: TransformerDecoder,
        lm_head: nn.Linear,
        *,
        pad_id: int = PAD_ID,
        bos_id: int = BOS_ID,
        eos_id: int = EOS_ID,
    ) -> None:
        super().__init__()
        if decoder.has_cross_attention:
            raise ValueError("a decoder-only model has no encoder to cross-attend to")
        self.decoder, self.lm_head = decoder, lm_head
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id

    def forward(self, tokens: Tensor, *, need_weights: bool = False) -> ModelOutput:
        """``tokens (B, T)`` (right-padded) -> next-token logits ``(B, T, V)``."""
        hidden, self_weights, _ = self.decoder(tokens, need_weights=need_weights)  # (B, T, E)
        attentions = Attentions(decoder_self=self_weights) if need_weights else None
        return ModelOutput(self.lm_head(hidden), attentions, hidden)

    # -- the decoding interface --
    def encode(self, src: None = None) -> None:
        if src is not None:
            raise ValueError("a decoder-only model has no source: pass the prompt to decode_step")
        return None

    def init_state(self, encoded: None, batch_size: int) -> DecoderState:
        return DecoderState.empty(len(self.decoder.layers), cross=False)

    def decode_step(self, tokens: Tensor, encoded: None, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """Feed the next ``tokens (B, t)``; returns their logits ``(B, t, V)`` and the grown state."""
        hidden, _, _ = self.decoder(tokens, state=state)  # (B, t, E)
        return self.lm_head(hidden), state

    def reorder(
        self, encoded: None, state: DecoderState, index: Tensor, *, same_rows: bool = False
    ) -> tuple[None, DecoderState]:
        return None, state.reorder(index)  # no encoder side: same_rows changes nothing
