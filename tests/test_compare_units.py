"""Unit tests of `qkv compare`'s parts: budgets, chunk sizing, slopes and bends, sequential steps, memory,
probe scoring, model sizing. Expected values are worked out by hand next to each test."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qkv.compare.budget import Budget, ScalingPlan, fit_probes, parse_budget, study_plan
from qkv.compare.budgeted import _next_chunk
from qkv.compare.memory import PeakMemory
from qkv.compare.probes import ProbeSpec, by_distance, distance_bin, probe_specs, summarize
from qkv.compare.recipes import param_count, sized_config
from qkv.compare.scaling import Arch, arch_config, attention_scores, bends, scaling_archs, sequential_steps
from qkv.data.tasks import Example
from qkv.errors import UserError
from qkv.models import ModelConfig, build_model


@pytest.mark.parametrize(
    ("text", "kind", "amount"),
    [
        ("90", "seconds", 90),
        ("90s", "seconds", 90),
        ("2m", "seconds", 120),
        ("1.5min", "seconds", 90),
        ("500steps", "steps", 500),
        ("500 steps", "steps", 500),
        ("200k-tokens", "tokens", 200_000),
        ("2M tokens", "tokens", 2_000_000),
    ],
)
def test_parse_budget(text, kind, amount):
    assert parse_budget(text) == Budget(kind, amount)


@pytest.mark.parametrize("text", ["", "fast", "10 parsecs", "-5s", "0", "s10"])
def test_parse_budget_rejects(text):
    with pytest.raises(UserError):
        parse_budget(text)


def test_budget_spent_and_fraction():
    b = Budget("steps", 100)
    assert not b.spent(seconds=1e9, steps=99, tokens=10**9)
    assert b.spent(seconds=0, steps=100, tokens=0)
    assert b.fraction(seconds=0, steps=25, tokens=0) == 0.25
    assert Budget("tokens", 10).fraction(seconds=0, steps=0, tokens=50) == 1.0


def test_next_chunk_seconds_budget():
    budget = Budget("seconds", 60)
    # 20 steps took 2 s -> 10 steps/s; 10 s trained, 50 s left, chunks of 12 s -> 120 steps
    info = {"seconds": 10.0, "steps": 20, "tokens": 2000}
    assert _next_chunk(budget, info, 20, 2.0, 12.0) == 120
    # 54 s trained: 6 s left is less than 1.25 chunks of 12 s... 6 s -> 60 steps, never past the budget
    assert _next_chunk(budget, {**info, "seconds": 54.0}, 20, 2.0, 12.0) == 60
    # 52 s trained: 8 s left; a 7 s chunk would leave 1 s (< 1/4 of a chunk): take all 8 s at once
    assert _next_chunk(budget, {**info, "seconds": 52.0}, 20, 2.0, 7.0) == 80
    # ... but a 6 s chunk leaves 2 s (>= 1/4 of it): keep the 6 s chunk
    assert _next_chunk(budget, {**info, "seconds": 52.0}, 20, 2.0, 6.0) == 60
    # nothing left
    assert _next_chunk(budget, {**info, "seconds": 59.99}, 20, 2.0, 12.0) == 0


def test_next_chunk_steps_and_tokens_budgets():
    # steps: a sixth of 600 per chunk, never past the budget
    assert _next_chunk(Budget("steps", 600), {"seconds": 1, "steps": 100, "tokens": 0}, 10, 1.0, None) == 100
    assert _next_chunk(Budget("steps", 600), {"seconds": 1, "steps": 550, "tokens": 0}, 10, 1.0, None) == 50
    # tokens: 100 tokens per step so far; 6000 budget -> 10 steps per chunk; 500 tokens left -> 5 steps
    assert _next_chunk(Budget("tokens", 6000), {"seconds": 1, "steps": 20, "tokens": 2000}, 10, 1.0, None) == 10
    assert _next_chunk(Budget("tokens", 6000), {"seconds": 1, "steps": 55, "tokens": 5500}, 10, 1.0, None) == 5


def test_plans_fit_their_time():
    quick, default = study_plan("g2p", quick=True), study_plan("g2p")
    assert quick.train.kind == default.train.kind == "seconds"
    assert 3 * quick.train.amount <= 30  # training is a fraction of the 2-minute quick run
    assert 3 * default.train.amount <= 240  # ... and of the 10-minute default
    assert study_plan("g2p", n_models=5).train.amount < default.train.amount  # more models, less each


def test_bends_on_exact_power_laws():
    lengths = [16, 32, 64, 128]
    linear = bends(lengths, [3.0 * t for t in lengths])
    assert linear["slopes"] == pytest.approx([1.0, 1.0, 1.0])
    assert linear["bend_at"] is None
    quadratic = bends(lengths, [0.5 * t * t for t in lengths])
    assert quadratic["final_slope"] == pytest.approx(2.0)
    # flat, then quadratic: time = 10 for T <= 32, then 10 * (T / 32)^2 -> slopes 0, 2, 2: bends at 32
    knee = bends(lengths, [10.0, 10.0, 40.0, 160.0])
    assert knee["slopes"] == pytest.approx([0.0, 2.0, 2.0])
    assert knee["bend_at"] == 32
    # flat, linear, then quadratic: the last regime starts at 64
    three = bends([16, 32, 64, 128, 256], [5.0, 5.0, 10.0, 40.0, 160.0])
    assert three["slopes"] == pytest.approx([0.0, 1.0, 2.0, 2.0])
    assert three["bend_at"] == 64
    # missing points are skipped, slopes are between measured neighbours: 16 -> 64 is a factor 16 over 4
    gap = bends(lengths, [1.0, None, 16.0, None])
    assert gap["slopes"] == pytest.approx([2.0])
    assert gap["segments"] == [[16, 64]]


def test_scaling_archs_cover_fused_reference_and_recurrent():
    labels = [a.label for a in scaling_archs(["transformer", "gru-attention", "gru"])]
    assert labels == ["transformer (fused)", "transformer (reference)", "gru-attention", "gru", "lstm"]


def test_sequential_steps_and_score_counts():
    plan = ScalingPlan(lengths=(8, 16), d_model=16, layers=2)
    gru, tr = Arch("gru", "gru"), Arch("transformer (fused)", "transformer", "fused")
    gru_cfg, tr_cfg = arch_config(gru, plan), arch_config(tr, plan)
    # recurrence: each of 2 layers walks source and target, one position at a time
    assert [sequential_steps(gru, gru_cfg, t) for t in (8, 16)] == [2 * 2 * 8, 2 * 2 * 16]
    # attention: one step per layer whatever the length (2 encoder + 2 decoder layers)
    assert [sequential_steps(tr, tr_cfg, t) for t in (8, 16)] == [4, 4]
    # scores: B * H * T^2 per matrix; encoder self (2 layers) + decoder self and cross (2 layers each)
    assert attention_scores(tr, tr_cfg, batch=3, length=8) == 3 * 4 * 64 * (2 + 2 * 2)
    assert attention_scores(gru, gru_cfg, batch=3, length=8) == 0
    bahdanau = Arch("gru-attention", "gru-attention")
    assert attention_scores(bahdanau, arch_config(bahdanau, plan), batch=3, length=8) == 3 * 64


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak RSS reset needs Linux /proc")
def test_peak_memory_sees_a_new_tensor():
    with PeakMemory("cpu"):  # warm-up: first-call allocations of torch and of the measurement itself
        torch.ones(1000)
    with PeakMemory("cpu") as small:
        torch.ones(1000)
    with PeakMemory("cpu") as big:
        x = torch.ones(40 * 2**20 // 4)  # 40 MiB of float32, every page written
        del x
    assert small.method == big.method == "peak RSS delta"
    assert small.mib < 5
    assert 38 <= big.mib <= 60


def test_by_distance_assoc_recall_and_copy():
    assoc = ProbeSpec("assoc-recall", {"length": 10})
    examples = [
        Example("k1 v2 k3 v4 ? k1", "v2", meta={"distance": 2, "token_distance": 5}),
        Example("k1 v2 k3 v4 ? k3", "v4", meta={"distance": 1, "token_distance": 3}),
        Example("k5 v2 k3 v1 ? k5", "v2", meta={"distance": 2, "token_distance": 5}),
    ]
    assert by_distance(assoc, examples, ["v2", "v0", " v2 "]) == {3: (0, 1), 5: (2, 2)}
    copy = ProbeSpec("copy", {"length": 4})
    examples = [Example("1 2 3 4", "1 2 3 4"), Example("4 4 0 1", "4 4 0 1")]
    # first: 3 of 4 right; second: output one token too long -> 4 right of max(4, 5) = 5
    assert by_distance(copy, examples, ["1 2 0 4", "4 4 0 1 1"]) == {4: (7, 9)}


def test_multi_query_recall_scores_each_query_in_its_distance_bin():
    assert [distance_bin(d) for d in (1, 4, 5, 8, 9, 200, 256, 257)] == [4, 4, 8, 8, 16, 256, 256, 512]
    spec = ProbeSpec("assoc-recall", {"length": 40, "num_pairs": 2, "num_queries": 2})
    examples = [
        Example("src", "v1 v2", meta={"token_distances": [3, 30]}),  # bins 4 and 32
        Example("src", "v3 v4", meta={"token_distances": [17, 6]}),  # bins 32 and 8
    ]
    # first: both right; second: first answer right, second missing (the output is one token short)
    assert by_distance(spec, examples, ["v1 v2", "v3"]) == {4: (1, 1), 32: (2, 2), 8: (0, 1)}


def test_echoed_recall_scores_each_query_by_its_key_and_value():
    spec = ProbeSpec("assoc-recall", {"length": 40, "num_pairs": 2, "num_queries": 2, "echo_keys": True})
    examples = [
        Example("src", "k1 v1 k2 v2", meta={"token_distances": [3, 30]}),  # bins 4 and 32
        Example("src", "k3 v3 k4 v4", meta={"token_distances": [17, 6]}),  # bins 32 and 8
    ]
    # first: query 1 right, query 2 echoed right but its value wrong; second: query 1's key wrong, query 2 right
    hyps = ["k1 v1 k2 v9", "k5 v3 k4 v4"]
    assert by_distance(spec, examples, hyps) == {4: (1, 1), 32: (0, 2), 8: (1, 1)}


def test_probe_specs_recall_among_filler():
    plain = probe_specs("assoc-recall", [14], 100, 10)[0].options
    assert plain["length"] == 14 and "num_pairs" not in plain  # 6 pairs fill the context, as before
    spec = probe_specs("assoc-recall", [69, 261], 100, 10, pairs=8, queries=2, mixed_lengths=True)
    # slots = (length - 1 - queries) // 2; the source is the slots, "?" and the queries
    assert [s.length for s in spec] == [69, 261]
    assert spec[0].options["num_pairs"] == 8 and spec[0].options["num_queries"] == 2
    assert spec[0].options["min_train_length"] == 2 * 8 + 1 + 2
    assert "min_train_length" not in probe_specs("assoc-recall", [69], 100, 10, pairs=8)[0].options


def test_summarize_merges_runs_on_a_shared_axis():
    specs = [ProbeSpec("copy", {"length": 4}), ProbeSpec("copy", {"length": 8})]
    runs = {
        "gru": [{"params": 100, "by_distance": {"4": (3, 4)}}, {"params": 120, "by_distance": {"8": (1, 4)}}],
        "transformer": [{"params": 90, "by_distance": {"4": (4, 4)}}, {"params": 90, "by_distance": {}}],
    }
    out = summarize(specs, runs, Budget("steps", 10))
    assert out["distances"] == [4, 8]
    assert out["accuracy"] == {"gru": [0.75, 0.25], "transformer": [1.0, None]}
    assert out["params"] == {"gru": 110, "transformer": 90}


@pytest.mark.parametrize("name", ["transformer", "gru", "gru-attention", "lstm"])
def test_sized_config_hits_the_target(name):
    config = sized_config(name, 30_000, 40, 40)
    model = build_model(config, 40, 40)
    count = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    if name == "transformer":
        # Counted by hand for width d, d_ff = 2d, 2 + 2 pre-norm layers, 40-token vocabularies, untied, no
        # output bias: embeddings + output 3 * 40d; encoder layer: attention 4(d^2 + d), feed-forward
        # 4d^2 + 3d, two norms 4d; decoder layer: two attentions, feed-forward, three norms = 12d^2 + 17d;
        # two final norms 4d. Total 40d^2 + 180d.
        d = config.d_model
        assert count == 40 * d * d + 180 * d
    assert abs(count - 30_000) / 30_000 < 0.2
    # one width step either way is farther from the target
    step = 8 if name == "transformer" else 4
    for other in (config.d_model - step, config.d_model + step):
        kw = (
            {"d_model": other, "d_ff": 2 * other} if name == "transformer" else {"d_model": other, "hidden_size": other}
        )
        neighbour = ModelConfig(**{**config.to_dict(), **kw})
        assert abs(param_count(neighbour, 40, 40) - 30_000) >= abs(count - 30_000)


def test_fit_probes_only_when_behind_schedule():
    # deadline 570 s, scaling 60 s; called after the recall probe: copy 7 s x 3 models x 3 lengths
    plan = study_plan("g2p")
    same, note = fit_probes(plan, elapsed=200.0, n_models=3)
    assert same == plan.probes and note is None  # 9 runs x (7 + 3) = 90 s fit in 570 - 200 - 60
    fitted, note = fit_probes(plan, elapsed=440.0, n_models=3)
    # 70 s left for 3 x 2 = 6 runs: 70 / 6 - 3 = 8.7 s each, more than planned -> keep 7 s, drop a length
    assert fitted.copy_lengths == (4, 16) and fitted.budget.amount == 7.0 and "behind schedule" in note
    fitted, _ = fit_probes(plan, elapsed=470.0, n_models=3)
    assert fitted.budget.amount == round(40 / 6 - 3, 1)
    fitted, _ = fit_probes(plan, elapsed=600.0, n_models=3)
    assert fitted.budget.amount == 2.0  # never below 2 s
    assert fitted.recall_budget == plan.probes.recall_budget  # the recall probe's steps are never cut
    # one thread: the scaling study still to come is expected to take twice its 60 s
    same, _ = fit_probes(plan, elapsed=350.0, n_models=3)  # 570 - 350 - 60 = 160 s left: all 9 runs fit
    assert same == plan.probes
    fitted, _ = fit_probes(plan, elapsed=350.0, n_models=3, threads=1)  # 570 - 350 - 120 = 100 s < 90 + ...
    assert fitted == plan.probes  # 9 x (7 + 3) = 90 s still fits in 100 s
    fitted, _ = fit_probes(plan, elapsed=400.0, n_models=3, threads=1)  # 50 s left: 6 runs, 50 / 6 - 3 = 5.3 s
    assert fitted.copy_lengths == (4, 16) and fitted.budget.amount == round(50 / 6 - 3, 1)
    user = plan.with_budget(Budget("steps", 100))
    assert fit_probes(user, elapsed=10_000.0, n_models=3) == (user.probes, None)  # no deadline with --budget


def test_scaling_fit_agrees_with_scipy_linregress():
    import numpy as np
    from scipy.stats import linregress

    from qkv.compare.scaling import bends, loglog_fit

    points = [(32, 2.0), (64, 4.5), (128, 8.0), (256, 17.0)]
    ref = linregress(np.log([t for t, _ in points]), np.log([v for _, v in points]))
    fit = loglog_fit(points)
    assert fit["slope"] == pytest.approx(ref.slope, abs=1e-3) and fit["r2"] == pytest.approx(ref.rvalue**2, abs=1e-4)
    assert loglog_fit(points[:2]) is None  # two points are one noisy slope, not a fit
    quadratic = bends([16, 32, 64, 128, 256], [t * t for t in (16, 32, 64, 128, 256)])["fit"]
    assert quadratic["slope"] == pytest.approx(2.0) and quadratic["r2"] == pytest.approx(1.0)
    assert (quadratic["from"], quadratic["to"], quadratic["points"]) == (32, 256, 4)


def test_the_causal_encoder_probe_variant_is_the_encoder_decoder_with_only_its_encoder_mask_changed():
    import dataclasses

    from qkv.compare.probes import probe_lr
    from qkv.compare.recipes import probe_model_config
    from qkv.models import build_model

    variant, plain = probe_model_config("transformer-causal", 32), probe_model_config("transformer", 32)
    assert variant.name == "transformer" and variant.causal_encoder and not plain.causal_encoder
    assert dataclasses.replace(variant, causal_encoder=False) == plain
    assert (
        sized_config("transformer-causal", 40_000, 30, 30).d_model
        == sized_config("transformer", 40_000, 30, 30).d_model
    )
    assert probe_lr("transformer-causal") == probe_lr("transformer")
    # causal: changing the last source token leaves every earlier encoder state as it was (and bidirectional not)
    src = torch.randint(4, 30, (2, 9))
    changed = src.clone()
    changed[:, -1] = 4 + (src[:, -1] - 3) % 26
    for config, same in ((variant, True), (plain, False)):
        torch.manual_seed(0)
        model = build_model(config, 30, 30).eval()
        before, after = model.encode(src).memory, model.encode(changed).memory  # (B, T_s, E)
        assert torch.allclose(before[:, :-1], after[:, :-1], atol=1e-6) == same
