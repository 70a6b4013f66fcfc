"""Training FLOPs per target token (`qkv.compare.cost.train_flops_per_token`) against hand counts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from qkv.compare.cost import train_flops_per_token

VOCAB, WIDTH, HIDDEN = 50, 16, 24


class LinearDecoder(nn.Module):
    """Embedding -> one linear layer to the vocabulary: 2·d·V FLOPs per token forward, 4·d·V backward."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, WIDTH)
        self.out = nn.Linear(WIDTH, VOCAB, bias=False)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.out(self.embed(tgt_in)))  # (B, T, V)


class RecurrentDecoder(nn.Module):
    """Embedding -> a GRU or LSTM -> linear: per token 2·g·H·(d + H) for the gates, 2·H·V for the output."""

    def __init__(self, cell: type[nn.RNNBase]) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, WIDTH)
        self.rnn = cell(WIDTH, HIDDEN, batch_first=True)
        self.out = nn.Linear(HIDDEN, VOCAB, bias=False)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> SimpleNamespace:
        hidden, _ = self.rnn(self.embed(tgt_in))  # (B, T, H)
        return SimpleNamespace(logits=self.out(hidden))


def _equal_length_pairs(n: int = 6, length: int = 7) -> tuple[list[list[int]], list[list[int]]]:
    """Pairs without padding, so every position of the batch is a real target token."""
    g = torch.Generator().manual_seed(0)
    rows = torch.randint(4, VOCAB, (n, length), generator=g).tolist()
    return rows, rows


def test_linear_model_is_six_n_per_token():
    src, tgt = _equal_length_pairs()
    flops = train_flops_per_token(LinearDecoder(), src, tgt, max_tokens=10_000)
    assert flops == pytest.approx(6 * WIDTH * VOCAB)  # Kaplan et al.'s 6N: forward 2N, backward 4N


def test_lstm_is_counted_not_zero():
    """PyTorch's counter has no formula for the CPU LSTM kernel; qkv supplies 2·4H·(d+H) forward, twice that back."""
    src, tgt = _equal_length_pairs()
    flops = train_flops_per_token(RecurrentDecoder(nn.LSTM), src, tgt, max_tokens=10_000)
    assert flops == pytest.approx(6 * 4 * HIDDEN * (WIDTH + HIDDEN) + 6 * HIDDEN * VOCAB)


def test_gru_forward_part_matches_hand_count():
    """The GRU is counted by PyTorch's own formulas; its backward skips the gradient of the zero initial state
    (one H x 3H product per sequence), so the count sits just under 6 times the forward."""
    src, tgt = _equal_length_pairs()
    flops = train_flops_per_token(RecurrentDecoder(nn.GRU), src, tgt, max_tokens=10_000)
    per_token = 6 * 3 * HIDDEN * (WIDTH + HIDDEN) + 6 * HIDDEN * VOCAB
    tokens_per_row = 7 + 1  # the target and its EOS (the BOS is input only)
    assert per_token - 2 * 3 * HIDDEN * HIDDEN / tokens_per_row <= flops + 1e-6
    assert flops <= per_token


def test_model_left_as_found():
    model = LinearDecoder().train()
    src, tgt = _equal_length_pairs()
    train_flops_per_token(model, src, tgt, max_tokens=10_000)
    assert model.training and all(p.grad is None for p in model.parameters())
