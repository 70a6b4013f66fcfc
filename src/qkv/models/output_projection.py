"""The output layer of every Transformer: final hidden states -> next-token logits.

``logits = (s * h) W^T + b`` with ``W`` often the (target) token embedding matrix (Press & Wolf 2017).
The factor ``s`` is ``d_model ** -0.5`` when the model scales its logits (Mesh TensorFlow / T5, Raffel
et al. 2020, which rescale the decoder output before the tied embedding matrix), else ``1``.

Why it matters: with tied, ``sqrt(E)``-scaled embeddings each position's residual stream still holds its
own input embedding at initialisation, so without the factor the tied output layer gives the *input*
token a logit of about ``sqrt(E)`` (16 at ``E = 256``) and the initial loss is ~12 nats instead of
``ln V``. With it, every logit starts near zero and the loss starts at ``ln V`` -- where the recurrent
models start. Pretrained GPT-2, Marian and BERT checkpoints were trained without it (``s = 1``).
"""

from __future__ import annotations

from torch import Tensor, nn


class OutputProjection(nn.Linear):
    """``hidden (..., E) -> logits (..., V)``; an ``nn.Linear`` (same parameter names) with a fixed input scale."""

    def __init__(self, d_model: int, vocab: int, *, bias: bool = False, logit_scale: float = 1.0) -> None:
        super().__init__(d_model, vocab, bias=bias)
        self.logit_scale = logit_scale

    def forward(self, hidden: Tensor) -> Tensor:
        if self.logit_scale != 1.0:
            hidden = hidden * self.logit_scale
        return super().forward(hidden)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, logit_scale={self.logit_scale:.4g}"
