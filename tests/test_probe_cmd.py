"""`qkv probe`: the command trains every architecture per length and writes results, figure and tables."""

from __future__ import annotations

import json

import pytest

from qkv.cli import main


@pytest.mark.slow
def test_probe_assoc_recall_end_to_end(tmp_path, capsys):
    out = tmp_path / "probe"
    code = main(
        [
            "probe",
            "--task",
            "assoc-recall",
            "--lengths",
            "6",
            "--models",
            "gru,transformer,prefix-lm",
            "--budget",
            "4steps",
            "--params",
            "5000",
            "--examples",
            "200",
            "--test-examples",
            "60",
            "--checks",
            "2",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    # length 6 = 2 key-value pairs + "? k": the queried pair is 1 or 2 pairs back, i.e. 3 or 5 tokens
    assert results["distances"] == [3, 5]
    assert set(results["accuracy"]) == {"gru", "transformer", "prefix-lm"}
    for name, acc in results["accuracy"].items():
        assert len(acc) == 2 and all(0 <= a <= 1 for a in acc)
        run = results["runs"][name][0]
        assert run["steps"] == 4 and run["length"] == 6
        # the per-distance counts add up to the test set, and to the exact-match accuracy
        counts = run["by_distance"].values()
        assert sum(total for _, total in counts) == 60
        assert 100 * sum(c for c, _ in counts) / 60 == pytest.approx(run["exact_match"])
        assert 3000 < results["params"][name] < 7000
        # two checks along the 4 steps: the rung at 2 steps and the end; the last check is the final score
        assert [c["steps"] for c in run["curve"]] == [2, 4]
        assert run["curve"][-1]["exact_match"] == pytest.approx(run["exact_match"])
        expected = next((c["steps"] for c in run["curve"] if c["exact_match"] >= 99.0), None)
        assert run["steps_to_solve"] == expected and results["steps_to_solve"][name] == [expected]
        assert run["stopped_when_solved"] is False  # without --until-solved every run spends its budget
    assert results["lengths"] == [6] and results["solved_at"] == 99.0 and results["solve_metric"] == "exact_match"
    assert results["command"].startswith("qkv probe --task assoc-recall --lengths 6 --models gru,transformer,prefix-lm")
    for figure in ("probe.png", "probe-learning.png"):
        assert (out / "figures" / figure).read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "exact match by length" in printed and "accuracy by distance" in printed
    assert "steps to solve" in printed


@pytest.mark.slow
def test_probe_copy_distance_is_the_length(tmp_path):
    out = tmp_path / "copy"
    assert (
        main(
            [
                "probe",
                "--task",
                "copy",
                "--lengths",
                "5,3",
                "--models",
                "gru",
                "--budget",
                "2steps",
                "--params",
                "3000",
                "--examples",
                "100",
                "--test-examples",
                "20",
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert results["distances"] == [3, 5]  # lengths, sorted
    assert [r["length"] for r in results["runs"]["gru"]] == [3, 5]


@pytest.mark.parametrize(
    "args",
    [
        ["--lengths", "4,x"],
        ["--lengths", "1"],
        ["--models", "gpt"],
        ["--budget", "soon"],
        ["--params", "10"],
        ["--threads", "0"],
        ["--checks", "0"],
        ["--task", "copy", "--pairs", "4"],
        ["--task", "copy", "--echo-keys"],
        ["--pairs", "0"],
        ["--pairs", "4", "--queries", "5"],
        ["--mixed-lengths"],
        ["--lr", "2"],
        ["--lr", "1e-3,x"],
        ["--lr", "1e-3,0"],
        ["--lr", ","],
        ["--solve-at", "0"],
        ["--solve-at", "101"],
        ["--width", "30"],
        ["--width", "0"],
        ["--params", "5000", "--width", "32"],
    ],
)
def test_probe_bad_arguments_exit_2(args, tmp_path, capsys):
    assert main(["probe", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qkv probe: error:") and "Traceback" not in err


def test_steps_to_solve_is_the_first_check_at_the_bar():
    from qkv.compare.probes import SOLVED, steps_to_solve

    curve = [
        {"steps": 100, "exact_match": 40.0},
        {"steps": 200, "exact_match": SOLVED},  # exactly at the bar counts as solved
        {"steps": 300, "exact_match": 90.0},  # a later dip does not undo it
        {"steps": 400, "exact_match": 100.0},
    ]
    assert steps_to_solve(curve) == 200
    assert steps_to_solve(curve[:1]) is None
    assert steps_to_solve([{"steps": 5, "token_accuracy": 99.0}], "token_accuracy") == 5
    assert steps_to_solve([]) is None


def test_steps_to_solve_takes_the_bar_it_is_given():
    from qkv.compare.probes import steps_to_solve

    curve = [{"steps": 100, "exact_match": 96.0}, {"steps": 200, "exact_match": 99.5}]
    assert steps_to_solve(curve, solved_at=95.0) == 100
    assert steps_to_solve(curve, solved_at=99.0) == 200
    assert steps_to_solve(curve, solved_at=99.9) is None


def _probe_args(out, *extra):
    return [
        "probe", "--task", "copy", "--lengths", "4", "--models", "gru", "--budget", "40steps", "--params", "3000",
        "--examples", "100", "--test-examples", "20", "--checks", "4", "--device", "cpu", "--out", str(out), *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_until_solved_ends_the_run_at_the_first_check_at_the_bar(tmp_path, monkeypatch):
    """The scorer is replaced by one that reports the bar reached from the second check on: the run must
    stop there (no training past that check's step), keep that check as its final score, and say so."""
    import qkv.compare.probes as probes

    real_score = probes._score
    calls = []

    def scored_from_second_check(run_dir, spec, device):
        scores, examples, hyps = real_score(run_dir, spec, device)
        calls.append(1)
        return {**scores, "token_accuracy": 99.5 if len(calls) >= 2 else 10.0}, examples, hyps

    monkeypatch.setattr(probes, "_score", scored_from_second_check)
    out = tmp_path / "until"
    assert main(_probe_args(out, "--until-solved")) == 0
    run = json.loads((out / "results.json").read_text())["runs"]["gru"][0]
    assert [c["steps"] for c in run["curve"]] == [10, 20]  # checks at 10, 20, 30 of 40 steps; stopped at 20
    assert run["steps"] == 20 and run["steps_to_solve"] == 20 and run["stopped_when_solved"] is True
    assert run["token_accuracy"] == 99.5 and len(calls) == 2  # no extra scoring after the stop
    metrics = (out / "runs" / "copy-4-gru" / "metrics.jsonl").read_text().splitlines()
    assert max(json.loads(line)["step"] for line in metrics) == 20

    # the same run without --until-solved spends the whole budget and scores once more at the end
    calls.clear()
    out = tmp_path / "capped"
    assert main(_probe_args(out)) == 0
    run = json.loads((out / "results.json").read_text())["runs"]["gru"][0]
    assert [c["steps"] for c in run["curve"]] == [10, 20, 30, 40]
    assert run["steps"] == 40 and run["steps_to_solve"] == 20 and run["stopped_when_solved"] is False


@pytest.mark.slow
def test_width_gives_every_architecture_that_width(tmp_path):
    """Equal width instead of equal size: every model is built at the width asked for (its embeddings and
    recurrent states have that size), so the parameter counts differ between the families."""
    from torch import nn

    from qkv.training.run import load_run

    out = tmp_path / "width"
    args = _probe_args(out, "--width", "24")
    args[args.index("--models") + 1] = "gru,transformer,gru-attention"
    del args[args.index("--params") : args.index("--params") + 2]  # --params and --width exclude each other
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["sizing"] == {"width": 24}
    for name in ("gru", "transformer", "gru-attention"):
        assert results["runs"][name][0]["width"] == 24
        model = load_run(out / "runs" / f"copy-4-{name}", "last", device="cpu").model
        embeddings = [m for m in model.modules() if isinstance(m, nn.Embedding) and m.num_embeddings > 8]
        assert embeddings and all(m.embedding_dim == 24 for m in embeddings)
        assert all(m.hidden_size == 24 for m in model.modules() if isinstance(m, nn.GRU))
        unique = {id(p): p for p in model.parameters()}.values()  # a tied weight counts once
        assert results["params"][name] == sum(p.numel() for p in unique)
    assert len(set(results["params"].values())) == 3


def test_best_of_sweep_prefers_solved_then_fewer_steps_then_accuracy():
    from qkv.compare.probes import best_of_sweep

    def run(lr, solved, acc):
        return {"lr": lr, "steps_to_solve": solved, "exact_match": acc}

    # solved beats unsolved even with a lower final score; fewer steps beats more
    assert best_of_sweep([run(3e-3, None, 99.0), run(1e-3, 800, 98.0)], "exact_match")["lr"] == 1e-3
    assert best_of_sweep([run(3e-3, 1500, 100.0), run(1e-3, 800, 99.0)], "exact_match")["lr"] == 1e-3
    # neither solved: the better score at the cap; a tie: the rate listed first
    assert best_of_sweep([run(3e-4, None, 40.0), run(1e-3, None, 60.0)], "exact_match")["lr"] == 1e-3
    assert best_of_sweep([run(3e-4, 500, 99.0), run(1e-3, 500, 99.0)], "exact_match")["lr"] == 3e-4


def test_each_architecture_has_its_own_rate_unless_one_is_given():
    from qkv.compare.probes import PROBE_LR, PROBE_LRS, probe_lr, rate_text

    for name, lr in PROBE_LRS.items():
        assert probe_lr(name) == lr and 0 < lr < 1
    assert probe_lr("no-such-model") == PROBE_LR
    assert [rate_text(x) for x in (1e-3, 3e-4, 5e-3, 0.1)] == ["1e-3", "3e-4", "5e-3", "1e-1"]


@pytest.mark.slow
def test_lr_sweep_trains_each_rate_and_keeps_the_run_that_solves_first(tmp_path, monkeypatch, capsys):
    """Two rates per (model, length): both are trained (their own run folders), the kept run is the one the
    (replaced) scorer says solves first, and every rate tried is listed with its outcome."""
    import qkv.compare.probes as probes

    real_score = probes._score

    def solved_only_at_the_low_rate(run_dir, spec, device):
        scores, examples, hyps = real_score(run_dir, spec, device)
        return {**scores, "token_accuracy": 99.5 if run_dir.name.endswith("lr0.001") else 10.0}, examples, hyps

    monkeypatch.setattr(probes, "_score", solved_only_at_the_low_rate)
    out = tmp_path / "sweep"
    args = _probe_args(out, "--lr", "3e-3,1e-3", "--until-solved")
    args[args.index("--models") + 1] = "gru,transformer"
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["lr"] == {"gru": [1e-3], "transformer": [1e-3]}
    for name in ("gru", "transformer"):
        run = results["runs"][name][0]
        assert run["lr"] == 1e-3 and run["steps_to_solve"] == 10 and run["steps"] == 10
        tried = [(e["lr"], e["steps_to_solve"], e["steps"]) for e in run["lr_sweep"]]
        assert tried == [(3e-3, None, 40), (1e-3, 10, 10)]
        assert (out / "runs" / f"copy-4-{name}-lr0.003" / "checkpoints").is_dir()
        assert (out / "runs" / f"copy-4-{name}-lr0.001" / "checkpoints").is_dir()
    printed = capsys.readouterr().out
    assert "learning-rate sweep" in printed and "10 *" in printed and "> 40 (10 %)" in printed


@pytest.mark.slow
def test_without_lr_each_model_trains_at_its_own_rate(tmp_path):
    from qkv.compare.probes import probe_lr
    from qkv.training.run import load_run

    out = tmp_path / "own"
    args = _probe_args(out, "--budget", "2steps", "--checks", "1")
    args[args.index("--models") + 1] = "gru,prefix-lm"
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    for name in ("gru", "prefix-lm"):
        assert results["lr"][name] == [probe_lr(name)]
        assert load_run(out / "runs" / f"copy-4-{name}", "last", device="cpu").config.optim.lr == probe_lr(name)
