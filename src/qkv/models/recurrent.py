"""The recurrent encoder-decoders the Transformer replaced, behind qkv's one decoding interface.

* no attention -- Sutskever, Vinyals & Le 2014 (LSTM) and Cho et al. 2014 (GRU): the source becomes one
  fixed vector that starts the decoder and is fed to every step;
* additive attention -- Bahdanau, Cho & Bengio 2015: bidirectional encoder, attention queried with the
  previous decoder state;
* multiplicative attention -- Luong, Pham & Manning 2015: attention after the RNN step, an attentional
  hidden state, and input feeding;
* with ``copy``, either attention also points at source tokens to copy them: See, Liu & Manning 2017's
  pointer-generator (:mod:`qkv.models.copy`).

The encoder (:mod:`qkv.models.recurrent_encoder`) and the decoder step
(:mod:`qkv.models.recurrent_decoder`) live in their own files; this one wires them together and speaks
the decoding interface of ``docs/architecture.md``: ``encode`` once, ``init_state``, ``decode_step``
with an explicit :class:`~qkv.models.recurrent_decoder.RecurrentState`, ``reorder`` for beams. The
alignment weights come back as ``attentions["cross"] = [(B, 1, T_t, T_s)]`` -- one layer, one head -- the
same form as a Transformer's cross-attention, so the same plots draw both.

The decoder's first state is the encoder's final state. A bidirectional encoder's final state (both
directions side by side) is twice as wide as the decoder, so it passes through a ``tanh`` bridge layer,
as in Bahdanau et al. (appendix A.2.2, which uses the backward state); a unidirectional encoder's state is
handed over as is (Sutskever et al.; Luong et al.).

Notation: ``B`` batch, ``T_s``/``T_t`` source/target lengths, ``L`` layers, ``H`` hidden size, ``V`` vocabulary.
"""

from __future__ import annotations

from torch import Tensor, nn

from qkv.models.config import RnnAttention, RnnCell
from qkv.models.copy import SourceWords
from qkv.models.output import Attentions, Encoded, ModelOutput
from qkv.models.recurrent_decoder import RecurrentDecoder, RecurrentState, SourceState
from qkv.models.recurrent_encoder import RecurrentEncoder
from qkv.special import BOS_ID, EOS_ID, PAD_ID


class RecurrentSeq2Seq(nn.Module):
    """A GRU/LSTM encoder-decoder, with no, additive or multiplicative attention."""

    kind = "seq2seq"

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        *,
        embed_dim: int = 256,
        hidden_size: int = 256,
        num_layers: int = 1,
        cell: RnnCell = "gru",
        bidirectional: bool = False,
        attention: RnnAttention = "none",
        input_feeding: bool = False,
        dropout: float = 0.0,
        copy: bool = False,
        pad_id: int = PAD_ID,
        bos_id: int = BOS_ID,
        eos_id: int = EOS_ID,
    ) -> None:
        super().__init__()
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.cell = cell
        self.attention = attention
        self.encoder = RecurrentEncoder(
            src_vocab,
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            cell=cell,
            bidirectional=bidirectional,
            dropout=dropout,
            pad_id=pad_id,
        )
        enc_size = self.encoder.output_size
        self.bridge = nn.Linear(enc_size, hidden_size) if bidirectional else None
        self.bridge_cell = nn.Linear(enc_size, hidden_size) if bidirectional and cell == "lstm" else None
        self.decoder = RecurrentDecoder(
            tgt_vocab,
            embed_dim,
            hidden_size,
            enc_size,
            num_layers=num_layers,
            cell=cell,
            attention=attention,
            input_feeding=input_feeding,
            dropout=dropout,
            copy=copy,
            pad_id=pad_id,
        )
        self.copies = copy  # the output is a pointer-generator's log P

    # -- the decoding interface -----------------------------------------------------------------------
    def encode(self, src: Tensor) -> Encoded:
        """Run the encoder once: ``memory (B, T_s, dirs*H)``, ``src_mask (B, T_s)``, ``state``: :class:`SourceState`."""
        outputs, hidden, cell, src_mask = self.encoder(src)  # (B, T_s, D_enc), (L, B, D_enc), ...
        summary = hidden[-1]  # (B, D_enc): the top layer's final state, the attention-free "c"
        if self.bridge is not None:
            hidden = self.bridge(hidden).tanh()  # (L, B, H)
        if cell is not None and self.bridge_cell is not None:
            cell = self.bridge_cell(cell).tanh()  # (L, B, H)
        initial = RecurrentState(hidden=hidden, cell=cell)
        words = SourceWords.of(src) if self.copies else None  # the ids the pointer copies from
        keys = self.decoder.project_keys(outputs)  # (B, T_s, D_a)
        extras = SourceState(initial=initial, summary=summary, projected_keys=keys, words=words)
        return Encoded(memory=outputs, src_mask=src_mask, state=extras)

    def init_state(self, encoded: Encoded, batch_size: int | None = None) -> RecurrentState:
        """The decoder's state before the first target token (``batch_size`` must match the source batch)."""
        initial: RecurrentState = encoded.state.initial
        if batch_size is not None and batch_size != initial.hidden.size(1):
            raise ValueError(f"batch_size {batch_size} does not match the encoded batch {initial.hidden.size(1)}")
        return RecurrentState(hidden=initial.hidden, cell=initial.cell, feed=None)

    def decode_step(self, tokens: Tensor, encoded: Encoded, state: RecurrentState) -> tuple[Tensor, RecurrentState]:
        """Logits ``(B, t, V)`` for ``tokens (B, t)`` that follow what ``state`` has seen, and the new state."""
        logits, state, _ = self.decoder(tokens, encoded, state)
        return logits, state

    def reorder(
        self, encoded: Encoded, state: RecurrentState, index: Tensor, *, same_rows: bool = False
    ) -> tuple[Encoded, RecurrentState]:
        """Keep/duplicate batch rows ``index (B',)`` of both the encoder output and the decoder state; with
        ``same_rows`` (beams reordered within their input) the encoder output is left as it is."""
        return (encoded if same_rows else encoded.select(index)), state.select(index)

    # -- teacher forcing ------------------------------------------------------------------------------
    def forward(self, src: Tensor, tgt_in: Tensor, *, need_weights: bool = False) -> ModelOutput:
        """Teacher-forced logits ``(B, T_t, V)`` for ``tgt_in (B, T_t)`` (BOS first, right-padded).

        With ``need_weights`` and attention, ``attentions={"cross": [(B, 1, T_t, T_s)]}``; an attention-free
        model has no alignments and returns ``attentions=None``.
        """
        encoded = self.encode(src)
        logits, _, weights = self.decoder(tgt_in, encoded, self.init_state(encoded))
        attentions = None
        if need_weights and weights is not None:
            attentions = Attentions(cross=[weights.unsqueeze(1)])  # (B, 1, T_t, T_s): one layer, one head
        return ModelOutput(logits=logits, attentions=attentions, normalised=self.copies)
