"""The saved probe study (results/probes/study): rows recomputed at the current bar, the better of two runs
kept, and shown in the comparison's report and conclusion."""

from __future__ import annotations

import json

import pytest

from qkv.compare import report
from qkv.compare.conclusion import conclusion
from qkv.compare.probe_study import load_probe_study, study_cell, study_root


def _results_file(probe: str, cap: int, runs: dict[str, list[tuple[int, float]]], length: int = 256) -> dict:
    """A `qkv probe` results file with one run per model; ``runs`` gives each model's (steps, accuracy)
    checks, the last being the final score."""
    metric = "exact_match" if probe == "assoc-recall" else "token_accuracy"
    return {
        "probe": probe,
        "budget": {"kind": "steps", "amount": cap},
        "solved_at": 95.0,
        "runs": {
            model: [
                {
                    "length": length,
                    "params": 40_000,
                    "steps": curve[-1][0],
                    metric: curve[-1][1],
                    "curve": [{"steps": s, metric: a} for s, a in curve],
                }
            ]
            for model, curve in runs.items()
        },
    }


@pytest.fixture
def study(tmp_path):
    folder = tmp_path / "probes" / "study"
    folder.mkdir(parents=True)
    files = {
        # 97 % passes the old 95 % bar at step 500 but not the 99 % bar, which it reaches at 1,000
        "copy-a.json": _results_file("copy", 1000, {"transformer": [(500, 97.0), (1000, 99.5)], "gru": [(1000, 14.0)]}),
        # the same GRU given a larger cap: this run says more, so it is the one kept
        "copy-b.json": _results_file("copy", 4000, {"gru": [(2000, 13.0), (4000, 13.8)]}),
        # the same Transformer solving it later: the faster run is kept
        # (its command names its rate)
        "copy-c.json": {
            **_results_file("copy", 4000, {"transformer": [(2000, 99.9), (4000, 100.0)]}),
            "command": "qkv probe --task copy --lr 1e-3",
        },
        "recall.json": _results_file("assoc-recall", 600, {"gru-attention": [(300, 99.0), (600, 100.0)]}, length=34),
        "notes.json": {"not": "a qkv probe results file"},
        # recall among filler with 4 queries is another task than plain recall, and an equal-width run is not
        # an equal-size one
        "mqar.json": {
            **_results_file("assoc-recall", 600, {"gru": [(600, 30.0)]}, length=34),
            "options": [{"num_pairs": 8, "num_queries": 4}],
        },
        "wide.json": {**_results_file("copy", 1000, {"gru": [(500, 99.9)]}), "sizing": {"width": 64}},
    }
    files["recall.json"]["runs"]["gru-attention"][0]["lr"] = 3e-4  # a rate recorded with the run
    for name, data in files.items():
        (folder / name).write_text(json.dumps(data))
    (folder / "copy-a.txt").write_text("the printed tables")
    return folder


def test_rows_are_recomputed_at_the_current_bar_and_the_better_run_is_kept(study):
    rows = {(r["probe"], r["length"], r["model"]): r for r in load_probe_study(study)}
    assert set(rows) == {
        ("copy", 256, "transformer"),
        ("copy", 256, "gru"),
        ("assoc-recall", 34, "gru-attention"),
        ("assoc-recall, 8 pairs among filler, 4 queries", 34, "gru"),
    }
    transformer = rows["copy", 256, "transformer"]
    assert transformer["steps_to_solve"] == 1000 and transformer["file"] == "copy-a.json"  # 99 %, not 95 %
    gru = rows["copy", 256, "gru"]
    assert (
        gru["steps_to_solve"] is None and gru["cap"] == 4000 and gru["final"] == 13.8 and gru["file"] == "copy-b.json"
    )
    assert rows["assoc-recall", 34, "gru-attention"]["metric"] == "exact_match"
    assert rows["assoc-recall", 34, "gru-attention"]["steps_to_solve"] == 300
    # the rate: recorded with the run, else the command's --lr, else 3e-3 (the one rate of the first studies)
    assert rows["assoc-recall", 34, "gru-attention"]["lr"] == 3e-4 and transformer["lr"] == 3e-3
    # under the old bar the Transformer's first check counts
    old = {(r["probe"], r["model"]): r for r in load_probe_study(study, solved_at=95.0)}
    assert old["copy", "transformer"]["steps_to_solve"] == 500
    # at a bar only the 1e-3 run reaches early, that run is kept, with its rate from its command
    high = {(r["probe"], r["model"]): r for r in load_probe_study(study, solved_at=99.8)}
    assert high["copy", "transformer"]["file"] == "copy-c.json" and high["copy", "transformer"]["lr"] == 1e-3


def test_a_missing_folder_is_an_empty_study(tmp_path):
    assert load_probe_study(tmp_path / "nowhere") == []


def test_cells_say_steps_or_the_cap_and_the_accuracy_there():
    assert study_cell({"steps_to_solve": 1500, "cap": 4000, "final": 99.9, "lr": 1e-3}) == "1,500 · lr 1e-3"
    assert study_cell({"steps_to_solve": None, "cap": 8000, "final": 81.1, "lr": 3e-4}) == "> 8,000 (81 %) · lr 3e-4"
    assert study_cell({"steps_to_solve": 1500, "cap": 4000, "final": 99.9}) == "1,500"


def test_the_report_shows_the_study_and_the_conclusion_names_its_longest_lengths(study):
    results = {"probe_study": load_probe_study(study)}
    header, rows = report.probe_study_rows(results["probe_study"])
    assert header == ["probe", "T", "transformer", "gru-attention", "gru"]
    assert rows == [
        ["assoc-recall", "34", "–", "300 · lr 3e-4", "–"],
        ["assoc-recall, 8 pairs among filler, 4 queries", "34", "–", "–", "> 600 (30 %) · lr 3e-3"],
        ["copy", "256", "1,000 · lr 3e-3", "–", "> 4,000 (14 %) · lr 3e-3"],
    ]
    md = report.render_markdown(results)
    assert "Saved full study" in md and "| copy | 256 | 1,000 · lr 3e-3 | – | > 4,000 (14 %) · lr 3e-3 |" in md
    sentence = next(s for s in conclusion(results) if "saved full probe study" in s.text)
    assert sentence.anchor == "probes"
    assert "assoc-recall at T = 34: gru-attention solves it in 300 steps" in sentence.text
    assert "copy at T = 256: transformer solves it in 1,000 steps, gru not in 4,000 (14 % at the cap)" in sentence.text


def test_the_repository_study_loads_and_names_its_files():
    rows = load_probe_study()
    assert rows, study_root()
    for row in rows:
        assert (study_root() / row["file"]).is_file()
        assert row["steps_to_solve"] is None or row["steps_to_solve"] <= row["cap"]


def _sweep_file(runs: dict[str, list[list[tuple[float, int | None, int]]]]) -> dict:
    """A `qkv probe --lr ...` results file: per model, per length, the (lr, steps to solve, steps) tried; the
    accuracy is 50 % at 3e-3 and 30 % otherwise (it only matters between runs that solve nothing)."""
    return {
        "probe": "assoc-recall",
        "runs": {
            model: [
                {
                    "lr_sweep": [
                        {"lr": lr, "steps_to_solve": s, "steps": n, "exact_match": 50.0 if lr == 3e-3 else 30.0}
                        for lr, s, n in tried
                    ]
                }
                for tried in lengths
            ]
            for model, lengths in runs.items()
        },
    }


def test_sweep_winners_solve_the_most_settings_then_in_the_fewest_steps(tmp_path):
    from qkv.compare.probe_study import sweep_winners

    (tmp_path / "lr-sweep-short.json").write_text(
        json.dumps(
            _sweep_file(
                {
                    # 3e-3 is faster on the short setting ...
                    "prefix-lm": [[(1e-3, 800, 800), (3e-3, 400, 400)]],
                    "gru": [[(3e-4, None, 1600), (1e-3, None, 1600)]],
                    "gru-attention": [[(1e-3, 600, 600), (3e-3, 300, 300)]],
                }
            )
        )
    )
    (tmp_path / "lr-sweep-long.json").write_text(
        json.dumps(
            _sweep_file(
                {
                    # ... but only 1e-3 solves the long one: solving more settings comes first
                    "prefix-lm": [[(1e-3, 4500, 4500), (3e-3, None, 6000)]],
                    # neither solves anything: the fewer steps summed (all caps here), then the better accuracy
                    "gru": [[(3e-4, None, 6000), (1e-3, None, 6000)]],
                    "transformer": [[(1e-3, None, 6000), (3e-3, None, 6000)]],
                    # both solve both: fewest steps summed, 300 + 1,500 < 600 + 2,000
                    "gru-attention": [[(1e-3, 2000, 2000), (3e-3, 1500, 1500)]],
                }
            )
        )
    )
    (tmp_path / "selective-copy.json").write_text("{}")  # not a sweep file: not read
    # gru: nothing solved, equal steps, equal accuracy -> the smaller rate; transformer: better accuracy at 3e-3
    assert sweep_winners(tmp_path) == {"gru": 3e-4, "gru-attention": 3e-3, "prefix-lm": 1e-3, "transformer": 3e-3}
    assert sweep_winners(tmp_path / "nowhere") == {}


def test_the_probe_rates_are_the_saved_sweeps_winners():
    """PROBE_LRS is a constant in the code; it must say what the sweeps in results/probes/study say."""
    from qkv.compare.probe_study import sweep_winners
    from qkv.compare.probes import PROBE_LRS

    assert PROBE_LRS and sweep_winners() == PROBE_LRS


def test_the_label_tells_apart_the_recall_tasks():
    from qkv.compare.probe_study import probe_label

    assert probe_label({"probe": "assoc-recall", "options": [{}]}) == "assoc-recall"
    mqar = {"num_pairs": 8, "num_queries": 4}
    assert probe_label({"probe": "assoc-recall", "options": [mqar]}) == "assoc-recall, 8 pairs among filler, 4 queries"
    echoed = {"probe": "assoc-recall", "options": [{**mqar, "echo_keys": True}]}
    assert probe_label(echoed) == "assoc-recall, 8 pairs among filler, 4 queries, keys echoed"
