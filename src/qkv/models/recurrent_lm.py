"""A recurrent language model: an LSTM or GRU over one token stream, predicting each next token.

The recurrent LM of Mikolov et al. 2010 ("Recurrent neural network based language model"), in the form
of Zaremba, Sutskever & Vinyals 2014 ("Recurrent Neural Network Regularization"): token embeddings, ``L``
stacked LSTM layers, a linear layer and a softmax over the vocabulary. Each LSTM layer ``l`` computes,
from its input ``x_t`` (the embedding, or layer ``l - 1``'s output) and its previous state,
(Zaremba et al., section 3; PyTorch's gate order ``i, f, g, o``)::

    i, f, o = sigmoid(W_i [x_t; h_{t-1}]), sigmoid(W_f [..]), sigmoid(W_o [..])
    g       = tanh(W_g [x_t; h_{t-1}])
    c_t     = f * c_{t-1} + i * g
    h_t     = o * tanh(c_t)

The GRU variant (Cho et al. 2014, "Learning Phrase Representations using RNN Encoder-Decoder for
Statistical Machine Translation") replaces the cell with ``r = sigmoid(..)``, ``z = sigmoid(..)``,
``n = tanh(W_in x_t + r * (W_hn h_{t-1}))``, ``h_t = (1 - z) * n + z * h_{t-1}``.

Dropout is Zaremba et al.'s: on the *non-recurrent* connections only -- the embeddings going into the
first layer, each layer's output going into the next (``nn.LSTM``'s own ``dropout``), and the top
layer's output going into the softmax -- never on ``h_{t-1} -> h_t``, so the memory is not erased from
step to step.

The model speaks the same decoding interface as the GPT (:mod:`qkv.models.decoder_only`): ``kind =
"lm"``, ``encode(None) -> None``, and ``decode_step`` with an explicit
:class:`~qkv.models.recurrent_decoder.RecurrentState` (the ``(L, B, H)`` hidden and, for LSTMs, cell
states) instead of a KV cache, so :mod:`qkv.decoding` continues prompts with it unchanged. By default
every window starts from the zero state (as the GPT starts from an empty cache): qkv's LM training draws
random windows and its evaluation scores non-overlapping ones. With ``training.carry_state`` the run is
Zaremba et al.'s truncated backpropagation through time instead: ``forward(tokens, state=...)`` starts
from the state the previous segment ended with and returns its own final state in ``ModelOutput.state``
(:class:`qkv.training.batches.LMSegmentStream`), and evaluation carries the state through the text.

Notation: ``B`` batch, ``t`` new tokens, ``E`` embedding size, ``L`` layers, ``H`` hidden size,
``V`` vocabulary.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from qkv.models.output import ModelOutput
from qkv.models.recurrent_decoder import RecurrentState
from qkv.special import BOS_ID, EOS_ID, PAD_ID


class RecurrentLM(nn.Module):
    """Embedding -> dropout -> stacked LSTM/GRU -> dropout -> output layer; ``kind = "lm"``.

    ``rnn`` is one ``nn.LSTM`` or ``nn.GRU`` (``batch_first=True``, unidirectional); its ``dropout``
    argument is the between-layer dropout. ``dropout`` here is applied to the embeddings and to the top
    layer's output.
    """

    kind = "lm"

    def __init__(
        self,
        embedding: nn.Embedding,
        rnn: nn.LSTM | nn.GRU,
        lm_head: nn.Linear,
        *,
        dropout: float = 0.0,
        pad_id: int = PAD_ID,
        bos_id: int = BOS_ID,
        eos_id: int = EOS_ID,
    ) -> None:
        super().__init__()
        if not isinstance(rnn, (nn.LSTM, nn.GRU)):
            raise ValueError(f"rnn must be an nn.LSTM or nn.GRU, got {type(rnn).__name__}")
        if rnn.bidirectional or not rnn.batch_first:
            raise ValueError("a language model reads left to right: rnn must be unidirectional and batch_first")
        if rnn.input_size != embedding.embedding_dim or lm_head.in_features != rnn.hidden_size:
            raise ValueError(
                f"sizes do not chain: embedding {embedding.embedding_dim} -> rnn {rnn.input_size}..{rnn.hidden_size}"
                f" -> lm_head {lm_head.in_features}"
            )
        self.embedding, self.rnn, self.lm_head = embedding, rnn, lm_head
        self.dropout = nn.Dropout(dropout)
        self.cell = "lstm" if isinstance(rnn, nn.LSTM) else "gru"
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id

    def _run(self, tokens: Tensor, state: RecurrentState) -> tuple[Tensor, RecurrentState]:
        """Read ``tokens (B, t)`` after ``state``: top-layer outputs ``(B, t, H)`` and the new state."""
        embedded = self.dropout(self.embedding(tokens))  # (B, t, E)
        if self.cell == "lstm":
            outputs, (hidden, cell) = self.rnn(embedded, (state.hidden, state.cell))  # (B, t, H), (L, B, H) x 2
        else:
            outputs, hidden = self.rnn(embedded, state.hidden)  # (B, t, H), (L, B, H)
            cell = None
        return outputs, RecurrentState(hidden=hidden, cell=cell)

    def forward(
        self, tokens: Tensor, *, state: RecurrentState | None = None, need_weights: bool = False
    ) -> ModelOutput:
        """``tokens (B, T)`` (right-padded) -> next-token logits ``(B, T, V)``, from ``state`` (``None``: the
        zero state); ``ModelOutput.state`` is the state after the last token (not detached).

        A recurrent model has no attention weights: ``attentions`` is always ``None``.
        """
        start = self.init_state(None, tokens.size(0)) if state is None else state
        outputs, final = self._run(tokens, start)  # (B, T, H)
        return ModelOutput(self.lm_head(self.dropout(outputs)), None, outputs, state=final)

    # -- the decoding interface --
    def encode(self, src: None = None) -> None:
        if src is not None:
            raise ValueError("a decoder-only model has no source: pass the prompt to decode_step")
        return None

    def init_state(self, encoded: None, batch_size: int) -> RecurrentState:
        """The zero state (Zaremba et al. start every sequence from it): ``(L, B, H)`` zeros."""
        weight = next(self.rnn.parameters())  # (for the dtype and device)
        zeros = torch.zeros(
            self.rnn.num_layers, batch_size, self.rnn.hidden_size, dtype=weight.dtype, device=weight.device
        )  # (L, B, H)
        return RecurrentState(hidden=zeros, cell=zeros.clone() if self.cell == "lstm" else None)

    def decode_step(self, tokens: Tensor, encoded: None, state: RecurrentState) -> tuple[Tensor, RecurrentState]:
        """Feed the next ``tokens (B, t)``; returns their logits ``(B, t, V)`` and the new state."""
        outputs, state = self._run(tokens, state)  # (B, t, H)
        return self.lm_head(self.dropout(outputs)), state

    def reorder(
        self, encoded: None, state: RecurrentState, index: Tensor, *, same_rows: bool = False
    ) -> tuple[None, RecurrentState]:
        """Keep/duplicate batch rows ``index (B',)`` of the state (beam search, finished rows)."""
        return None, state.select(index)
