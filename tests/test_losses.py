"""qkv.training.losses: the one cross-entropy over padded targets, against a hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from qkv.special import PAD_ID
from qkv.training.losses import count_tokens, token_cross_entropy


def _by_hand(logits: torch.Tensor, targets: torch.Tensor, eps: float, skip_pad: bool) -> tuple[float, int]:
    """Sum over scored positions of (1 - eps) * -log p(target) + eps * mean_v -log p(v), in float64 loops."""
    total, count = 0.0, 0
    for b in range(targets.size(0)):
        for t in range(targets.size(1)):
            target = int(targets[b, t])
            if skip_pad and target == PAD_ID:
                continue
            row = [float(x) for x in logits[b, t].double()]
            log_z = math.log(sum(math.exp(x) for x in row))
            nll = log_z - row[target]
            uniform = sum(log_z - x for x in row) / len(row)
            total += (1 - eps) * nll + eps * uniform
            count += 1
    return total, count


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_padded_positions_neither_count_nor_contribute(eps: float) -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 7, generator=g)
    targets = torch.tensor([[4, 5, 2, PAD_ID], [6, PAD_ID, PAD_ID, PAD_ID]])
    expected, n = _by_hand(logits, targets, eps, skip_pad=True)
    assert count_tokens(targets) == n == 4
    assert token_cross_entropy(logits, targets, label_smoothing=eps).item() == pytest.approx(expected, rel=1e-6)
    mean = token_cross_entropy(logits, targets, label_smoothing=eps, reduction="mean").item()
    assert mean == pytest.approx(expected / n, rel=1e-6)


def test_pad_id_none_scores_every_position_and_bf16_is_summed_in_float32() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 5, 6, generator=g)
    targets = torch.tensor([[0, 1, 0, 3, 5]])  # id 0 is an ordinary token of running text here
    expected, n = _by_hand(logits, targets, 0.0, skip_pad=False)
    assert count_tokens(targets, pad_id=None) == n == 5
    assert token_cross_entropy(logits, targets, pad_id=None).item() == pytest.approx(expected, rel=1e-6)
    loss = token_cross_entropy(logits.bfloat16(), targets, pad_id=None)
    assert loss.dtype == torch.float32
