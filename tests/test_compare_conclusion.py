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
    assert "**not** significant (p = 0.31)" in texts(results)[0]


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
    monkeypatch.setenv("QKV_RESULTS", str(tmp_path))
    assert reference_results("translation") == []
    results = saved_results()
    results["reference_results"] = reference_results("g2p")
    sentence = [t for t in texts(results) if t.startswith("Converged reference run")][0]
    assert "transformer on test reaches wer 24.2, per 5.5 after 60 min" in sentence  # loss is left out
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
