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
    normalised: bool = False,
) -> Tensor:
    """Cross-entropy of ``logits (B, T, V)`` against ``targets (B, T)``, skipping ``pad_id`` positions.

    ``reduction="sum"`` adds the loss of every target token (divide by :func:`count_tokens` for the mean
    over several batches); ``"mean"`` averages over this batch's tokens. ``pad_id=None`` scores every
    position (language-model windows of running text have no padding, and a pretrained checkpoint's pad id
    may be an ordinary token). ``label_smoothing`` as in ``torch.nn.functional.cross_entropy``:
    ``(1 - eps) * nll + eps * mean over the vocabulary of -log p``.

    ``normalised``: ``logits`` are log-probabilities already (``ModelOutput.normalised``); the same loss is
    then computed without the ``log_softmax`` pass over ``(B * T, V)`` and its backward, which would leave
    their values unchanged (``log_softmax(log p) = log p``). The gradients reaching the parameters agree
    too: the two differ only along ``p`` itself, and ``sum p = 1`` whatever the parameters.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    flat_logits = logits.flatten(0, 1).float()  # (B * T, V)
    flat_targets = targets.flatten()  # (B * T,)
    ignore = -100 if pad_id is None else pad_id
    if not normalised:
        return F.cross_entropy(
            flat_logits, flat_targets, ignore_index=ignore, label_smoothing=label_smoothing, reduction=reduction
        )
    nll = F.nll_loss(flat_logits, flat_targets, ignore_index=ignore, reduction="sum")
    scored = flat_targets != ignore  # (B * T,)
    loss = nll
    if label_smoothing > 0:  # PyTorch's smooth term: over the scored rows, the mean over the vocabulary of -log p
        smooth = -flat_logits.sum(-1).masked_fill(~scored, 0.0).sum() / flat_logits.shape[-1]
        loss = (1 - label_smoothing) * nll + label_smoothing * smooth
    return loss if reduction == "sum" else loss / scored.sum()


def count_tokens(targets: Tensor, pad_id: int | None = PAD_ID) -> int:
    """How many target positions :func:`token_cross_entropy` scores (the non-``pad_id`` ones)."""
    return targets.numel() if pad_id is None else int((targets != pad_id).sum())
