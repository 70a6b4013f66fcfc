"""Nothing silently wrong: a dataset comes from one folder, `--resume` does the right thing for a finished,
early-stopped, diverged or never-checkpointed run, and the "last good checkpoint" after a NaN is good.

Each case is listed in docs/reliability.md with the name of its test. Runs are tiny (a copy probe, a
16-wide Transformer, 12 steps) and go through `qkv train` in this process; a crash is simulated by
raising, from inside the loop, an exception nothing catches -- the run directory is then what `kill -9`
at that moment leaves. "Equal" means every tensor of the final checkpoint (weights, AdamW moments, RNG
and data state) is `torch.equal` to the one of a run that was never interrupted.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from pathlib import Path

import pytest
import torch

from qkv.cli import main
from qkv.data import get_task
from qkv.errors import UserError
from qkv.training import checkpoint as ckpt
from qkv.training import loop
from qkv.training.config import TrainingConfig
from qkv.training.metrics_log import read_metrics
from test_training_resume import _step, _weights_and_optimizer

RECIPE = """
task: {name: copy, options: {length: 4, num_examples: 64, num_eval_examples: 4, vocab_size: 5}}
model: {name: transformer, d_model: 16, n_heads: 2, d_ff: 32, n_encoder_layers: 1, n_decoder_layers: 1,
        dropout: 0.1, max_len: 16}
schedule: {kind: noam, warmup_steps: 4}
training: {max_steps: 12, max_tokens: 64, log_every: 1, save_every_seconds: 0}
eval: {every: 6, max_examples: 2, max_len: 6, samples: 1}
"""


class Killed(BaseException):
    """Stands for `kill -9`: nothing in qkv catches it, nothing is saved on the way out."""


def train(capsys: pytest.CaptureFixture, recipe: Path, run: Path, *args: str) -> tuple[int, str, dict | None]:
    """`qkv train RECIPE --out RUN ARGS` in this process: (exit status, stderr, the JSON summary or None)."""
    rc = main(["train", str(recipe), "--out", str(run), "--no-progress", *args])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return rc, err, json.loads(lines[-1]) if rc == 0 and lines else None


def crash_at_step(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """Make the forward pass of optimizer step ``step`` die (the recipe has one micro-batch per step)."""
    real, calls = loop._loss_sum, {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == step:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "_loss_sum", dying)


def assert_same_final_state(a: Path, b: Path) -> None:
    x, y = _weights_and_optimizer(a), _weights_and_optimizer(b)
    assert x.keys() == y.keys() and any(k.startswith("_train.optim.") for k in x)
    for key in x:
        assert torch.equal(x[key], y[key]), key


def train_steps(run: Path) -> list[int]:
    return [r["step"] for r in read_metrics(run) if r["split"] == "train"]


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(RECIPE)
    return path


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: RECIPE trained to the end without interruption."""
    folder = tmp_path_factory.mktemp("straight")
    (folder / "tiny.yaml").write_text(RECIPE)
    assert main(["train", str(folder / "tiny.yaml"), "--out", str(folder / "run"), "--no-progress"]) == 0
    return folder / "run"


# --- a dataset comes from exactly one place ------------------------------------------------------


@pytest.fixture
def default_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $QKV_DATA (offline, with a private cache) for the test to fill."""
    root = tmp_path / "default"
    root.mkdir()
    monkeypatch.setenv("QKV_DATA", str(root))
    monkeypatch.setenv("QKV_OFFLINE", "1")
    monkeypatch.setenv("QKV_CACHE", str(tmp_path / "cache"))
    return root


def samsum_rows(tag: str) -> str:
    return "id,dialogue,summary\n" + "".join(f'{i},"A: {tag} {i}",{tag} summary {i}\n' for i in range(3))


def test_data_dir_samsum_csv_wins_over_default_csv_gz(tmp_path: Path, default_data: Path) -> None:
    mine = tmp_path / "mine"
    for name in ("train", "validation", "test"):
        (default_data / "samsum").mkdir(exist_ok=True)
        (default_data / "samsum" / f"{name}.csv.gz").write_bytes(gzip.compress(samsum_rows("DEFAULT").encode()))
        (mine / "samsum").mkdir(parents=True, exist_ok=True)
        (mine / "samsum" / f"{name}.csv").write_text(samsum_rows("MINE"))
    task = get_task("summarization", dataset="samsum", data_dir=str(mine))
    assert [e.tgt for e in task.examples("train")] == ["MINE summary 0", "MINE summary 1", "MINE summary 2"]
    assert get_task("summarization", dataset="samsum").examples("test")[0].tgt == "DEFAULT summary 0"

    (mine / "samsum" / "train.csv").unlink()  # a partial folder is an error, never completed from $QKV_DATA
    with pytest.raises(UserError) as err:
        get_task("summarization", dataset="samsum", data_dir=str(mine)).examples("train")
    message = str(err.value)
    assert message.startswith(f"missing data file samsum/train.csv / train.csv.gz in {mine / 'samsum'} (data_dir)")
    assert "that folder holds test.csv, validation.csv" in message and "put train.csv there" in message


def test_two_forms_of_one_split_are_an_error(tmp_path: Path, default_data: Path) -> None:
    folder = tmp_path / "mine" / "samsum"
    folder.mkdir(parents=True)
    (folder / "train.csv").write_text(samsum_rows("A"))
    (folder / "train.csv.gz").write_bytes(gzip.compress(samsum_rows("B").encode()))
    with pytest.raises(UserError, match=rf"{re.escape(str(folder))}: both train\.csv and train\.csv\.gz are present"):
        get_task("summarization", dataset="samsum", data_dir=str(tmp_path / "mine")).examples("train")


def multi30k(root: Path, names: list[str], tag: str) -> None:
    (root / "multi30k").mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / "multi30k" / name).write_bytes(gzip.compress(f"{tag} {name} 1\n{tag} {name} 2\n".encode()))


def test_multi30k_half_a_pair_in_data_dir_is_an_error(tmp_path: Path, default_data: Path) -> None:
    multi30k(
        default_data,
        [f"{s}.{lang}.gz" for s in ("train", "val", "test_2016_flickr") for lang in ("de", "en")],
        "DEFAULT",
    )
    mine = tmp_path / "mine"
    multi30k(mine, ["train.de.gz", "train.en.gz", "val.de.gz"], "MINE")  # val.en.gz forgotten
    task = get_task("translation", data_dir=str(mine))
    first = task.examples("train")[0]
    assert (first.src, first.tgt) == ("MINE train.de.gz 1", "MINE train.en.gz 1")
    with pytest.raises(
        UserError,
        match=r"missing data file multi30k/val\.en\.gz in .*mine/multi30k \(data_dir\); "
        r"that folder holds train\.de\.gz, train\.en\.gz, val\.de\.gz",
    ):
        task.examples("dev")


def test_partial_default_folder_is_not_completed_from_the_cache(tmp_path: Path, default_data: Path) -> None:
    (default_data / "ptb").mkdir()
    (default_data / "ptb" / "ptb.train.txt").write_text(" default words \n")
    (tmp_path / "cache" / "ptb").mkdir(parents=True)
    for name in ("train", "valid", "test"):
        (tmp_path / "cache" / "ptb" / f"ptb.{name}.txt").write_text(" cached words \n")
    task = get_task("lm", dataset="ptb")
    assert task.text("train") == " default words \n"
    with pytest.raises(
        UserError,
        match=rf"missing data file ptb/ptb\.valid\.txt in {re.escape(str(default_data))}"
        r"/ptb \(\$QKV_DATA\); that folder holds ptb\.train\.txt",
    ):
        task.text("dev")


def test_train_with_a_partial_data_dir_exits_2_naming_the_file(
    tmp_path: Path, default_data: Path, capsys: pytest.CaptureFixture
) -> None:
    multi30k(
        default_data,
        [f"{s}.{lang}.gz" for s in ("train", "val", "test_2016_flickr") for lang in ("de", "en")],
        "DEFAULT",
    )
    mine = tmp_path / "mine"
    multi30k(mine, ["train.de.gz", "train.en.gz"], "MINE")
    recipe = tmp_path / "mt.yaml"
    recipe.write_text(
        RECIPE.replace(
            "{name: copy, options: {length: 4, num_examples: 64, num_eval_examples: 4, vocab_size: 5}}",
            f"{{name: translation, data_dir: {mine}, options: {{tokenizer: word}}}}",
        )
    )
    rc, err, _ = train(capsys, recipe, tmp_path / "run")
    assert rc == 2 and "Traceback" not in err
    assert err.startswith(f"qkv train: error: missing data file multi30k/val.de.gz in {mine / 'multi30k'} (data_dir)")
    # `qkv data` agrees: the dataset is missing from that folder, whatever $QKV_DATA holds
    assert main(["data", "--data-dir", str(mine), "--json", "--no-count"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert not rows["multi30k"]["present"]


# --- --resume of a complete run does nothing -----------------------------------------------------


def test_resume_of_a_finished_run_does_nothing(recipe: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    assert train(capsys, recipe, run)[0] == 0
    before = {p.name: p.read_bytes() for p in [*run.glob("*.*"), *run.glob("checkpoints/*")]}
    assert ckpt.load_state(run / "checkpoints" / "last.safetensors")["finished"] == "max_steps"

    rc, err, summary = train(capsys, recipe, run, "--resume")
    assert rc == 0 and summary["step"] == 12 and summary["complete"] == "step 12 of max_steps 12"
    assert f"{run}: the run is complete (step 12 of max_steps 12); --resume has nothing to do" in err
    assert {p.name: p.read_bytes() for p in [*run.glob("*.*"), *run.glob("checkpoints/*")]} == before

    rc, _, summary = train(capsys, recipe, run, "--resume", "--max-steps", "14")  # asked for more: trains on
    assert rc == 0 and summary["step"] == 14 and _step(run) == 14 and train_steps(run) == list(range(1, 15))


def test_resume_of_an_early_stopped_run_does_nothing(
    recipe: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # lr 1e-9 learns nothing: the 2nd evaluation (step 4) is no better than the 1st, patience 1 stops there
    run, stalled = tmp_path / "run", ["--set", "optim.lr=1e-9", "--set", "eval.every=2", "--set", "eval.patience=1"]
    rc, err, summary = train(capsys, recipe, run, *stalled)
    assert rc == 0 and summary["step"] == 4
    state = ckpt.load_state(run / "checkpoints" / "last.safetensors")
    assert state["step"] == 4 and state["finished"] == "early_stop"
    before = (run / "checkpoints" / "last.safetensors").read_bytes()

    rc, err, summary = train(capsys, recipe, run, "--resume")
    assert rc == 0 and summary["step"] == 4
    assert "the run is complete (early stopped at step 4: no improvement in 1 evaluations)" in err
    assert (run / "checkpoints" / "last.safetensors").read_bytes() == before and train_steps(run) == [1, 2, 3, 4]


# --- after a NaN, the named checkpoint is good -----------------------------------------------------


def test_nan_names_a_good_checkpoint_and_resuming_it_with_a_lower_lr_works(
    recipe: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    # four sound steps, then a learning rate of 1e32 (~1e30 after the noam schedule's scaling): Adam moves every
    # weight by about the learning rate, so the step-5 weights are ~1e30 -- finite, saved, and bad: the next
    # forward pass overflows float32 on any machine
    assert train(capsys, recipe, run, "--max-steps", "4", "--set", "training.save_every=1")[0] == 0
    rc, err, _ = train(capsys, recipe, run, "--resume", "--max-steps", "12", "--set", "optim.lr=1e32")
    assert rc == 2 and "Traceback" not in err
    found = re.search(r"error: .*?step (\d+).*training stopped\. Last good checkpoint: (\S+) \(step (\d+)\)", err)
    assert found, err
    failed, path, good = int(found[1]), Path(found[2]), int(found[3])
    assert path == run / "checkpoints" / "last.safetensors" and good < failed - 1  # the step just before was bad
    assert "--resume --set optim.lr=LOWER" in err
    weights, _, state = ckpt.load_checkpoint(path)
    assert state["step"] == good and all(torch.isfinite(w).all() for w in weights.values())
    next_loss = next(r["loss"] for r in read_metrics(run) if r["step"] == good + 1)
    assert math.isfinite(next_loss)  # the step computed from the kept weights had a finite loss

    rc, err, summary = train(capsys, recipe, run, "--resume", "--set", "optim.lr=1e-3")
    assert rc == 0 and summary["step"] == 12, err
    log = [r for r in read_metrics(run) if r["split"] == "train"]
    assert [r["step"] for r in log] == list(range(1, 13))
    assert log[good]["loss"] == next_loss  # resumed exactly at the kept checkpoint: same weights, batch, dropout
    assert all(math.isfinite(r["loss"]) for r in log)
    final, _, _ = ckpt.load_checkpoint(path)
    assert all(torch.isfinite(w).all() for w in final.values())


def test_nan_before_any_good_checkpoint_restarts_from_the_beginning(
    recipe: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run, calm = tmp_path / "run", tmp_path / "calm"
    # lr 1e32 (~1e30 after noam's scaling): the first step's weights are ~1e30, the second step overflows
    # float32 on any machine
    rc, err, _ = train(capsys, recipe, run, "--set", "optim.lr=1e32", "--set", "training.save_every=1")
    assert rc == 2 and "No good checkpoint yet" in err and "starts again from the beginning" in err
    assert not (run / "checkpoints" / "last.safetensors").exists()
    assert (run / "checkpoints" / "diverged.safetensors").exists()  # set aside, for inspection

    rc, err, _ = train(capsys, recipe, run, "--resume", "--set", "optim.lr=1e-3")
    assert rc == 0 and "has no checkpoint yet" in err and "starting it from the beginning" in err
    assert train(capsys, recipe, calm, "--set", "training.save_every=1", "--set", "optim.lr=1e-3")[0] == 0
    assert_same_final_state(run, calm)
    assert train_steps(run) == list(range(1, 13))


def test_a_nan_that_resuming_does_not_repeat_keeps_the_newest_checkpoint(
    recipe: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a NaN injected at step 5 only (as from a flaky device): replaying step 5 from last (step 4) is finite
    real, calls = loop._loss_sum, {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs) * (math.nan if calls["n"] == 5 else 1.0)

    monkeypatch.setattr(loop, "_loss_sum", flaky)
    rc, err, _ = train(capsys, recipe, tmp_path / "run", "--set", "training.save_every=1")
    assert rc == 2 and "loss is nan at step 5" in err and "last.safetensors (step 4)" in err


# --- --resume with no checkpoint yet; saves by wall-clock --------------------------------------------


def test_resume_before_the_first_checkpoint_equals_an_uninterrupted_run(
    recipe: Path, tmp_path: Path, straight: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    crash_at_step(monkeypatch, 5)  # the first checkpoint would be written at the evaluation of step 6
    with pytest.raises(Killed):
        train(capsys, recipe, run)
    capsys.readouterr()
    assert not (run / "checkpoints" / "last.safetensors").exists() and train_steps(run) == [1, 2, 3, 4]
    monkeypatch.undo()

    rc, err, summary = train(capsys, recipe, run, "--resume")
    assert rc == 0 and summary["step"] == 12
    assert f"--resume: {run} has no checkpoint yet (the run stopped before its first save); starting it" in err
    assert_same_final_state(run, straight)
    assert train_steps(run) == list(range(1, 13))  # one history, no line of the dead attempt left
    assert (run / "samples.txt").read_text() == (straight / "samples.txt").read_text()


def test_wall_clock_saves_bound_what_a_crash_loses(
    recipe: Path, tmp_path: Path, straight: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert TrainingConfig().save_every_seconds == 300  # by default at most 5 minutes of work are lost
    run = tmp_path / "run"
    crash_at_step(monkeypatch, 5)
    with pytest.raises(Killed):  # a save is due after every step: more than 1 microsecond has passed
        train(capsys, recipe, run, "--set", "training.save_every_seconds=0.000001")
    capsys.readouterr()
    assert _step(run) == 4  # saved by the clock: no evaluation and no save_every before step 6
    monkeypatch.undo()

    rc, err, summary = train(capsys, recipe, run, "--resume")
    assert rc == 0 and summary["step"] == 12 and "no checkpoint" not in err
    assert_same_final_state(run, straight)


@pytest.mark.parametrize("value", ["-1", ".nan"])
def test_save_every_seconds_is_checked(recipe: Path, tmp_path: Path, capsys: pytest.CaptureFixture, value: str):
    rc, err, _ = train(capsys, recipe, tmp_path / "run", "--set", f"training.save_every_seconds={value}")
    assert rc == 2 and "training.save_every_seconds" in err and "must be >= 0" in err
