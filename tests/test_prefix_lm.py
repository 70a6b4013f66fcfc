"""The prefix LM (a decoder-only Transformer on source -> target tasks): cached decoding equals the full
forward pass, a row's logits do not depend on its batch's padding, the source is visible and the future
target is not, the config rejects what it cannot do, and it learns associative recall, which qkv's
encoder-decoder does not in the same number of steps (benchmarks/recall_causal_vs_bidirectional.py)."""

from __future__ import annotations

import pytest
import torch

from qkv.models import ModelConfig, build_model
from qkv.models.prefix_lm import left_align
from qkv.special import BOS_ID, EOS_ID, PAD_ID

SRC_V, TGT_V = 19, 23


def tiny(**overrides) -> torch.nn.Module:
    options = {"name": "prefix-lm", "d_model": 32, "n_heads": 4, "d_ff": 48, "n_decoder_layers": 2,
               "dropout": 0.0, "max_len": 64, "positions": "rotary"}  # fmt: skip
    options.update(overrides)
    torch.manual_seed(0)
    return build_model(ModelConfig(**options), SRC_V, TGT_V).eval()


def tokens(b: int, t: int, vocab: int, seed: int) -> torch.Tensor:
    return torch.randint(4, vocab, (b, t), generator=torch.Generator().manual_seed(seed))


def test_left_align_moves_padding_to_the_front():
    src = torch.tensor([[5, 6, 7], [8, PAD_ID, PAD_ID], [9, 10, PAD_ID]])
    aligned, keep = left_align(src, PAD_ID)
    assert aligned.tolist() == [[5, 6, 7], [PAD_ID, PAD_ID, 8], [PAD_ID, 9, 10]]
    assert keep.tolist() == [[True, True, True], [False, False, True], [False, True, True]]


def test_the_sources_eos_is_dropped_so_the_last_source_token_predicts():
    model = tiny()
    src = tokens(2, 5, SRC_V, 7)
    with_eos = torch.cat([src, torch.full((2, 1), EOS_ID)], dim=1)
    tgt = torch.cat([torch.full((2, 1), BOS_ID), tokens(2, 3, TGT_V, 8)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(with_eos, tgt).logits, model(src, tgt).logits, atol=1e-5, rtol=0)


def test_a_rows_logits_do_not_depend_on_the_batchs_padding():
    model = tiny()
    src = tokens(3, 7, SRC_V, 1)
    src[1, 3:] = PAD_ID
    src[2, 5:] = PAD_ID
    tgt = torch.cat([torch.full((3, 1), BOS_ID), tokens(3, 4, TGT_V, 2)], dim=1)
    wider = torch.cat([src, torch.full((3, 4), PAD_ID)], dim=1)
    with torch.no_grad():
        batch = model(src, tgt).logits
        torch.testing.assert_close(model(wider, tgt).logits, batch, atol=1e-5, rtol=0)
        for row, length in ((1, 3), (2, 5)):
            alone = model(src[row : row + 1, :length], tgt[row : row + 1]).logits
            torch.testing.assert_close(batch[row : row + 1], alone, atol=1e-5, rtol=0)


def test_cached_decoding_matches_the_full_forward_pass():
    model = tiny()
    src = tokens(2, 6, SRC_V, 3)
    src[0, 4:] = PAD_ID
    tgt = torch.cat([torch.full((2, 1), BOS_ID), tokens(2, 5, TGT_V, 4)], dim=1)
    with torch.no_grad():
        full = model(src, tgt).logits  # (B, 6, V)
        encoded = model.encode(src)
        state = model.init_state(encoded, 2)
        steps, start = [], 0
        for size in (2, 1, 3):
            logits, state = model.decode_step(tgt[:, start : start + size], encoded, state)
            steps.append(logits)
            start += size
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)


def test_the_source_is_seen_and_the_future_target_is_not():
    model = tiny()
    src, tgt = tokens(2, 5, SRC_V, 5), torch.cat([torch.full((2, 1), BOS_ID), tokens(2, 4, TGT_V, 6)], dim=1)
    other_src = src.clone()
    other_src[:, -1] = (other_src[:, -1] - 4 + 1) % (SRC_V - 4) + 4
    later = tgt.clone()
    later[:, 3] = (later[:, 3] - 4 + 1) % (TGT_V - 4) + 4
    with torch.no_grad():
        base = model(src, tgt).logits
        assert (model(other_src, tgt).logits - base).abs().max() > 1e-3  # every target position reads the source
        after = model(src, later).logits
    torch.testing.assert_close(after[:, :3], base[:, :3], atol=1e-6, rtol=0)
    assert (after[:, 3:] - base[:, 3:]).abs().max() > 1e-3


@pytest.mark.parametrize(
    "change, words", [({"positions": "sinusoidal"}, "rotary"), ({"tie_embeddings": True}, "tie_embeddings")]
)
def test_config_rejects_what_a_prefix_lm_cannot_do(change, words):
    with pytest.raises(ValueError, match=words):
        tiny(**change)


@pytest.mark.slow
def test_a_two_layer_prefix_lm_solves_associative_recall_where_the_encoder_decoder_does_not():
    """Ba et al. 2016's recall, 8 pairs (the queried key up to 17 tokens back), fresh batches each step."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "recall_causal_vs_bidirectional.py"
    spec = importlib.util.spec_from_file_location("recall", path)
    recall = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recall)
    import argparse

    args = argparse.Namespace(
        pairs=8, slots=None, steps=2000, batch=64, d_model=64, layers=2, lr=1e-3, eval_every=250, seed=0, solved_at=0.99
    )
    solved = recall.train_one("qkv-prefix-lm", args)
    assert solved["steps_to_solve"] is not None, solved["curve"]
    assert solved["curve"][-1]["exact_match"] >= 0.99
