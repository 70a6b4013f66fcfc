"""Batching: the token budget holds, every example appears exactly once per epoch (also across a
mid-epoch resume), batches are deterministic for a seed, and padding/masks are right."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qkv.data.batching import TokenBudgetBatcher, collate, lm_windows, make_batch, seq2seq_lengths
from qkv.errors import UserError
from qkv.special import BOS_ID, EOS_ID, PAD_ID

lengths_st = st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=300)


@settings(max_examples=150, deadline=None)
@given(lengths=lengths_st, extra=st.integers(0, 200), seed=st.integers(0, 10**6), shuffle=st.booleans())
def test_budget_and_exactly_once_per_epoch(lengths, extra, seed, shuffle):
    budget = max(lengths) + extra
    batcher = TokenBudgetBatcher(lengths, budget, seed=seed, shuffle=shuffle)
    for _ in range(2):  # two epochs
        seen = []
        for batch in batcher:
            assert batch, "no empty batches"
            assert len(batch) * max(lengths[i] for i in batch) <= budget
            seen.extend(batch)
        assert sorted(seen) == list(range(len(lengths)))


@settings(max_examples=100, deadline=None)
@given(lengths=lengths_st, seed=st.integers(0, 10**6), stop=st.integers(0, 50), epochs_before=st.integers(0, 2))
def test_resume_mid_epoch_gives_the_same_remaining_batches(lengths, seed, stop, epochs_before):
    budget = max(lengths) * 3
    ref = TokenBudgetBatcher(lengths, budget, seed=seed)
    for _ in range(epochs_before):
        list(ref)
    full_epoch = list(TokenBudgetBatcher(lengths, budget, seed=seed).batches(ref.epoch))
    stop = min(stop, len(full_epoch))

    run = TokenBudgetBatcher(lengths, budget, seed=seed)
    for _ in range(epochs_before):
        list(run)
    it = iter(run)
    first = [next(it) for _ in range(stop)]
    state = run.state_dict()

    resumed = TokenBudgetBatcher(lengths, budget, seed=seed)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert first + rest == full_epoch
    assert sorted(i for b in first + rest for i in b) == list(range(len(lengths)))
    assert resumed.epoch == epochs_before + 1 and resumed.position == 0


def test_deterministic_for_a_seed_and_varies_across_seeds_and_epochs():
    lengths = [(i * 7) % 23 + 1 for i in range(500)]
    a, b, c = (TokenBudgetBatcher(lengths, 100, seed=s) for s in (1, 1, 2))
    assert a.batches(0) == b.batches(0)
    assert a.batches(0) != c.batches(0)
    assert a.batches(0) != a.batches(1)


def test_length_bucketing_keeps_padding_small():
    lengths = [(i * 37) % 50 + 1 for i in range(2000)]
    batches = TokenBudgetBatcher(lengths, 400, seed=0).batches(0)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.1 * sum(lengths)  # sorted batching wastes under 10% on padding


def test_bad_states_and_oversized_examples():
    with pytest.raises(UserError, match="example 1 has 50 tokens, more than the batch budget max_tokens=10"):
        TokenBudgetBatcher([3, 50, 4], 10)
    with pytest.raises(UserError, match="empty split"):
        TokenBudgetBatcher([], 10)
    state = TokenBudgetBatcher([1, 2, 3], 10, seed=1).state_dict()
    with pytest.raises(UserError, match="seed=1, but this run has seed=2"):
        TokenBudgetBatcher([1, 2, 3], 10, seed=2).load_state_dict(state)


def test_collate_make_batch_and_masks():
    out = collate([[5, 6, 7], [8], []])
    assert out.tolist() == [[5, 6, 7], [8, PAD_ID, PAD_ID], [PAD_ID, PAD_ID, PAD_ID]]
    assert out.dtype == torch.long
    src_ids, tgt_ids = [[10, 11], [12, 13, 14]], [[20], [21, 22]]
    batch = make_batch([1, 0], src_ids, tgt_ids)
    assert batch.src.tolist() == [[12, 13, 14, EOS_ID], [10, 11, EOS_ID, PAD_ID]]
    assert batch.tgt.tolist() == [[BOS_ID, 21, 22, EOS_ID], [BOS_ID, 20, EOS_ID, PAD_ID]]
    assert batch.src_mask.tolist() == [[True] * 4, [True, True, True, False]]
    assert batch.index == [1, 0]
    assert seq2seq_lengths(src_ids, tgt_ids) == [3, 4]
    assert make_batch([0], None, tgt_ids).src is None


def test_lm_windows():
    w = lm_windows(list(range(11)), 4)
    assert w.tolist() == [[0, 1, 2, 3, 4], [4, 5, 6, 7, 8]]
    with pytest.raises(UserError, match="fewer than one window"):
        lm_windows([1, 2], 4)
