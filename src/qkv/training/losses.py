"""Cross-entropy over right-padded targets -- the one place qkv computes its token loss.

Training (with label smoothing, Szegedy et al. 2016), validation loss, the LM likelihood and the compare and
bench measurements all score next-token logits ``(B, T, V)`` against target ids ``(B, T)`` in which ``PAD``
positions are not tokens: they neither count nor contribute. Logits are upcast to float32 first, so bf16
training still sums the loss in float32.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from qkv.special import PAD_ID


def token_cross_entropy(
    logits: Tensor,
    targets: Tensor,
    *,
    pad_id: int | None = PAD_ID,
    label_smoothing: float = 0.0,
    reduction: Literal["sum", "mean"] = "sum",
) -> Tensor:
    """Cross-entropy of ``logits (B, T, V)`` against ``targets (B, T)``, skipping ``pad_id`` positions.

    ``reduction="sum"`` adds the loss of every target token (divide by :func:`count_tokens` for the mean
    over several batches); ``"mean"`` averages over this batch's tokens. ``pad_id=None`` scores every
    position (language-model windows of running text have no padding, and a pretrained checkpoint's pad id
    may be an ordinary token). ``label_smoothing`` as in ``torch.nn.functional.cross_entropy``:
    ``(1 - eps) * nll + eps * mean over the vocabulary of -log p``.
    """
    return F.cross_entropy(
        logits.flatten(0, 1).float(),  # (B * T, V)
        targets.flatten(),  # (B * T,)
        ignore_index=-100 if pad_id is None else pad_id,
        label_smoothing=label_smoothing,
        reduction=reduction,
    )


def count_tokens(targets: Tensor, pad_id: int | None = PAD_ID) -> int:
    """How many target positions :func:`token_cross_entropy` scores (the non-``pad_id`` ones)."""
    return targets.numel() if pad_id is None else int((targets != pad_id).sum())
