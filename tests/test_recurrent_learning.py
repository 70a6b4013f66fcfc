"""End to end: every recurrent model learns to reverse short sequences (data generated here) on a CPU.

Reversal is the classic toy task of the recurrent encoder-decoder papers (Sutskever et al. 2014 reversed
the *source* to shorten dependencies): without attention the whole sequence must pass through one
fixed vector; with attention the decoder can look up the position it needs.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qkv.decoding import greedy
from qkv.models.builder import build_model
from qkv.models.config import RECURRENT_NAMES, ModelConfig
from qkv.special import BOS_ID, EOS_ID, PAD_ID

VOCAB = 12  # 4 specials + 8 symbols
MAX_LEN = 7


def reverse_batch(generator: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list]:
    """``src`` = symbols + EOS, ``tgt_in`` = BOS + reversed, ``tgt_out`` = reversed + EOS (right-padded)."""
    lengths = torch.randint(3, MAX_LEN + 1, (n,), generator=generator).tolist()
    src = torch.full((n, MAX_LEN + 1), PAD_ID)  # (B, T_s)
    tgt_in = torch.full((n, MAX_LEN + 1), PAD_ID)  # (B, T_t)
    tgt_out = torch.full((n, MAX_LEN + 1), PAD_ID)  # (B, T_t)
    answers = []
    for i, length in enumerate(lengths):
        symbols = torch.randint(4, VOCAB, (length,), generator=generator)
        src[i, :length], src[i, length] = symbols, EOS_ID
        tgt_in[i, 0], tgt_in[i, 1 : length + 1] = BOS_ID, symbols.flip(0)
        tgt_out[i, :length], tgt_out[i, length] = symbols.flip(0), EOS_ID
        answers.append(symbols.flip(0).tolist())
    return src, tgt_in, tgt_out, answers


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny RNN steps only lose from intra-op threads (on a busy 2-core machine, by 20x): use one here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def loss_of(model, src, tgt_in, tgt_out) -> torch.Tensor:
    logits = model(src, tgt_in).logits  # (B, T_t, V)
    return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD_ID)


@pytest.mark.slow
@pytest.mark.parametrize("name", RECURRENT_NAMES)
def test_learns_to_reverse(name):
    torch.manual_seed(0)
    config = ModelConfig(name=name, d_model=32, hidden_size=64, dropout=0.0).validate()
    model = build_model(config, VOCAB, VOCAB)
    steps = 400
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        src, tgt_in, tgt_out, _ = reverse_batch(generator, 64)
        loss = loss_of(model, src, tgt_in, tgt_out)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()

    model.eval()
    src, tgt_in, tgt_out, answers = reverse_batch(torch.Generator().manual_seed(1), 200)  # unseen examples
    with torch.no_grad():
        held_out = loss_of(model, src, tgt_in, tgt_out).item()
    hyps = greedy(model, src, max_len=MAX_LEN + 2)
    exact = sum(h == a for h, a in zip(hyps.tokens, answers, strict=True)) / len(answers)
    assert held_out < 0.08, f"{name}: held-out loss {held_out:.4f}"
    assert exact >= 0.9, f"{name}: {exact:.0%} of 200 held-out sequences reversed exactly"
