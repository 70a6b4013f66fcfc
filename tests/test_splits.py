"""Split names are resolved in one place (``qkv.data.tasks.canonical_split``): aliases map to ``dev``, and a
split the task lacks is a clear error (exit 2) -- never a silent substitute."""

from __future__ import annotations

from pathlib import Path

import pytest

from qkv.cli import main
from qkv.data.tasks import canonical_split, get_task
from qkv.errors import UserError
from qkv.training.run import split_data, split_name

RECIPE = """
task: {{name: translation, options: {{files: {files}, tokenizer: word}}}}
model: {{name: transformer, d_model: 16, n_heads: 2, d_ff: 32, n_encoder_layers: 1, n_decoder_layers: 1,
        dropout: 0.0, max_len: 16}}
training: {{max_steps: 2, max_tokens: 64, log_every: 1}}
eval: {{every: 2, max_examples: 4, max_len: 4, samples: 0}}
"""


def _files(tmp_path: Path, splits: tuple[str, ...]) -> dict[str, list[str]]:
    out = {}
    for split in splits:
        src, tgt = tmp_path / f"{split}.src", tmp_path / f"{split}.tgt"
        src.write_text("".join(f"a{i} b{i}\n" for i in range(8)))
        tgt.write_text("".join(f"b{i} a{i}\n" for i in range(8)))
        out[split] = [str(src), str(tgt)]
    return out


def test_aliases_name_dev_and_canonical_names_pass_through() -> None:
    for alias in ("dev", "val", "valid", "validation"):
        assert canonical_split(alias) == "dev"
    assert [canonical_split(s) for s in ("train", "test")] == ["train", "test"]


def test_a_missing_split_is_an_error_never_a_substitute(tmp_path: Path) -> None:
    task = get_task("translation", files=_files(tmp_path, ("train", "test")), tokenizer="word")
    assert split_name(task, "test") == "test"
    with pytest.raises(UserError, match=r"^task 'translation' has no 'dev' split \(it has: train, test\)$"):
        split_name(task, "valid")  # used to fall back to test
    with pytest.raises(UserError, match=r"^task 'translation' has no 'dev' split"):
        split_data(task, "valid", None)
    dev_only = get_task("translation", files=_files(tmp_path, ("train", "dev")), tokenizer="word")
    with pytest.raises(UserError, match=r"^task 'translation' has no 'test' split \(it has: train, dev\)$"):
        split_name(dev_only, "test")  # used to fall back to dev


def test_train_without_dev_and_evaluate_without_test_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    no_dev = tmp_path / "no_dev.yaml"
    no_dev.write_text(RECIPE.format(files=_files(tmp_path, ("train", "test"))))
    assert main(["train", str(no_dev), "--out", str(tmp_path / "r1"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["qkv train: error: task 'translation' has no 'dev' split (it has: train, test)"]

    no_test = tmp_path / "no_test.yaml"
    no_test.write_text(RECIPE.format(files=_files(tmp_path, ("train", "dev"))))
    run = tmp_path / "r2"
    assert main(["train", str(no_test), "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--split", "test"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["qkv evaluate: error: task 'translation' has no 'test' split (it has: train, dev)"]
    assert main(["evaluate", str(run), "--split", "valid"]) == 0
    assert (run / "eval" / "dev-best-beam1.json").is_file()
