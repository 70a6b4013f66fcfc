"""The Transformer encoder-decoder of Vaswani et al. 2017, "Attention Is All You Need".

The encoder reads the whole source at once; the decoder predicts target token ``t`` from the target
prefix (causal self-attention) and the encoder output (cross-attention), and a linear layer -- often
tied to the target embedding (Press & Wolf 2017) -- turns its states into next-token logits. With
``copy`` (:mod:`qkv.models.copy`, See et al. 2017) the output is a pointer-generator's ``log P`` instead,
which can also copy source tokens.

Training calls ``forward(src, tgt_in)`` on whole sequences (teacher forcing). Generation uses the
decoding interface shared with the recurrent models: ``encode`` once, then ``decode_step`` with an
explicit :class:`~qkv.models.transformer_stacks.DecoderState` (KV caches), so :mod:`qkv.decoding`
works for every family. Cached step-by-step decoding reproduces the full forward pass.

Notation: ``B`` batch, ``T_s``/``T_t`` source/target lengths, ``E`` model dim, ``V`` vocabulary.
"""

from __future__ import annotations

from torch import Tensor, nn

from qkv.attention.masks import tokens_mask
from qkv.models.copy import CopyGenerator
from qkv.models.output import Attentions, Encoded, ModelOutput
from qkv.models.transformer_stacks import DecoderState, TransformerDecoder, TransformerEncoder
from qkv.special import BOS_ID, EOS_ID, PAD_ID


class Transformer(nn.Module):
    """Encoder-decoder Transformer; ``kind = "seq2seq"``."""

    kind = "seq2seq"

    def __init__(
        self,
        encoder: TransformerEncoder,
        decoder: TransformerDecoder,
        lm_head: nn.Linear,
        *,
        copy: CopyGenerator | None = None,
        pad_id: int = PAD_ID,
        bos_id: int = BOS_ID,
        eos_id: int = EOS_ID,
    ) -> None:
        super().__init__()
        if not decoder.has_cross_attention:
            raise ValueError("an encoder-decoder needs decoder layers with cross-attention")
        self.encoder, self.decoder, self.lm_head = encoder, decoder, lm_head
        self.copy = copy
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id

    def forward(self, src: Tensor, tgt_in: Tensor, *, need_weights: bool = False) -> ModelOutput:
        """``src (B, T_s)``, ``tgt_in (B, T_t)`` (BOS + target, right-padded) -> logits ``(B, T_t, V)``.

        Target padding needs no mask: it only ever comes after the real tokens, which the causal mask
        already hides from them.
        """
        encoded, enc_weights = self._encode(src, need_weights)
        hidden, self_weights, cross_weights = self.decoder(
            tgt_in, encoded.memory, encoded.src_mask, need_weights=need_weights
        )  # (B, T_t, E)
        attentions = None
        if need_weights:
            attentions = Attentions(encoder_self=enc_weights, decoder_self=self_weights, cross=cross_weights)
        return ModelOutput(self._logits(hidden, encoded), attentions, hidden, normalised=self.copy is not None)

    def _logits(self, hidden: Tensor, encoded: Encoded) -> Tensor:
        """Decoder states ``(B, t, E)`` -> logits ``(B, t, V)`` (with ``copy``: the mixture's ``log P``)."""
        logits = self.lm_head(hidden)  # (B, t, V)
        if self.copy is None:
            return logits
        return self.copy(logits, hidden, encoded.memory, encoded.src_mask, encoded.state).log_probs

    # -- the decoding interface --
    def _encode(self, src: Tensor, need_weights: bool) -> tuple[Encoded, list[Tensor]]:
        keep = tokens_mask(src, self.pad_id)  # (B, T_s)
        memory, weights = self.encoder(src, keep, need_weights=need_weights)  # (B, T_s, E)
        source = self.copy.source(src, memory) if self.copy is not None else None  # ids, pointer keys
        return Encoded(memory, keep, source), weights

    def encode(self, src: Tensor) -> Encoded:
        return self._encode(src, need_weights=False)[0]

    def init_state(self, encoded: Encoded, batch_size: int) -> DecoderState:
        return DecoderState.empty(len(self.decoder.layers), cross=True)

    def decode_step(self, tokens: Tensor, encoded: Encoded, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """Feed the next ``tokens (B, t)``; returns their logits ``(B, t, V)`` and the grown state."""
        hidden, _, _ = self.decoder(tokens, encoded.memory, encoded.src_mask, state=state)  # (B, t, E)
        return self._logits(hidden, encoded), state

    def reorder(
        self, encoded: Encoded, state: DecoderState, index: Tensor, *, same_rows: bool = False
    ) -> tuple[Encoded, DecoderState]:
        """Keep/duplicate batch rows ``index (B',)``; with ``same_rows`` (beams reordered within their input)
        the encoder side, equal for all beams of an input, is left as it is."""
        return (encoded if same_rows else encoded.select(index)), state.reorder(index, same_rows=same_rows)
