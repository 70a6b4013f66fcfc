"""What models return: `ModelOutput` from a forward pass, `Encoded` from `encode` (the decoding interface).

Attention weights are data, never stashed on modules (the annotated-transformer complaint): a forward pass
with ``need_weights=True`` returns every layer and every head, as in Vaswani et al. 2017, Figures 3-5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

ATTENTION_KINDS = ("encoder_self", "decoder_self", "cross")


@dataclass
class ModelOutput:
    """Result of ``model(...)``.

    - ``logits``: ``(B, T, V)``; for an encoder without an output head, the final hidden states ``(B, T, E)``.
    - ``attentions``: ``None`` unless asked for; else a dict with keys among :data:`ATTENTION_KINDS`, each a
      list over layers of ``(B, H, T_q, T_k)`` weights (rows sum to 1 over allowed keys). Recurrent
      alignments are ``"cross"``: one layer, one head.
    - ``hidden``: the final hidden states ``(B, T, E)`` (before the output projection), when the model has them.
    """

    logits: Tensor
    attentions: dict[str, list[Tensor]] | None = None
    hidden: Tensor | None = None


@dataclass
class Encoded:
    """The encoder's result, computed once per source batch and read by every ``decode_step``.

    - ``memory``: ``(B, T_s, E)`` encoder states (for RNNs: the encoder outputs);
    - ``src_mask``: ``(B, T_s)`` bool, True = a real (non-padding) source token;
    - ``state``: model-specific extras (e.g. an RNN encoder's final hidden state); Transformers leave it None.
    """

    memory: Tensor
    src_mask: Tensor
    state: Any = None
