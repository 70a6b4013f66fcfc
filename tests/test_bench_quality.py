"""`qkv bench quality`: stops at the first evaluation that reaches the target and saves the time it took;
says so when the target is not reached (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qkv.bench.quality import parse_target, reached
from qkv.cli import main
from qkv.errors import UserError

RECIPE = """
task: {name: lm, options: {dataset: DATASET}}
model: {name: gpt, d_model: 16, n_heads: 2, d_ff: 32, n_decoder_layers: 1, dropout: 0.0, max_len: 16,
        positions: learned}
optim: {lr: 0.01, label_smoothing: 0.0}
schedule: {kind: constant, warmup_steps: 0}
training: {max_steps: 12, batch_size: 4, context: 16, device: cpu, log_every: 2}
eval: {every: 4, lm_tokens: 64, samples: 0}
"""


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    text = tmp_path / "text.txt"
    text.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(100)))
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.replace("DATASET", str(text)))
    return path


def test_quality_stops_at_the_target(recipe: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = tmp_path / "run"
    assert main(["bench", "quality", str(recipe), "--target", "loss=50", "--run", str(run), "--out", str(out)]) == 0
    result = json.loads((out / "quality.json").read_text())
    assert result["reached"] and result["step"] == 4  # the first evaluation already beats a loss of 50
    assert result["seconds_to_target"] > 0 and result["last_log_step"] == 4 and result["tokens_at_last_log"] == 256
    assert [e["step"] for e in result["evaluations"]] == [4]
    assert result["target"] == {"metric": "loss", "value": 50.0, "higher_is_better": False}
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 4  # training stopped there, not at max_steps


def test_quality_reports_a_target_not_reached(recipe: Path, tmp_path: Path) -> None:
    assert main(["bench", "quality", str(recipe), "--target", "loss=0.001", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "quality.json").read_text())
    assert not result["reached"] and result["seconds_to_target"] is None
    assert [e["step"] for e in result["evaluations"]] == [4, 8, 12]


def test_targets_parse_with_their_direction(capsys, recipe: Path) -> None:
    assert parse_target("bleu=35") == ("bleu", 35.0, True)
    assert parse_target("wer=30") == ("wer", 30.0, False)
    assert reached(35.1, 35, True) and not reached(29.0, 30, True) and reached(1.79, 1.80, False)
    with pytest.raises(UserError):
        parse_target("bleu")
    assert main(["bench", "quality", str(recipe), "--target", "bleu=30"]) == 2  # an LM reports no BLEU
    assert "bleu" in capsys.readouterr().err
