"""Every recipe in configs/ is valid, builds its model at full size, and trains for 2 steps on capped data
(then evaluates once, so its metric code runs too)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from qkv.training.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
PROBES = {"copy", "reverse", "sort", "assoc-recall", "selective-copy", "listops"}


def test_there_are_recipes_for_every_task_and_family() -> None:
    names = {p.stem for p in CONFIGS}
    for task in ("g2p", "multi30k"):
        for model in ("transformer", "gru-attention", "gru", "lstm-attention"):
            assert f"{task}-{model}" in names
    assert {"tinyshakespeare-gpt", "ptb-gpt", "aeslc-transformer", "samsum-transformer"} <= names


@pytest.mark.parametrize("recipe", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_recipe_is_valid(recipe: Path) -> None:
    config = load_config(recipe)
    # the file is named after its model: multi30k-gru-attention, ptb-lstm (lstm-lm), ptb-lstm-sgd, ...
    assert config.model.name.removesuffix("-lm") in recipe.stem, (recipe.stem, config.model.name)


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("recipe", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_recipe_trains_two_steps(recipe: Path, tmp_path: Path) -> None:
    config = load_config(recipe)
    if config.task.name not in PROBES and not os.environ.get("QKV_DATA"):
        pytest.skip("QKV_DATA is not set (the recipe reads a real dataset)")
    from qkv.training.loop import train

    lm = config.task.name == "lm"
    overrides = [
        "training.max_steps=2",
        "training.device=cpu",
        "eval.every=2",
        "eval.max_examples=2",
        "eval.max_len=6",
        "eval.samples=1",
        f"eval.lm_tokens={config.training.context * 2}",
        f"task.max_train_examples={5000 if lm else 32}",
        f"task.max_eval_examples={1000 if lm else 4}",
        "training.batch_size=2",
        "training.max_tokens=300",  # small batches: this checks plumbing, not speed
    ]
    config = load_config(recipe, overrides)
    result = train(config, tmp_path / "run", progress=False)
    assert result["step"] == 2
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in log if r["split"] == "valid"]
    assert len(valid) == 1 and valid[0]["loss"] > 0
    assert (tmp_path / "run" / "checkpoints" / "last.safetensors").is_file()
