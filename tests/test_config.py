"""Recipes are typed and validated: every mistake names the key, the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from qkv.errors import UserError
from qkv.training.config import Config, apply_overrides, from_dict, load_config, save_config, to_dict

GOOD = """\
task:
  name: g2p
model:
  name: transformer
  d_model: 64
  n_heads: 4
optim:
  lr: 0.001
training:
  max_steps: 10
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def _error(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(UserError) as info:
        load_config(path, overrides)
    return str(info.value)


def test_good_recipe_loads_with_types(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD))
    assert config.model.d_model == 64 and config.training.max_steps == 10
    assert isinstance(config.optim.lr, float) and config.optim.lr == 0.001
    assert config.schedule.kind == "noam"  # untouched defaults stay


def test_unknown_key_names_path_file_line_and_suggestion(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("  max_steps: 10", "  max_stpes: 10"))
    message = _error(path)
    assert f"{path}:10" in message  # line 10 holds the misspelt key
    assert "training.max_stpes" in message and "training.max_steps" in message


def test_unknown_section(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, GOOD + "optimiser:\n  lr: 1\n"))
    assert "'optimiser'" in message and "optim" in message and ":11" in message


def test_wrong_type_names_key(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, GOOD.replace("max_steps: 10", "max_steps: ten")))
    assert "training.max_steps" in message and "int" in message and ":10" in message
    message = _error(_write(tmp_path, GOOD.replace("max_steps: 10", "max_steps: 1.5")))
    assert "training.max_steps" in message
    message = _error(_write(tmp_path, GOOD.replace("lr: 0.001", "lr: true")))  # bool is not a float
    assert "optim.lr" in message and ":8" in message


def test_impossible_values_name_key(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, GOOD.replace("n_heads: 4", "n_heads: 5")))
    assert "model.d_model" in message and "model.n_heads" in message and "divisible" in message
    assert f"{tmp_path / 'recipe.yaml'}:" in message
    assert "optim.lr" in _error(_write(tmp_path, GOOD.replace("lr: 0.001", "lr: -0.1")))
    assert "training.max_steps" in _error(_write(tmp_path, GOOD.replace("max_steps: 10", "max_steps: 0")))
    message = _error(_write(tmp_path, GOOD + "schedule:\n  kind: linear\n"))
    assert "schedule.kind" in message and "'noam'" in message


def test_overrides_are_yaml_scalars_and_checked(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    config = load_config(
        path,
        [
            "optim.lr=3e-4",
            "training.compile=true",
            "task.max_train_examples=null",
            "model.name=gru-attention",
            "optim.betas=[0.9, 0.99]",
        ],
    )
    assert config.optim.lr == 3e-4 and config.training.compile is True
    assert config.task.max_train_examples is None and config.model.name == "gru-attention"
    assert config.optim.betas == [0.9, 0.99]
    message = _error(path, ["training.max_step=3"])
    assert "--set training.max_step=3" in message and "training.max_steps" in message
    assert "--set model.n_heads=3" in _error(path, ["model.n_heads=3"])
    with pytest.raises(UserError, match="KEY=VALUE"):
        load_config(path, ["training.max_steps"])


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD), ["eval.beam=4"])
    save_config(config, tmp_path / "resolved.yaml")
    again = load_config(tmp_path / "resolved.yaml")
    assert again == config
    assert list(yaml.safe_load((tmp_path / "resolved.yaml").read_text())) == [
        "task",
        "model",
        "optim",
        "schedule",
        "training",
        "eval",
    ]


def test_from_dict_defaults_and_apply_overrides() -> None:
    data: dict = {}
    apply_overrides(data, ["training.seed=7", "model.d_model=128"])
    assert data == {"training": {"seed": 7}, "model": {"d_model": 128}}
    config = from_dict(data)
    assert config.training.seed == 7 and config == from_dict(to_dict(config))
    assert isinstance(Config().model.d_model, int)


def test_cli_prints_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from qkv.cli import main

    path = _write(tmp_path, GOOD.replace("d_model: 64", "d_modle: 64"))
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "model.d_modle" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
