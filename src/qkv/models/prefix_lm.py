"""A decoder-only Transformer for sequence-to-sequence tasks: the source is a prompt, the target its
continuation, one causal stack reads both.

This is the "Transformer-Decoder" of Liu et al. 2018 ("Generating Wikipedia by Summarizing Long
Sequences", section 4.2), the "language model" architecture of Raffel et al. 2020 (T5, section 3.2.1),
and how GPT-style models do translation. The stream is ``source target``: the first target token is
predicted at the last source token, the loss is on the target only, and decoding is called exactly as an
encoder-decoder's is (``BOS`` first), so it is trained, decoded and scored by the same code
(``kind = "seq2seq"``). There is no separator token on purpose: a separator's query carries no content,
so it must first fetch the question from the token before it -- on associative recall that extra hop
costs a 2-layer model thousands of steps (results/probes/recall-gpt-bos.json against recall-gpt.json).
Every source must have at least one token besides EOS (qkv's batches end each source with EOS; it is
dropped for the same reason).

Why qkv has it: associative recall (``k3 v1 k7 v0 ... ? k7 -> v0``) asks for a lookup whose query is the
*last* source token. A decoder-only stack does it at the query's own position (an induction head, Olsson
et al. 2022); an encoder-decoder must first learn to point its content-free ``BOS`` query at that
position through cross-attention, and on the probes it does not within thousands of steps
(benchmarks/recall_causal_vs_bidirectional.py, results/probes/).

Vocabularies. Source and target keep their own tokenizers: the embedding table has ``tgt_vocab +
src_vocab`` rows, target ids first (so the output layer predicts target ids as they are) and source id
``i`` at row ``tgt_vocab + i`` -- separate source and target embeddings, in one table.

Padding. Sources are right-padded in a batch; here they are moved to the left (``pad pad s1 s2 t1 t2``)
so that every row's target follows its own last source token, and padding keys are masked. With rotary
positions, which see only offsets between tokens, a row's logits are then the same in any batch -- so
this model requires ``positions: rotary``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from qkv.attention.masks import tokens_mask
from qkv.models.output import Attentions, Encoded, ModelOutput
from qkv.models.transformer_stacks import DecoderState, TransformerDecoder
from qkv.special import BOS_ID, EOS_ID, PAD_ID


def left_align(src: Tensor, pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-padded ``src (B, T_s)`` -> the same rows padded on the left, and their keep-mask ``(B, T_s)``."""
    t_s = src.size(1)
    shift = t_s - tokens_mask(src, pad_id).sum(dim=1)  # (B,): padding per row
    index = (torch.arange(t_s, device=src.device)[None, :] - shift[:, None]) % t_s  # (B, T_s)
    aligned = src.gather(1, index)  # row b moved right by shift[b]; its padding wraps round to the front
    return aligned, tokens_mask(aligned, pad_id)


class PrefixLM(nn.Module):
    """Decoder-only sequence-to-sequence Transformer; ``kind = "seq2seq"``."""

    kind = "seq2seq"

    def __init__(
        self,
        decoder: TransformerDecoder,
        lm_head: nn.Module,
        *,
        src_offset: int,
        pad_id: int = PAD_ID,
        bos_id: int = BOS_ID,
        eos_id: int = EOS_ID,
    ) -> None:
        super().__init__()
        if decoder.has_cross_attention:
            raise ValueError("a prefix LM is one causal stack: its decoder layers have no cross-attention")
        if decoder.rotary is None:
            raise ValueError("a prefix LM needs rotary positions (model.positions: rotary); see qkv.models.prefix_lm")
        self.decoder, self.lm_head = decoder, lm_head
        self.src_offset = src_offset  # source id i is embedding row src_offset + i
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id

    def _source(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """Right-padded ``src (B, T_s)`` -> left-aligned embedding rows ``(B, T_s)`` and keep-mask ``(B, T_s)``."""
        # qkv's sources end with EOS; dropped, so that the last source position is the last real token (an EOS
        # there would be one more content-free query, see the module docstring)
        src = src.masked_fill(src == self.eos_id, self.pad_id)  # (B, T_s)
        aligned, keep = left_align(src, self.pad_id)
        return aligned + self.src_offset, keep

    @staticmethod
    def _prefix_mask(keep: Tensor) -> Tensor:
        """Keys a stream position may see besides the causal mask: real tokens, and itself (a padding
        query with no real key before it would otherwise have nothing to attend to). ``(B, 1, T, T)``."""
        t = keep.size(1)
        itself = torch.eye(t, dtype=torch.bool, device=keep.device)  # (T, T)
        return (keep[:, None, :] | itself)[:, None]  # (B, 1, T, T)

    def forward(self, src: Tensor, tgt_in: Tensor, *, need_weights: bool = False) -> ModelOutput:
        """``src (B, T_s)`` (right-padded), ``tgt_in (B, T_t)`` (BOS + target) -> logits ``(B, T_t, V)``.

        The stream is ``source target[:-1]``: target token ``j`` is predicted at stream position
        ``T_s - 1 + j``, so the first one at the last source token (``tgt_in``'s BOS is not fed)."""
        rows, keep = self._source(src)  # (B, T_s) each
        stream = torch.cat([rows, tgt_in[:, 1:]], dim=1)  # (B, T_s + T_t - 1)
        keep = torch.cat([keep, torch.ones_like(tgt_in[:, 1:], dtype=torch.bool)], dim=1)
        hidden, weights, _ = self.decoder(stream, self_mask=self._prefix_mask(keep), need_weights=need_weights)
        hidden = hidden[:, src.size(1) - 1 :]  # (B, T_t, E): the positions that predict the target
        attentions = Attentions(decoder_self=weights) if need_weights else None  # over source and target
        return ModelOutput(self.lm_head(hidden), attentions, hidden)

    # -- the decoding interface: the prompt is fed with the first decode_step --
    def encode(self, src: Tensor) -> Encoded:
        """No encoder: ``memory`` holds the left-aligned source rows ``(B, T_s)``, read by the first step."""
        rows, keep = self._source(src)
        return Encoded(rows, keep)

    def init_state(self, encoded: Encoded, batch_size: int) -> DecoderState:
        return DecoderState.empty(len(self.decoder.layers), cross=False)

    def decode_step(self, tokens: Tensor, encoded: Encoded, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """Feed the next ``tokens (B, t)`` (the first call also feeds the source); returns ``(B, t, V)``."""
        t = tokens.size(1)
        if state.position == 0:  # tokens[:, 0] is BOS: the source's last token stands in for it
            stream = torch.cat([encoded.memory, tokens[:, 1:]], dim=1)  # (B, T_s + t - 1)
            keep = torch.cat([encoded.src_mask, torch.ones_like(tokens[:, 1:], dtype=torch.bool)], dim=1)
            hidden, _, _ = self.decoder(stream, self_mask=self._prefix_mask(keep), state=state)
        else:
            past = state.position
            keep = torch.ones(tokens.size(0), past + t, dtype=torch.bool, device=tokens.device)  # (B, T_k)
            keep[:, : encoded.src_mask.size(1)] = encoded.src_mask
            hidden, _, _ = self.decoder(tokens, self_mask=keep[:, None, None, :], state=state)
        return self.lm_head(hidden[:, -t:]), state  # (B, t, V)

    def reorder(
        self, encoded: Encoded, state: DecoderState, index: Tensor, *, same_rows: bool = False
    ) -> tuple[Encoded, DecoderState]:
        """Keep/duplicate batch rows ``index (B',)``; with ``same_rows`` (beams reordered within their input)
        the encoder side, equal for all beams of an input, is left as it is."""
        return (encoded if same_rows else encoded.select(index)), state.reorder(index, same_rows=same_rows)
