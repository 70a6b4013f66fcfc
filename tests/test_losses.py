"""qkv.training.losses: the one cross-entropy over padded targets, against a hand computation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

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


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_normalised_log_probs_give_the_same_loss_and_gradients_without_a_second_log_softmax(eps, reduction) -> None:
    """A pointer-generator returns ``log P`` (``ModelOutput.normalised``). Scored as they are, the loss and
    the gradient reaching whatever produced them equal PyTorch's cross-entropy, which applies
    ``log_softmax`` once more (checked through a softmax-normalised producer, with padding)."""
    torch.manual_seed(0)
    raw = torch.randn(3, 5, 11, requires_grad=True)  # float32: the loss upcasts to it
    targets = torch.randint(3, 11, (3, 5))
    targets[1, 3:] = PAD_ID
    results = []
    for normalised in (False, True):
        log_probs = torch.log_softmax(raw * 2.0, dim=-1)  # a normalised output, as the copy layer's
        loss = token_cross_entropy(log_probs, targets, label_smoothing=eps, reduction=reduction, normalised=normalised)
        results.append((loss.detach(), torch.autograd.grad(loss, raw)[0]))
    reference = F.cross_entropy(  # PyTorch's own, on the log-probabilities as logits
        torch.log_softmax(raw * 2.0, -1).flatten(0, 1),
        targets.flatten(),
        ignore_index=PAD_ID,
        label_smoothing=eps,
        reduction=reduction,
    )
    (plain, plain_grad), (ours, our_grad) = results
    assert torch.allclose(ours, reference.detach(), atol=1e-5) and torch.allclose(plain, ours, atol=1e-5)
    assert torch.allclose(our_grad, plain_grad, atol=1e-6)


def test_copy_models_say_their_output_is_normalised() -> None:
    from qkv.models import ModelConfig, build_model

    src, tgt = torch.tensor([[4, 5, 6]]), torch.tensor([[1, 4]])
    for name, extra in (("transformer", {"n_heads": 2, "d_ff": 16}), ("gru-attention", {"hidden_size": 8})):
        for copy in (False, True):
            model = build_model(ModelConfig(name=name, d_model=8, copy=copy, **extra), 9, 9)
            assert model(src, tgt).normalised is copy
