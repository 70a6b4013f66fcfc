"""A capability the literature knows, pinned: a 2-layer Transformer solves associative recall at long range.

Ba et al. 2016's recall with 8 key-value pairs at random two-token slots among 33 (filler between them, as
in Zoology's MQAR, Arora et al. 2023), so the queried key is up to 67 tokens before the query; fresh
batches every step (nothing to memorise). The lookup is an induction head (Olsson et al. 2022), which
appears abruptly after a plateau: at this length qkv's GPT and PyTorch's own causal
``nn.TransformerEncoder`` both sit at ~0.3 for ~2,700 steps, then jump (results/probes/
recall-8-pairs-33-slots-torch-causal-vs-qkv-gpt.json: PyTorch solved at 3,000 steps, qkv 0.92 at 3,000).

Minutes of training, so it is marked ``capability`` and left out of ``make test``; run it with
``pytest -m capability`` (4 minutes on one CPU thread; solved at step 3,250 on the 2-core Xeon VM,
results/probes/recall-capability-test.txt). The bar is 95%: after the jump the constant rate leaves the
held-out accuracy at 0.97-0.99 for a while (seed 1: 0.968 at step 3,250, >= 0.99 only at 5,000;
results/probes/recall-8-pairs-33-slots-qkv-gpt-seed1.json), while the plateau is at 0.3.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest


def _recall_benchmark():
    path = Path(__file__).parents[1] / "benchmarks" / "recall_causal_vs_bidirectional.py"
    spec = importlib.util.spec_from_file_location("recall", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.capability
def test_a_two_layer_gpt_solves_recall_with_keys_up_to_67_tokens_back():
    recall = _recall_benchmark()
    args = argparse.Namespace(
        pairs=8, slots=33, steps=4000, batch=64, d_model=64, layers=2, lr=1e-3, eval_every=250, seed=0, solved_at=0.95
    )
    solved = recall.train_one("qkv-gpt", args)
    assert solved["steps_to_solve"] is not None, solved["curve"]
    assert solved["curve"][-1]["exact_match"] >= 0.95
    assert solved["curve"][0]["exact_match"] < 0.5  # it starts on the plateau: the test can fail


@pytest.mark.capability
def test_at_equal_parameters_a_transformer_copies_64_tokens_and_a_gru_without_attention_does_not(tmp_path):
    """Bahdanau et al. 2015 (Fig. 2): a fixed-size state loses long inputs; attention reads them back. Copy
    at length 64, ~40k parameters each, the probe recipe, 1,000 steps (qkv probe measured the Transformer at
    100% by step 600, the GRU at 16% token accuracy: results/probes/study/copy-T64.txt)."""
    from qkv.compare.budget import Budget
    from qkv.compare.probes import probe_specs, run_probe_model

    (spec,) = probe_specs("copy", [64], 50_000, 300, seed=1)
    runs = {
        name: run_probe_model(
            spec, name, target_params=40_000, budget=Budget("steps", 1000), run_dir=tmp_path / name, checks=5, seed=1
        )
        for name in ("transformer", "gru")
    }
    assert abs(runs["transformer"]["params"] - runs["gru"]["params"]) < 0.25 * runs["gru"]["params"]
    assert runs["transformer"]["steps_to_solve"] is not None and runs["transformer"]["token_accuracy"] >= 95
    assert runs["gru"]["steps_to_solve"] is None and runs["gru"]["token_accuracy"] < 50


@pytest.mark.capability
def test_a_decoder_only_transformer_solves_four_query_recall_when_each_value_follows_its_key(tmp_path):
    """Multi-query recall (Zoology's MQAR, Arora et al. 2023): 8 pairs among filler, 4 keys asked. Answered
    as Zoology lays it out -- each query key, then its value (``--echo-keys``) -- every value is one
    induction-head lookup from the token before it, and the ~40k-parameter prefix LM solves T = 31 in
    500-1,000 steps (results/probes/study/assoc-recall-*-mqar-echo*). Its first check is far below: the test
    can fail."""
    from qkv.compare.budget import Budget
    from qkv.compare.probes import probe_specs, run_probe_model

    (spec,) = probe_specs("assoc-recall", [32], 50_000, 300, pairs=8, queries=4, mixed_lengths=True, echo_keys=True)
    run = run_probe_model(
        spec,
        "prefix-lm",
        target_params=40_000,
        budget=Budget("steps", 2500),
        run_dir=tmp_path,
        checks=10,
        until_solved=True,
    )
    assert run["steps_to_solve"] is not None and run["exact_match"] >= 99, run["curve"]
    assert run["curve"][0]["steps"] <= 250 and run["curve"][0]["exact_match"] < 50


@pytest.mark.capability
def test_an_encoder_decoder_with_a_causal_encoder_solves_four_query_recall(tmp_path):
    """The same recall for the encoder-decoder. Its lookup needs each value's encoder state to carry the key
    before it (a previous-token step), then one cross-attention match from the echoed key. A causal encoder
    learns that step: T = 31 is solved in ~1,000 steps (benchmarks/encdec_echo_recall.py --causal-encoder,
    results/probes/encdec-echo-recall-causal-encoder.txt); the default bidirectional encoder stays at
    keys-right, values-at-chance for 6,000 (results/probes/study/assoc-recall-T31-T255-mqar-echo-6000-steps.txt)."""
    from qkv.compare.budget import Budget
    from qkv.compare.probes import probe_specs, run_probe_model

    (spec,) = probe_specs("assoc-recall", [32], 50_000, 300, pairs=8, queries=4, mixed_lengths=True, echo_keys=True)
    run = run_probe_model(
        spec, "transformer-causal", target_params=40_000, budget=Budget("steps", 2500), run_dir=tmp_path, checks=10
    )
    assert run["exact_match"] >= 95, run["curve"]
    assert run["curve"][0]["steps"] <= 250 and run["curve"][0]["exact_match"] < 50
