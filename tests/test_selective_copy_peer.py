"""benchmarks/selective_copy_peer.py: its data is selective copy, and its peer has qkv's probe shape."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from qkv.models import build_model

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "selective_copy_peer.py"


def _load():
    spec = importlib.util.spec_from_file_location("selective_copy_peer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_targets_are_the_data_tokens_in_order_among_noise():
    peer = _load()
    src, tgt = peer.selective_copy_batch(50, 40, 6, 8, torch.Generator().manual_seed(3))
    noise = peer.N_SPECIAL + 8
    assert src.shape == (50, 40) and tgt.shape == (50, 6)
    for row, target in zip(src.tolist(), tgt.tolist(), strict=True):
        assert [t for t in row if t != noise] == target  # every data token, in source order
        assert all(peer.N_SPECIAL <= t < noise for t in target)


def test_the_peer_has_the_same_parameter_count_as_qkvs_probe_transformer():
    """Same width, heads, layers, feed-forward, norms and biases: the counts must agree exactly."""
    from qkv.compare.probes import ProbeSpec, probe_config

    peer = _load()
    vocab = peer.N_SPECIAL + 8 + 1
    spec = ProbeSpec("selective-copy", {"length": 64, "vocab_size": 8, "num_tokens": 8})
    config = probe_config(spec, "transformer", 40_000, 2048, 0, "cpu").model
    qkv_model = build_model(config, vocab, vocab)
    torch_model = peer.TorchSeq2Seq(vocab, config.d_model, config.n_heads, config.n_encoder_layers, config.d_ff, 72)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(torch_model) == count(qkv_model)
    logits = torch_model(torch.full((2, 64), 5), torch.full((2, 3), 1))
    assert logits.shape == (2, 3, vocab)
