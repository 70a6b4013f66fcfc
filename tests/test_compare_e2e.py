"""`qkv compare --quick` end to end: every model has every measurement, the report has every section and
loads in headless Chromium without console errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MODELS = ["transformer", "gru-attention", "gru"]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "quick"
    env = {**os.environ, "QKV_OFFLINE": "1"}
    proc = subprocess.run(
        # the three-model lineup keeps this run short; prefix-lm has its own tests (test_prefix_lm, test_probe_cmd)
        [
            sys.executable,
            "-m",
            "qkv",
            "compare",
            "--quick",
            "--no-progress",
            "--models",
            ",".join(MODELS),
            "--out",
            str(out),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout, json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_every_model_has_every_measurement(quick_run):
    _, stdout, results = quick_run
    assert results["status"] == "complete", results["sections"]
    assert all(s["status"] == "done" for s in results["sections"].values())
    metric = results["task"]["metric"]
    assert metric == "wer" and results["task"]["higher_is_better"] is False
    assert list(results["models"]) == MODELS
    for name, m in results["models"].items():
        assert 0 <= m["test"]["greedy"][metric] <= 100, name
        assert 0 <= m["test"]["beam"][metric] <= 100, name
        assert m["params"] > 1000
        assert m["train"]["tokens_per_s"] > 0 and m["train"]["steps"] >= 10
        assert m["inference"]["latency_ms"] > 0 and m["inference"]["tokens_per_s"] > 0
        assert m["memory"]["train_peak_mib"] is not None and m["memory"]["train_peak_mib"] > 0  # a step allocates
        losses = [p["loss"] for p in m["curves"]["train"]]
        assert len(losses) >= 2 and all(x > 0 for x in losses)
        assert len(m["curves"]["eval"]) >= 2 and metric in m["curves"]["eval"][-1]
        seconds = [p["seconds"] for p in m["curves"]["eval"]]
        assert seconds == sorted(seconds)
        for probe in ("assoc-recall", "copy"):
            acc = results["probes"][probe]["accuracy"][name]
            assert len(acc) == len(results["probes"][probe]["distances"])
            assert all(a is None or 0 <= a <= 1 for a in acc)
    labels = [c["label"] for c in results["scaling"]["curves"]]
    assert labels == ["transformer (fused)", "transformer (reference)", "gru-attention", "gru", "lstm"]
    for curve in results["scaling"]["curves"]:
        measured = [v for v in curve["step_ms"] if v is not None]
        assert len(measured) >= 2 and all(v > 0 for v in measured)
    # machine and config are recorded with the numbers
    assert {"cpu", "cores", "threads", "torch", "device"} <= set(results["machine"])
    assert results["config"]["budget"]["kind"] == "seconds" and results["config"]["quick"] is True
    # the summary table is printed
    for name in MODELS:
        assert any(line.startswith(name) for line in stdout.splitlines())


@pytest.mark.slow
def test_attention_maps_are_distributions(quick_run):
    _, _, results = quick_run
    assert set(results["attention"]) == {"transformer", "gru-attention"}  # gru has no attention
    for name, maps in results["attention"].items():
        assert maps, name
        for item in maps:
            assert len(item["weights"]) == len(item["tgt_tokens"])
            for row in item["weights"]:
                assert len(row) == len(item["src_tokens"])
                assert sum(row) == pytest.approx(1.0, abs=1e-3)  # softmax over the source: rows sum to 1


@pytest.mark.slow
def test_report_has_every_section_and_figure(quick_run):
    out, _, results = quick_run
    page = (out / "report.html").read_text(encoding="utf-8")
    for section in ("conclusion", "summary", "quality", "examples", "cost", "scaling", "probes", "attention", "setup"):
        assert f'id="{section}"' in page
    assert set(results["figures"]) == {"training_curves", "budget_ladder", "cost", "scaling", "probes", "attention"}
    assert page.count('src="data:image/png;base64,') == 6
    rungs = results["ladder"]["rungs"]  # the quick plan's two rungs, every model scored at each
    assert len(rungs) == 2 and all(set(r["values"]) == set(MODELS) for r in rungs)
    for pair in results["significance"]["pairs"]:
        assert 0 < pair["wer"]["p_value"] <= 1 and pair["wer"]["low"] <= pair["wer"]["delta"] <= pair["wer"]["high"]
    for rel in results["figures"].values():
        assert (out / rel).stat().st_size > 1000
    assert "## Parallel computation" in (out / "report.md").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.browser
def test_report_loads_in_headless_chromium(quick_run):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (CI installs it; locally: apt-get install -y chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    out, _, _ = quick_run
    errors: list[str] = []
    requests: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.on("request", lambda req: requests.append(req.url))
        page.goto((out / "report.html").as_uri())
        page.wait_for_load_state("load")
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
        headings = page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
        browser.close()
    assert errors == []
    assert all(url.startswith(("file://", "data:")) for url in requests), requests  # nothing from the network
    assert len(widths) == 6 and all(w > 100 for w in widths)  # every figure, the budget ladder included
    assert headings[0] == "Conclusion" and any(h.startswith("Long-term dependencies") for h in headings)


@pytest.mark.slow
def test_verdicts_carry_their_tests_and_the_run_its_provenance(quick_run):
    """Each verdict the conclusion may state has its test in results.json, computed from the same outputs
    as the scores beside it: beam against greedy, every rung's leader against its runner-up, Holm over pairs."""
    _, _, results = quick_run
    metric = results["task"]["metric"]
    for name, m in results["models"].items():
        test = m["test"]
        paired = test["beam_vs_greedy"]
        assert paired["delta"] == pytest.approx(test["beam"][metric] - test["greedy_on_beam_examples"][metric]), name
        assert 0 < paired["p_value"] <= 1 and paired["significant"] == (paired["p_value"] < 0.05)
    pairs = results["significance"]["pairs"]
    assert len(pairs) == len(MODELS) * (len(MODELS) - 1) // 2
    for pair in pairs:
        for m in results["significance"]["metrics"]:
            assert pair[m]["p_holm"] >= pair[m]["p_value"] and pair[m]["significant"] == (pair[m]["p_holm"] < 0.05)
    for rung in results["ladder"]["rungs"]:
        test = rung["test"]
        ordered = sorted(rung["values"], key=rung["values"].get)  # WER: the lowest leads
        assert [test["a"], test["b"]] == ordered[:2]
        assert test["delta"] == pytest.approx(rung["values"][test["a"]] - rung["values"][test["b"]])
    assert results["provenance"]["command"].startswith("qkv compare --quick --no-progress --models")
    assert results["provenance"]["commit"]  # the test runs in the repository's checkout
