"""`qkv sweep`: the grid, how a point changes a recipe, the choice on validation data, resume, and
`qkv compare --recipes`."""

from __future__ import annotations

import json

import pytest

from qkv.cli import main
from qkv.compare.budget import Budget
from qkv.compare.study import Study, StudyOptions
from qkv.compare.sweep import (
    Sweep,
    SweepOptions,
    apply_point,
    best_points,
    grid_points,
    load_recipes,
    parse_grid,
    point_label,
    run_sweep,
)
from qkv.errors import UserError


def test_parse_grid_and_points_in_order():
    grid = parse_grid(" lr=1e-3, 3e-3 ; warmup=20,60 ")
    assert grid == {"lr": [0.001, 0.003], "warmup": [20.0, 60.0]}
    points = grid_points(grid)
    assert points == [
        {"lr": 0.001, "warmup": 20.0},
        {"lr": 0.001, "warmup": 60.0},
        {"lr": 0.003, "warmup": 20.0},
        {"lr": 0.003, "warmup": 60.0},
    ]
    assert point_label(points[1]) == "lr=0.001,warmup=60"


@pytest.mark.parametrize(
    "text, words",
    [
        ("depth=2", "KEY=V1"),
        ("lr", "KEY=V1"),
        ("lr=1e-3;lr=3e-3", "twice"),
        ("lr=fast", "numbers"),
        ("lr=0", "out of range"),
        ("width=64.5", "whole number"),
        ("dropout=1.0", "below 1"),
        ("lr=", "no values"),
        (";", "no axes"),
    ],
)
def test_parse_grid_errors_name_the_axis(text, words):
    with pytest.raises(UserError, match=words):
        parse_grid(text)


def _study(name: str, **options) -> Study:
    return Study(StudyOptions(models=[name], probes=False, scaling=False, progress=False, **options))


def test_apply_point_transformer():
    base = _study("transformer").run_config("transformer")
    ratio = base.model.d_ff // base.model.d_model
    changed = apply_point(base, {"lr": 0.01, "warmup": 7, "width": 96, "layers": 3, "dropout": 0.25})
    assert (changed.optim.lr, changed.schedule.warmup_steps, changed.model.dropout) == (0.01, 7, 0.25)
    assert (changed.model.d_model, changed.model.d_ff) == (96, 96 * ratio)
    assert (changed.model.n_encoder_layers, changed.model.n_decoder_layers) == (3, 3)
    assert base.optim.lr != 0.01 and base.model.d_model != 96  # the recipe given is not modified


def test_apply_point_prefix_lm_and_recurrent():
    prefix = apply_point(_study("prefix-lm").run_config("prefix-lm"), {"layers": 3})
    assert (prefix.model.n_encoder_layers, prefix.model.n_decoder_layers) == (0, 6)  # one stack, both halves
    gru = apply_point(_study("gru").run_config("gru"), {"width": 48, "layers": 2})
    assert (gru.model.d_model, gru.model.hidden_size, gru.model.n_rnn_layers) == (48, 48, 2)


def test_apply_point_width_must_split_into_heads():
    with pytest.raises(UserError, match="multiple of the 4 heads"):
        apply_point(_study("transformer").run_config("transformer"), {"width": 66})


def test_a_point_that_does_not_fit_a_model_is_refused_before_any_training(tmp_path):
    """prefix-lm's rotary positions need an even head dimension: width 36 over 4 heads (9) cannot work, and
    the sweep says so before it trains the other models."""
    options = SweepOptions(models=["gru", "prefix-lm"], grid={"width": [36]}, out=tmp_path / "s")
    with pytest.raises(UserError, match="width=36 does not fit model prefix-lm"):
        Sweep(options)
    assert not (tmp_path / "s").exists()


def test_grid_values_and_models_are_not_repeated():
    assert parse_grid("lr=1e-3,0.001,3e-3") == {"lr": [0.001, 0.003]}
    with pytest.raises(UserError, match="each model once"):
        Sweep(SweepOptions(models=["gru", "gru"]))


def test_a_diverging_setting_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    from qkv.compare import sweep as sweep_module
    from qkv.training.loop import TrainingDiverged

    trained = []

    def fake_train(config, run_dir, budget, **kwargs):
        trained.append(config.optim.lr)
        raise TrainingDiverged("loss is nan at step 3")

    monkeypatch.setattr(sweep_module, "train_with_budget", fake_train)
    options = SweepOptions(models=["gru"], grid={"lr": [0.1, 0.2]}, budget=Budget("steps", 5), out=tmp_path / "s")
    results = run_sweep(options, log=lambda line: None)
    assert trained == [0.1, 0.2]  # the second point still ran
    assert [r["valid"] for r in results["runs"]] == [None, None] and results["best"] == {}
    assert "diverged" in (tmp_path / "s" / "sweep.md").read_text()


def test_best_points_follow_the_metric_direction():
    runs = [
        {"model": "gru", "point": {"lr": 1.0}, "valid": 40.0},
        {"model": "gru", "point": {"lr": 2.0}, "valid": 30.0},
        {"model": "gru", "point": {"lr": 3.0}, "valid": 30.0},  # a tie keeps the earlier point
        {"model": "transformer", "point": {"lr": 1.0}, "valid": None},  # a failed run is never chosen
    ]
    assert best_points(runs, higher_is_better=False)["gru"]["point"] == {"lr": 2.0}
    assert best_points(runs, higher_is_better=True)["gru"]["point"] == {"lr": 1.0}
    assert "transformer" not in best_points(runs, higher_is_better=False)


def test_load_recipes_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_recipes(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not a readable"):
        load_recipes(bad)
    bad.write_text(json.dumps({"best": {"gru": {"point": {"heads": 2}}}}))
    with pytest.raises(UserError, match="best.gru.point"):
        load_recipes(bad)
    for point, words in [
        ({"lr": "fast"}, "must be a number"),
        ({"lr": None}, "must be a number"),
        ({"width": 2.5}, "whole number"),
        ({"lr": float("nan")}, "out of range"),
    ]:
        bad.write_text(json.dumps({"best": {"gru": {"point": point}}}))
        with pytest.raises(UserError, match=words):
            load_recipes(bad)
    bad.write_text(json.dumps({"best": {"grru": {"point": {"lr": 0.001}}}}))
    with pytest.raises(UserError, match="best.grru: not a model"):
        load_recipes(bad)
    bad.write_text(json.dumps({"task": "g2p", "best": {"gru": {"point": {"lr": 0.001}}}}))
    assert load_recipes(bad, task="g2p") == {"gru": {"lr": 0.001}}
    with pytest.raises(UserError, match="for --task g2p, not translation"):
        load_recipes(bad, task="translation")


def test_compare_trains_with_the_recipes(tmp_path):
    study = _study("gru", recipes={"gru": {"lr": 0.0005, "width": 40}}, recipes_source="s.json")
    config = study.run_config("gru")
    assert (config.optim.lr, config.model.hidden_size) == (0.0005, 40)
    assert study.results["config"]["recipes"] == {"source": "s.json", "points": {"gru": {"lr": 0.0005, "width": 40}}}


def test_recipes_chosen_at_another_budget_are_flagged_in_the_report():
    options = StudyOptions(
        models=["gru"],
        budget=Budget("seconds", 45.0),
        recipes={"gru": {"lr": 0.003}},
        recipes_source="s.json",
        recipes_budget={"kind": "seconds", "amount": 20.0},
        probes=False,
        scaling=False,
    )
    warnings = Study(options).results["warnings"]
    assert len(warnings) == 1 and "20.0 seconds" in warnings[0] and "45 s" in warnings[0]
    assert options.warnings == []  # the caller's options are left as they were
    options.recipes_budget = {"kind": "seconds", "amount": 45.0}
    assert Study(options).results["warnings"] == []


def test_sweep_end_to_end_chooses_on_validation_and_resumes(tmp_path):
    """Two learning rates for a tiny GRU: the one with the better validation WER is chosen (checked
    against the runs themselves), and a second run of the same sweep trains nothing."""
    options = SweepOptions(
        task="g2p",
        models=["gru"],
        grid={"lr": [1e-4, 1e-2], "width": [32]},
        budget=Budget("steps", 30),
        out=tmp_path / "sweep",
    )
    results = run_sweep(options, log=lambda line: None)
    runs = results["runs"]
    assert [r["point"] for r in runs] == [{"lr": 1e-4, "width": 32.0}, {"lr": 1e-2, "width": 32.0}]
    assert results["metric"] == "wer" and results["higher_is_better"] is False
    winner = min(runs, key=lambda r: r["valid"])
    assert results["best"]["gru"]["point"] == winner["point"]
    assert all(r["steps"] == 30 and r["params"] > 0 and r["flops_per_token"] > 0 for r in runs)
    saved = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert saved["best"] == results["best"]
    assert "**yes**" in (tmp_path / "sweep" / "sweep.md").read_text()
    assert load_recipes(tmp_path / "sweep" / "sweep.json") == {"gru": winner["point"]}

    lines: list[str] = []
    again = run_sweep(options, log=lines.append)
    assert lines[0].startswith("sweep: 0 runs")  # resumed: every point already done
    assert again["runs"] == runs


def test_cli_bad_grid_exits_2(capsys):
    assert main(["sweep", "--grid", "heads=2"]) == 2
    assert "--grid" in capsys.readouterr().err
    assert main(["compare", "--recipes", "/nonexistent/sweep.json"]) == 2
