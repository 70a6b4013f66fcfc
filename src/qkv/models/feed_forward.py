"""The position-wise feed-forward network, ``FFN(x) = act(x W1 + b1) W2 + b2`` (Vaswani et al. 2017, eq. 2).

The activation is a knob because checkpoints differ: ReLU (the paper), exact GELU (BERT; Hendrycks &
Gimpel 2016), tanh-approximated GELU (GPT-2), SiLU/swish (Marian; Ramachandran et al. 2017).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
}


class FeedForward(nn.Module):
    """``fc2(dropout(act(fc1(x))))``: ``(B, T, E) -> (B, T, E)`` through a ``d_ff``-wide hidden layer."""

    def __init__(
        self, d_model: int, d_ff: int, *, activation: str = "relu", dropout: float = 0.0, bias: bool = True
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")
        self.activation = activation
        self.fc1 = nn.Linear(d_model, d_ff, bias=bias)
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(ACTIVATIONS[self.activation](self.fc1(x))))

    def extra_repr(self) -> str:
        return f"activation={self.activation}"
