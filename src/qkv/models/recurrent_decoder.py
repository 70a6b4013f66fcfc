"""The recurrent decoders: one step of a GRU/LSTM decoder, with or without attention.

Three decoders, one per paper, differing in *where* attention sits in the step:

* ``"none"`` -- Cho et al. 2014, "Learning Phrase Representations using RNN Encoder-Decoder for
  Statistical Machine Translation" (and Sutskever, Vinyals & Le 2014, "Sequence to Sequence Learning
  with Neural Networks", whose decoder only starts from the encoder's final state): the whole source is
  squeezed into one fixed vector ``c`` (the encoder's final top-layer state), fed to every step:
  ``s_t = RNN([e(y_{t-1}); c], s_{t-1})``, ``r_t = tanh(W_o [s_t; c; e(y_{t-1})])``.
* ``"additive"`` -- Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly Learning to
  Align and Translate": attention *before* the RNN step, queried with the previous state:
  ``c_t = attn(s_{t-1}, h)``, ``s_t = RNN([e(y_{t-1}); c_t], s_{t-1})``,
  ``r_t = tanh(W_o [s_t; c_t; e(y_{t-1})])`` (the paper's readout is a maxout layer; we use tanh).
* ``"general"`` / ``"dot"`` -- Luong, Pham & Manning 2015, "Effective Approaches to Attention-based
  Neural Machine Translation": attention *after* the RNN step, queried with the new state:
  ``h_t = RNN([e(y_{t-1}); h~_{t-1}], h_{t-1})`` (input feeding, section 3.3; without it the input is
  ``e(y_{t-1})`` alone), ``c_t = attn(h_t, h)``, attentional state ``h~_t = tanh(W_c [c_t; h_t])``.

Logits are ``W_out dropout(r_t)`` (``h~_t`` for Luong). With ``copy`` (See et al. 2017, "Get To The Point",
whose pointer-generator is an attentional recurrent decoder; :mod:`qkv.models.copy`) the output is
``log P`` of a mixture instead: the step's alignment weights point at source tokens, and a gate
``p_gen = sigmoid(w . [s_t; c_t; e(y_{t-1})] + b)`` (Luong: ``[h~_t; e(y_{t-1})]``) weighs generating
against copying. The decoder's state is explicit
(:class:`RecurrentState`), so the same code runs a whole teacher-forced target in one call or one
token at a time during search. When nothing feeds back from one step into the next RNN input
(``"none"``, and Luong without input feeding) the RNN runs over all given tokens in one call; otherwise
it walks them one by one -- the feedback loop is the reason those models cannot be parallelised over time.

Notation: ``B`` batch, ``t`` new target tokens, ``T_s`` source length, ``L`` layers, ``H`` hidden size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from qkv.attention.recurrent import AdditiveAttention, MultiplicativeAttention
from qkv.models.config import RnnAttention, RnnCell
from qkv.models.copy import SourceWords, copy_gate, copy_mixture
from qkv.models.output import Encoded
from qkv.models.recurrent_encoder import RNN_CELLS


@dataclass
class RecurrentState:
    """What a recurrent decoder carries from one step to the next (batch is dim 1 of the RNN states)."""

    hidden: Tensor  # (L, B, H)
    cell: Tensor | None = None  # (L, B, H), LSTM only
    feed: Tensor | None = None  # (B, H): the previous attentional state h~ (Luong input feeding)

    def _map(self, fn: Callable[[Tensor], Tensor]) -> RecurrentState:
        return RecurrentState(
            hidden=fn(self.hidden),
            cell=None if self.cell is None else fn(self.cell),
            feed=None if self.feed is None else fn(self.feed),
        )

    def to(self, device: torch.device) -> RecurrentState:
        """The same state on ``device`` (a carried state read back from a checkpoint is on the CPU)."""
        return self._map(lambda t: t.to(device))

    def detach(self) -> RecurrentState:
        """The same values, cut from the autograd graph (truncated BPTT carries the state, not its history)."""
        return self._map(Tensor.detach)

    def select(self, index: Tensor) -> RecurrentState:
        """Keep/duplicate batch rows ``index (B',)`` (beam search)."""
        return RecurrentState(
            hidden=self.hidden.index_select(1, index),
            cell=None if self.cell is None else self.cell.index_select(1, index),
            feed=None if self.feed is None else self.feed.index_select(0, index),
        )


@dataclass
class SourceState:
    """The recurrent model's extras in :class:`~qkv.models.output.Encoded` (``encoded.state``)."""

    initial: RecurrentState  # the decoder's first state, bridged from the encoder's final state
    summary: Tensor  # (B, D_enc): the fixed context of the attention-free decoder
    projected_keys: Tensor | None = None  # (B, T_s, D_a): attention keys projected once per sentence
    words: SourceWords | None = None  # the source ids the pointer copies from (``copy`` only)

    def select(self, index: Tensor) -> SourceState:
        """Keep/duplicate batch rows ``index (B',)``."""
        keys = self.projected_keys
        return SourceState(
            initial=self.initial.select(index),
            summary=self.summary.index_select(0, index),
            projected_keys=None if keys is None else keys.index_select(0, index),
            words=None if self.words is None else self.words.select(index),
        )


class RecurrentDecoder(nn.Module):
    """Embedding + multi-layer GRU/LSTM + (optional) attention + readout + output projection."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_size: int,
        encoder_size: int,
        *,
        num_layers: int = 1,
        cell: RnnCell = "gru",
        attention: RnnAttention = "none",
        input_feeding: bool = False,
        dropout: float = 0.0,
        copy: bool = False,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        if attention not in ("none", "additive", "general", "dot"):
            raise ValueError(f"attention must be none, additive, general or dot, got {attention!r}")
        if copy and attention == "none":
            raise ValueError("copying points with the attention weights: it needs a decoder with attention")
        if input_feeding and attention not in ("general", "dot"):
            raise ValueError(f"input feeding belongs to Luong attention (general/dot), got attention={attention!r}")
        self.attention_kind = attention
        self.luong = attention in ("general", "dot")
        self.input_feeding = input_feeding
        self.cell = cell
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)

        self.attention: MultiplicativeAttention | AdditiveAttention | None = None
        if attention == "general" or attention == "dot":  # Luong
            rnn_input = embed_dim + (hidden_size if input_feeding else 0)
            self.attention = MultiplicativeAttention(hidden_size, encoder_size, kind=attention)
            self.combine = nn.Linear(encoder_size + hidden_size, hidden_size, bias=False)  # W_c
        else:
            rnn_input = embed_dim + encoder_size
            additive = attention == "additive"
            self.attention = AdditiveAttention(hidden_size, encoder_size, hidden_size) if additive else None
            self.readout = nn.Linear(hidden_size + encoder_size + embed_dim, hidden_size)  # W_o
        gate_input = hidden_size + embed_dim + (0 if self.luong else encoder_size)  # [h~; e] or [s; c; e]
        self.copy_gate = copy_gate(gate_input) if copy else None
        self.rnn = RNN_CELLS[cell](
            rnn_input, hidden_size, num_layers=num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
        )
        self.out_proj = nn.Linear(hidden_size, vocab_size)

    # -- pieces ---------------------------------------------------------------------------------------
    def project_keys(self, outputs: Tensor) -> Tensor | None:
        """Project the attention keys once per sentence (Bahdanau's ``U_a h_j``, Luong's ``W_a h_j``)."""
        return None if self.attention is None else self.attention.precompute_keys(outputs)  # (B, T_s, D_a)

    def _rnn(self, inputs: Tensor, state: RecurrentState) -> tuple[Tensor, RecurrentState]:
        """Run the RNN over ``inputs (B, t, D_in)`` from ``state``; returns top-layer outputs ``(B, t, H)``."""
        if self.cell == "lstm":
            outputs, (hidden, cell) = self.rnn(inputs, (state.hidden, state.cell))
        else:
            outputs, hidden = self.rnn(inputs, state.hidden)
            cell = None
        return outputs, RecurrentState(hidden=hidden, cell=cell, feed=state.feed)

    def _attend(self, query: Tensor, encoded: Encoded) -> tuple[Tensor, Tensor]:
        """One query ``(B, H)`` against the source: ``(context (B, D_enc), weights (B, T_s))``."""
        assert self.attention is not None
        return self.attention(
            query, encoded.memory, encoded.memory, encoded.src_mask, projected_keys=encoded.state.projected_keys
        )

    # -- the step -------------------------------------------------------------------------------------
    def forward(
        self, tokens: Tensor, encoded: Encoded, state: RecurrentState
    ) -> tuple[Tensor, RecurrentState, Tensor | None]:
        """Decode ``tokens (B, t)`` that follow what ``state`` has seen.

        Returns ``logits (B, t, V)`` (with ``copy``: the mixture's ``log P``), the new state, and the
        alignment weights ``(B, t, T_s)`` (``None`` without attention).
        """
        embedded = self.dropout(self.embedding(tokens))  # (B, t, E)
        weights: Tensor | None
        if self.luong:
            features, state, weights = self._luong(embedded, encoded, state)
            gate_input = torch.cat([features, embedded], dim=-1)  # (B, t, H + E)
        else:
            features, state, weights, gate_input = self._bahdanau_or_plain(embedded, encoded, state)
        logits = self.out_proj(self.dropout(features))  # (B, t, V)
        if self.copy_gate is None:
            return logits, state, weights
        assert weights is not None and encoded.state.words is not None  # (copy needs attention, words)
        log_probs = copy_mixture(logits, self.copy_gate(gate_input), weights, encoded.state.words)  # (B, t, V)
        return log_probs, state, weights

    def _bahdanau_or_plain(
        self, embedded: Tensor, encoded: Encoded, state: RecurrentState
    ) -> tuple[Tensor, RecurrentState, Tensor | None, Tensor]:
        """The RNN and attention steps; returns the readout ``r_t (B, t, H)``, the state, the alignment
        weights and the readout's input ``[s_t; c_t; e(y_{t-1})] (B, t, H + D_enc + E)``."""
        steps = embedded.size(1)
        if self.attention is None:  # fixed context: nothing feeds back, run all steps at once
            context = encoded.state.summary.unsqueeze(1).expand(-1, steps, -1)  # (B, t, D_enc)
            outputs, state = self._rnn(torch.cat([embedded, context], dim=-1), state)  # (B, t, H)
            weights = None
        else:  # the query is the previous state: one step at a time
            outs, contexts, alignments = [], [], []
            for i in range(steps):
                context, align = self._attend(state.hidden[-1], encoded)  # (B, D_enc), (B, T_s)
                step_in = torch.cat([embedded[:, i], context], dim=-1).unsqueeze(1)  # (B, 1, E + D_enc)
                out, state = self._rnn(step_in, state)  # (B, 1, H)
                outs.append(out)
                contexts.append(context)
                alignments.append(align)
            outputs = torch.cat(outs, dim=1)  # (B, t, H)
            context = torch.stack(contexts, dim=1)  # (B, t, D_enc)
            weights = torch.stack(alignments, dim=1)  # (B, t, T_s)
        readout_input = torch.cat([outputs, context, embedded], dim=-1)  # (B, t, H + D_enc + E)
        return torch.tanh(self.readout(readout_input)), state, weights, readout_input

    def _luong(
        self, embedded: Tensor, encoded: Encoded, state: RecurrentState
    ) -> tuple[Tensor, RecurrentState, Tensor]:
        if self.input_feeding:  # h~_{t-1} feeds the next input: one step at a time
            outs = []
            for i in range(embedded.size(1)):
                feed = state.feed
                if feed is None:
                    feed = embedded.new_zeros(embedded.size(0), self.hidden_size)  # (B, H)
                step_in = torch.cat([embedded[:, i], feed], dim=-1).unsqueeze(1)  # (B, 1, E + H)
                out, state = self._rnn(step_in, state)  # (B, 1, H)
                attentional, align = self._attentional(out[:, 0], encoded)  # (B, H), (B, T_s)
                state.feed = attentional
                outs.append((attentional, align))
            features = torch.stack([a for a, _ in outs], dim=1)  # (B, t, H)
            weights = torch.stack([w for _, w in outs], dim=1)  # (B, t, T_s)
            return features, state, weights
        outputs, state = self._rnn(embedded, state)  # (B, t, H): the RNN never sees attention
        pairs = [self._attentional(outputs[:, i], encoded) for i in range(outputs.size(1))]
        features = torch.stack([a for a, _ in pairs], dim=1)  # (B, t, H)
        weights = torch.stack([w for _, w in pairs], dim=1)  # (B, t, T_s)
        return features, state, weights

    def _attentional(self, query: Tensor, encoded: Encoded) -> tuple[Tensor, Tensor]:
        """Luong's attentional hidden state ``h~ = tanh(W_c [c; h])`` for ``query (B, H)``."""
        context, weights = self._attend(query, encoded)  # (B, D_enc), (B, T_s)
        return torch.tanh(self.combine(torch.cat([context, query], dim=-1))), weights  # (B, H)
