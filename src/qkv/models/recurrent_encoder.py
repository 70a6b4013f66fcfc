"""The recurrent encoder of the pre-Transformer encoder-decoders.

A stack of GRU or LSTM layers reads the source left to right -- and, when ``bidirectional``, also right
to left, concatenating both directions at every position (Bahdanau, Cho & Bengio 2015, section 3.2:
"the annotation of each word summarizes both the preceding and the following words").

Padding never leaks into the result: the batch is run as a *packed* sequence
(``torch.nn.utils.rnn.pack_padded_sequence``), so every row stops at its own length, its final state
is the state after its last real token, and the outputs at padded positions are exactly zero. Adding
more padding to a batch changes nothing but the shape.

Notation: ``B`` batch, ``T_s`` source length, ``L`` layers, ``H`` hidden size, ``dirs`` 1 or 2.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from qkv.models.config import RnnCell

RNN_CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


def _merge_directions(state: Tensor, num_layers: int, dirs: int) -> Tensor:
    """``(L * dirs, B, H)`` as PyTorch returns it -> ``(L, B, dirs * H)`` (forward and backward side by side)."""
    _, batch, hidden = state.shape
    state = state.view(num_layers, dirs, batch, hidden)  # (L, dirs, B, H)
    return state.permute(0, 2, 1, 3).reshape(num_layers, batch, dirs * hidden)  # (L, B, dirs * H)


class RecurrentEncoder(nn.Module):
    """Embedding + multi-layer (bi)GRU/LSTM over a right-padded source batch."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        cell: RnnCell = "gru",
        bidirectional: bool = False,
        dropout: float = 0.0,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        if cell not in RNN_CELLS:
            raise ValueError(f"rnn cell must be one of {sorted(RNN_CELLS)}, got {cell!r}")
        self.pad_id = pad_id
        self.cell = cell
        self.num_layers = num_layers
        self.dirs = 2 if bidirectional else 1
        self.output_size = self.dirs * hidden_size
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        self.rnn = RNN_CELLS[cell](
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )

    def forward(self, src: Tensor) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
        """Encode ``src (B, T_s)``.

        Returns ``outputs (B, T_s, dirs*H)`` (zero at padding), the final hidden state
        ``(L, B, dirs*H)``, the final LSTM cell state ``(L, B, dirs*H)`` (``None`` for a GRU), and the
        source mask ``(B, T_s)`` (True = real token).
        """
        src_mask = src != self.pad_id  # (B, T_s)
        # An all-padding row would be an empty sequence, which packing refuses; it reads one PAD instead
        # and its mask stays all False, so attention gives it zero weight everywhere.
        lengths = src_mask.sum(dim=1).clamp(min=1).cpu()
        embedded = self.dropout(self.embedding(src))  # (B, T_s, E)
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        packed_out, final = self.rnn(packed)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=src.size(1))  # (B, T_s, dirs*H)
        if self.cell == "lstm":
            hidden, cell_state = final
            cell_state = _merge_directions(cell_state, self.num_layers, self.dirs)
        else:
            hidden, cell_state = final, None
        hidden = _merge_directions(hidden, self.num_layers, self.dirs)
        return outputs, hidden, cell_state, src_mask
