"""The report's conclusion is generated from the results: each sentence checked against a hand-built
results.json (who wins, by how much, whether it is significant, where the ladder flips, the probes)."""

from __future__ import annotations

from qkv.compare import report
from qkv.compare.conclusion import conclusion


def saved_results() -> dict:
    return {
        "task": {"name": "g2p", "metric": "wer", "higher_is_better": False, "test_examples": 500, "beam_examples": 100},
        "config": {"budget_text": "60 s of training per model", "models": ["transformer", "gru"]},
        "warnings": [],
        "models": {
            "transformer": {
                "test": {
                    "greedy": {"wer": 30.0},
                    "beam": {"wer": 28.0},
                    "greedy_on_beam_examples": {"wer": 31.0},
                    "beam_size": 4,
                    "interval": {"wer": {"value": 30.0, "low": 26.0, "high": 34.1}},
                }
            },
            "gru": {"test": {"greedy": {"wer": 38.5}, "interval": {"wer": {"value": 38.5, "low": 34.0, "high": 43.0}}}},
        },
        "significance": {
            "metrics": ["wer"],
            "pairs": [
                {
                    "a": "transformer",
                    "b": "gru",
                    "wer": {"delta": -8.5, "p_value": 0.001, "low": -12.0, "high": -5.0, "significant": True},
                }
            ],
        },
        "ladder": {
            "metric": "wer",
            "rungs": [
                {
                    "amount": 15,
                    "budget_text": "15 s",
                    "values": {"transformer": 80.0, "gru": 60.0},
                    "leader": "gru",
                    "steps": {"transformer": 100, "gru": 300},
                },
                {
                    "amount": 60,
                    "budget_text": "60 s",
                    "values": {"transformer": 30.0, "gru": 38.5},
                    "leader": "transformer",
                    "steps": {"transformer": 400, "gru": 1200},
                },
            ],
        },
        "probes": {
            "assoc-recall": {
                "distances": [4, 64, 256],
                "accuracy": {"transformer": [1.0, 1.0, 0.995], "gru": [0.9, 0.4, 0.13]},
            }
        },
        "scaling": {
            "curves": [
                {"label": "transformer (fused)", "bend": {"fit": {"slope": 1.62, "r2": 0.99, "from": 64, "to": 512}}}
            ]
        },
    }


def texts(results: dict) -> list[str]:
    return [s.text for s in conclusion(results)]


def test_winner_margin_interval_and_significance():
    first = texts(saved_results())[0]
    assert first.startswith("With 60 s of training per model, **transformer** has the best test WER: 30.0")
    assert "(95% CI 26.0–34.1)" in first and "gru 38.5" in first and "8.5 points behind" in first
    assert "significant (paired bootstrap p = 0.001)" in first


def test_a_difference_that_is_not_significant_is_called_so():
    results = saved_results()
    results["significance"]["pairs"][0]["wer"].update(p_value=0.31, significant=False)
    assert "**not** significant (paired bootstrap p = 0.310)" in texts(results)[0]


def test_beam_is_compared_with_greedy_on_the_same_examples():
    beam = [t for t in texts(saved_results()) if t.startswith("Beam search")][0]
    assert "improves transformer's WER on the same first 100 test examples: 31.0 greedy, 28.0 beam" in beam


def test_ladder_flip_probes_and_scaling():
    all_text = " ".join(texts(saved_results()))
    assert "the ranking changes: gru leads at 15 s, **transformer** from 60 s" in all_text
    assert "transformer solves it at every distance up to 256" in all_text
    assert "gru goes from 0.90 at distance 4 to 0.13 at 256" in all_text
    assert "transformer (fused) T^1.62 (R² 0.99, T = 64–512)" in all_text


def test_busy_machine_warning_leads_and_partial_results_still_conclude():
    results = saved_results()
    results["warnings"] = ["Busy machine: other jobs used 1.0 of 2 cores"]
    assert texts(results)[0].startswith("**Warning.** Busy machine")
    partial = {"task": results["task"], "models": {"gru": results["models"]["gru"]}, "config": results["config"]}
    assert texts(partial) == [
        "With 60 s of training per model, **gru** has the best test WER: 38.5 "
        "(95% CI 34.0–43.0) on 500 test examples (greedy)."
    ]


def test_the_conclusion_leads_both_report_pages():
    results = saved_results()
    md, page = report.render_markdown(results), report.render_html(results)
    assert md.index("## Conclusion") < md.index("## Summary")
    assert page.index('id="conclusion"') < page.index('id="summary"')
    assert "<b>transformer</b> has the best test WER" in page and 'href="#quality"' in page


def test_the_converged_reference_run_stands_beside_the_budgeted_verdict(tmp_path, monkeypatch):
    import json

    from qkv.compare.study import reference_results

    folder = tmp_path / "g2p-transformer"
    folder.mkdir()
    record = {
        "recipe": "g2p-transformer",
        "task": "g2p",
        "model": "transformer",
        "split": "test",
        "decoding": "greedy",
        "metrics": {"wer": 24.25, "per": 5.5, "loss": 0.4},
        "train_seconds": 3600,
        "train_steps": 2200,
        "threads": 1,
        "machine": "cpu",
        "command": "qkv train configs/g2p-transformer.yaml",
        "commit": "0" * 40,
    }
    (folder / "result.json").write_text(json.dumps(record))
    (folder / "config.yaml").write_text("task:\n  name: g2p\n  options: {source: g014b2b}\n")
    monkeypatch.setenv("QKV_RESULTS", str(tmp_path))
    assert reference_results("translation") == []
    results = saved_results()
    results["reference_results"] = reference_results("g2p")
    sentence = [t for t in texts(results) if t.startswith("Converged reference run")][0]
    assert "transformer reaches wer 24.2, per 5.5 on test, source g014b2b, greedy after 60 min" in sentence  # no loss
    assert "`qkv train configs/g2p-transformer.yaml`" in sentence


def test_probe_steps_to_solve_are_named_when_the_runs_were_checked_along_the_way():
    results = saved_results()
    probe = results["probes"]["assoc-recall"]
    probe["solved_at"] = 95.0
    probe["steps_to_solve"] = {"transformer": [500], "gru": [None]}
    probe["runs"] = {
        "transformer": [{"steps": 800, "curve": [{"steps": 400}, {"steps": 800}]}],
        "gru": [{"steps": 800, "curve": [{"steps": 400}, {"steps": 800}]}],
    }
    sentence = next(t for t in texts(results) if t.startswith("Probe **assoc-recall**"))
    assert sentence.endswith("steps to solve (95% exact match): transformer 500, gru not in 800.")
    probe["runs"]["transformer"][0]["curve"] = [{"steps": 800}]  # one check only: no steps-to-solve claim
    probe["runs"]["gru"][0]["curve"] = [{"steps": 800}]
    assert "steps to solve" not in next(t for t in texts(results) if t.startswith("Probe **assoc-recall**"))


def _write_result(root, recipe: str, task: str, options: str, **fields) -> None:
    import json

    folder = root / recipe
    folder.mkdir()
    record = {
        "recipe": recipe,
        "task": task,
        "model": "transformer",
        "split": "test",
        "decoding": "greedy",
        "metrics": {"bleu": 36.0},
        "train_seconds": 600,
        "train_steps": 1000,
        "threads": 2,
        "machine": "cpu",
        "command": f"qkv train configs/{recipe}.yaml",
        "commit": "0" * 40,
        "examples": 1000,
        **fields,
    }
    (folder / "result.json").write_text(json.dumps(record))
    if options is not None:
        (folder / "config.yaml").write_text(f"task:\n  name: {task}\n  options: {options}\n")


def test_reference_runs_on_other_data_are_left_out(tmp_path, monkeypatch):
    """compare translates German to English: an en->de run is not its reference, nor is SAMSum beside AESLC;
    a folder without a config cannot show it used the same data."""
    from qkv.compare.study import reference_results

    _write_result(tmp_path, "multi30k-transformer", "translation", "{tokenizer: bpe}")  # defaults: de -> en
    _write_result(tmp_path, "multi30k-en-de-transformer", "translation", "{src_lang: en, tgt_lang: de}")
    _write_result(tmp_path, "multi30k-no-config", "translation", None)
    _write_result(tmp_path, "aeslc-transformer", "summarization", "{dataset: aeslc}", metrics={"rouge1": 30.0})
    _write_result(tmp_path, "samsum-transformer", "summarization", "{dataset: samsum}", metrics={"rouge1": 40.0})
    monkeypatch.setenv("QKV_RESULTS", str(tmp_path))
    assert [r["recipe"] for r in reference_results("translation")] == ["multi30k-transformer"]
    assert reference_results("translation")[0]["data"] == {"src_lang": "de", "tgt_lang": "en"}
    assert [r["recipe"] for r in reference_results("summarization")] == ["aeslc-transformer"]


def test_an_extractive_baseline_reference_is_called_a_baseline(tmp_path, monkeypatch):
    from qkv.compare.study import reference_results

    _write_result(
        tmp_path,
        "aeslc-lead1",
        "summarization",
        None,  # a baseline keeps no config: its command names the dataset
        model="lead-1 (extractive baseline)",
        decoding="extractive",
        metrics={"rouge1": 15.8},
        train_seconds=0.0,
        command="qkv baseline lead --task aeslc --split test --n 1",
        examples=1906,
    )
    _write_result(
        tmp_path,
        "samsum-lead3",
        "summarization",
        None,
        model="lead-3 (extractive baseline)",
        decoding="extractive",
        metrics={"rouge1": 31.3},
        train_seconds=0.0,
        command="qkv baseline lead --task samsum --split test --n 3",
    )
    monkeypatch.setenv("QKV_RESULTS", str(tmp_path))
    results = saved_results()
    results["reference_results"] = reference_results("summarization")
    assert [r["recipe"] for r in results["reference_results"]] == ["aeslc-lead1"]
    sentence = next(t for t in texts(results) if "lead-1" in t)
    assert sentence.startswith("Reference baseline (nothing trained): lead-1 (extractive baseline) reaches rouge1 15.8")
    assert "on 1,906 test examples, dataset aeslc, extractive" in sentence and "min of training" not in sentence


def _with_seeds(results: dict, values: dict[str, list[float]], welch_p: float) -> dict:
    """The review's case: transformer wins on its first seed (30.0) but its seeds' mean is worse than gru's."""
    for name, vals in values.items():
        mean = sum(vals) / len(vals)
        sd = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5
        results["models"][name]["seeds"] = {"seeds": [1, 2, 3], "values": vals, "mean": mean, "std": sd}
    delta = (sum(values["transformer"]) - sum(values["gru"])) / 3
    results["significance"]["pairs"][0]["seeds"] = {
        "metric": "wer",
        "delta": delta,
        "p_value": welch_p,
        "n_a": 3,
        "n_b": 3,
        "significant": welch_p < 0.05,
    }
    return results


def test_with_several_seeds_the_ranking_is_the_seed_mean_and_one_lucky_seed_is_no_verdict():
    results = _with_seeds(saved_results(), {"transformer": [30.0, 55.0, 60.0], "gru": [38.5, 40.0, 41.5]}, 0.2)
    first = texts(results)[0]
    assert "**gru** has the best test WER: 40.0 ± 1.5 (mean ± sd over 3 seeds)" in first
    assert "transformer 48.3 ± 16.1 (mean ± sd over 3 seeds), 8.3 points behind" in first
    assert "**not** significant (Welch's t-test over the seeds p = 0.200" in first
    assert "One training run per model" not in first


def test_with_seeds_a_verdict_needs_the_seeds_and_the_test_set_to_agree():
    results = _with_seeds(saved_results(), {"transformer": [30.0, 31.0, 32.0], "gru": [38.5, 40.0, 41.5]}, 0.004)
    first = texts(results)[0]
    assert "**transformer** has the best test WER: 31.0 ± 1.0" in first
    assert "the difference is significant (Welch's t-test over the seeds p = 0.004; paired bootstrap" in first
    results["significance"]["pairs"][0]["wer"].update(p_value=0.2, significant=False)  # the test set does not
    assert "**not** significant (Welch's t-test over the seeds p = 0.004" in texts(results)[0]


def test_one_run_per_model_says_what_its_p_values_cover():
    assert "the p-values cover which test examples were drawn, not how much another seed" in texts(saved_results())[0]


def test_holm_adjusted_p_is_the_one_the_verdict_uses():
    results = saved_results()
    results["significance"]["pairs"][0]["wer"].update(p_value=0.02, p_holm=0.06, significant=False)
    assert "**not** significant (paired bootstrap p = 0.060, Holm-adjusted over 1 pairs)" in texts(results)[0]


def test_the_bootstrap_floor_is_printed_as_a_bound():
    results = saved_results()
    results["significance"]["pairs"][0]["wer"]["p_value"] = 1 / 1001
    assert "significant (paired bootstrap p ≤ 0.001)" in texts(results)[0]


def test_a_beam_change_inside_the_noise_is_called_so():
    results = saved_results()
    test = results["models"]["transformer"]["test"]
    test["beam_vs_greedy"] = {"delta": -3.0, "p_value": 0.4, "low": -9.0, "high": 3.0, "significant": False}
    beam = next(t for t in texts(results) if t.startswith("Beam search"))
    assert "31.0 greedy, 28.0 beam (**not** significant, paired bootstrap p = 0.400" in beam
    test["beam_vs_greedy"].update(p_value=0.01, significant=True)
    assert "(significant, paired bootstrap p = 0.010)" in next(t for t in texts(results) if t.startswith("Beam"))


def _rung_tests(results: dict, significant: list[bool]) -> dict:
    for rung, sig in zip(results["ladder"]["rungs"], significant, strict=True):
        values = sorted(rung["values"].items(), key=lambda kv: kv[1])  # WER: lower leads
        (a, va), (b, vb) = values[0], values[1]
        rung["test"] = {"a": a, "b": b, "delta": va - vb, "p_value": 0.01 if sig else 0.3, "significant": sig}
    return results


def test_a_ladder_flip_needs_a_significant_leader_at_both_rungs():
    flipped = " ".join(texts(_rung_tests(saved_results(), [True, True])))
    assert "the ranking changes (paired bootstrap, leader against runner-up): 15 s: **gru**, significantly" in flipped
    unsure = " ".join(texts(_rung_tests(saved_results(), [False, True])))
    assert "ranking changes" not in unsure
    assert "15 s: no clear leader (gru ahead of transformer by 20.0, p = 0.300)" in unsure


def test_leading_at_every_rung_needs_every_rung_significant():
    results = saved_results()
    results["ladder"]["rungs"][0]["values"] = {"transformer": 50.0, "gru": 60.0}
    results["ladder"]["rungs"][0]["leader"] = "transformer"
    assert "**transformer** leads at every rung, significantly" in " ".join(texts(_rung_tests(results, [True, True])))
    one = " ".join(texts(_rung_tests(results, [True, False])))
    assert "every rung" not in one and "60 s: no clear leader" in one
