"""Defects found by a safety review, one test (or a few) each; every one failed before its fix.

The standard: training can be killed at any moment and resumed; run files are written atomically; bad input
is one clear line naming the file, line or key (exit 2, :class:`qkv.errors.UserError`), never a traceback and
never a silently wrong result. Runs are the tiny copy-probe run of tests/test_reliability.py (12 steps, an
evaluation at steps 6 and 12), trained in this process; a kill is simulated by raising, from inside the loop,
an exception nothing catches (``Killed``), so the run directory is what ``kill -9`` at that moment leaves.
A full disk is simulated with the file-size limit (``RLIMIT_FSIZE``): a write past it fails with EFBIG.
"""

from __future__ import annotations

import json
import resource
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from qkv.cli import main
from qkv.data import get_task
from qkv.data.tokenizers import CharTokenizer, load_tokenizer, train_tokenizer
from qkv.errors import UserError
from qkv.training import checkpoint as ckpt
from qkv.training.config import Config, from_dict, load_config, save_config, to_dict
from qkv.training.metrics_log import MetricsLog, read_metrics
from qkv.training.run import load_run, split_examples, split_text
from test_reliability import RECIPE, Killed, assert_same_final_state, crash_at_step, train, train_steps
from test_reliability import straight as _straight  # noqa: F401 (its fixture, as `_straight`)

AVERAGED = ["--set", "training.average_last=3", "--set", "training.save_every=2"]  # scheduled saves: 2, 4, ..., 12


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(RECIPE)
    return path


@pytest.fixture(scope="module")
def straight(request: pytest.FixtureRequest) -> Path:
    """RECIPE trained to the end without interruption (never changed)."""
    return request.getfixturevalue("_straight")


@pytest.fixture(scope="module")
def averaged_straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RECIPE with AVERAGED, trained to the end without interruption: averaged = mean of steps 8, 10, 12."""
    folder = tmp_path_factory.mktemp("averaged")
    (folder / "tiny.yaml").write_text(RECIPE)
    assert main(["train", str(folder / "tiny.yaml"), "--out", str(folder / "run"), "--no-progress", *AVERAGED]) == 0
    return folder / "run"


def write_recipe(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def config_error(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(UserError) as info:
        load_config(path, overrides)
    return str(info.value)


# --- 1. a refused --resume leaves the run as it was ---------------------------------------------------------


def test_a_refused_resume_does_not_rewrite_the_runs_config(
    recipe: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    assert train(capsys, recipe, run, "--max-steps", "6")[0] == 0
    saved = (run / "config.yaml").read_bytes()
    tokenizer = (run / "tokenizer" / "tgt" / "qkv_tokenizer.json").read_bytes()

    rc, err, _ = train(capsys, run, run, "--resume", "--max-steps", "12", "--set", "optim.name=sgd")
    assert rc == 2 and "the run trained with AdamW, this config asks for SGD (optim.name)" in err
    assert (run / "config.yaml").read_bytes() == saved  # not the refused optim.name (nor max_steps)
    assert (run / "tokenizer" / "tgt" / "qkv_tokenizer.json").read_bytes() == tokenizer

    rc, err, summary = train(capsys, run, run, "--resume", "--max-steps", "12")  # the run's own config: works
    assert rc == 0 and summary is not None and summary["step"] == 12, err
    assert load_config(run / "config.yaml").training.max_steps == 12  # an accepted resume records its settings


# --- 2. run files are written atomically ---------------------------------------------------------------------


@contextmanager
def disk_full_after(limit: int) -> Iterator[None]:
    """Writes that would make a file longer than ``limit`` bytes fail (EFBIG), as on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (else the signal kills the process)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)


def test_save_config_on_a_full_disk_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    save_config(Config(), path)
    before = path.read_bytes()
    changed = from_dict({"training": {"max_steps": 7}})
    with pytest.raises(OSError), disk_full_after(len(before) // 2):
        save_config(changed, path)
    assert path.read_bytes() == before  # in place, it was cut at half: still YAML, its last sections defaulted
    assert to_dict(load_config(path)) == to_dict(Config())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]  # no temporary file left behind


def test_tokenizer_save_on_a_full_disk_keeps_the_old_files(tmp_path: Path) -> None:
    chars = tmp_path / "char"
    CharTokenizer.train(["abc"]).save(chars)
    before = (chars / "qkv_tokenizer.json").read_bytes()
    with pytest.raises(OSError), disk_full_after(len(before) // 2):
        CharTokenizer.train(["abcdefghijklmnopqrstuvwxyz"]).save(chars)
    assert (chars / "qkv_tokenizer.json").read_bytes() == before
    assert load_tokenizer(chars).tokens[-3:] == ["a", "b", "c"]

    bpe = tmp_path / "bpe"
    train_tokenizer("bpe", ["the cat sat on the mat"] * 20, 300).save(bpe)
    before = (bpe / "tokenizer.json").read_bytes()
    with pytest.raises(Exception), disk_full_after(len(before) // 2):  # noqa: B017 (the Rust library's own error)
        train_tokenizer("bpe", ["a quite different text, with other words"] * 20, 300).save(bpe)
    assert (bpe / "tokenizer.json").read_bytes() == before
    assert load_tokenizer(bpe).encode("the cat") == train_tokenizer("bpe", ["the cat sat on the mat"] * 20, 300).encode(
        "the cat"
    )


def test_metrics_log_truncation_on_a_full_disk_keeps_the_old_log(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "split": "train", "loss": 1.0}) + "\n" for s in range(1, 13)))
    before = path.read_bytes()
    with pytest.raises(OSError), disk_full_after(10):  # the kept six lines are ~40 bytes each
        MetricsLog(tmp_path, truncate_after=6)
    assert path.read_bytes() == before  # in place: 10 bytes of a torn line, which readers drop -- no history
    assert [r["step"] for r in read_metrics(tmp_path)] == list(range(1, 13))


def test_a_runs_config_cut_short_is_an_error_not_defaults(straight: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(straight, tmp_path / "run"))
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text[: text.index("\neval:")] + "\n")  # parses; eval would default
    with pytest.raises(UserError, match=r"config\.yaml: lacks the section\(s\) eval"):
        load_run(run)


# --- 3. the step-K checkpoint for the average is never missing --------------------------------------------


def kill_between_the_two_saves_of(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """Die after the first and before the second of the two files a scheduled save of ``step`` writes
    (``last`` and ``step-K``), whichever order the loop writes them in."""
    real, written = ckpt.save_checkpoint, []

    def saving(path, weights, tensors=None, state=None, vocabulary=None):
        name = Path(path).name
        ours = name == f"step-{step:08d}.safetensors" or (name == "last.safetensors" and state["step"] == step)
        if ours and written:
            raise Killed
        real(path, weights, tensors, state, vocabulary)
        if ours:
            written.append(name)

    monkeypatch.setattr(ckpt, "save_checkpoint", saving)


def step_files(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob("step-*.safetensors"))


def assert_same_average(run: Path, reference: Path) -> None:
    a = load_file(str(run / "checkpoints" / "averaged.safetensors"))
    b = load_file(str(reference / "checkpoints" / "averaged.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_kill_inside_a_save_leaves_the_average_of_the_same_steps(
    recipe: Path,
    tmp_path: Path,
    averaged_straight: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = tmp_path / "run"
    kill_between_the_two_saves_of(monkeypatch, 8)
    with pytest.raises(Killed):
        train(capsys, recipe, run, *AVERAGED)
    capsys.readouterr()
    monkeypatch.undo()
    rc, err, summary = train(capsys, recipe, run, "--resume")
    assert rc == 0 and summary is not None and summary["step"] == 12, err
    # the mean of steps 8, 10 and 12, as uninterrupted -- not of 6, 10, 12 (last at 8 with no step-8)
    assert step_files(run) == step_files(averaged_straight) == [f"step-{k:08d}.safetensors" for k in (8, 10, 12)]
    assert_same_average(run, averaged_straight)
    assert_same_final_state(run, averaged_straight)


def test_resume_recreates_a_missing_step_checkpoint_of_last(
    recipe: Path,
    tmp_path: Path,
    averaged_straight: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = tmp_path / "run"
    crash_at_step(monkeypatch, 9)  # last is the scheduled save of step 8
    with pytest.raises(Killed):
        train(capsys, recipe, run, *AVERAGED)
    capsys.readouterr()
    monkeypatch.undo()
    (run / "checkpoints" / "step-00000008.safetensors").unlink()  # what a kill inside an older qkv's save left
    rc, err, _ = train(capsys, recipe, run, "--resume")
    assert rc == 0, err
    assert step_files(run) == [f"step-{k:08d}.safetensors" for k in (8, 10, 12)]
    assert_same_average(run, averaged_straight)
    assert f"wrote {run / 'checkpoints' / 'step-00000008.safetensors'} from" in err


# --- 4. an empty evaluation split is an error, not a score of zero -----------------------------------------


def test_a_probe_needs_evaluation_examples(recipe: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(UserError, match="copy: num_eval_examples must be at least 1, got 0"):
        get_task("copy", num_eval_examples=0)
    with pytest.raises(UserError, match="copy: num_examples must be at least 1, got -3"):
        get_task("copy", num_examples=-3)
    rc, err, _ = train(capsys, recipe, tmp_path / "run", "--set", "task.options.num_eval_examples=0")
    assert rc == 2 and "num_eval_examples must be at least 1" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # refused before any training


class _EmptyLM:
    """A language-modeling task whose dev text is empty."""

    name, kind = "lm", "lm"

    def splits(self) -> tuple[str, ...]:
        return ("train", "dev", "test")

    def text(self, split: str) -> str:
        return "some text" if split == "train" else ""


def test_an_empty_split_names_the_task_and_the_split(straight: Path) -> None:
    task = get_task("copy", num_eval_examples=4)
    task._cache["test"] = []  # a test split that came out empty
    with pytest.raises(UserError, match="task copy: the test split is empty"):
        split_examples(task, "test", None)
    with pytest.raises(UserError, match="task lm: the dev split is empty"):
        split_text(_EmptyLM(), "valid", None)  # type: ignore[arg-type]

    from qkv.training.evaluate import evaluate_seq2seq

    run = load_run(straight)
    with pytest.raises(UserError, match="task copy: no examples to evaluate"):
        evaluate_seq2seq(run.model, task, [], run.src_tok, run.tgt_tok)


# --- 5. lengths beyond a learned position table are config errors -------------------------------------------


def test_lm_context_longer_than_the_learned_positions_is_a_config_error(tmp_path: Path) -> None:
    text = "task: {name: lm}\nmodel: {name: gpt, positions: learned, max_len: 64}\ntraining: {context: 64}\n"
    path = write_recipe(tmp_path, text)
    assert load_config(path).training.context == 64  # 64 inputs read positions 0..63: they fit
    err = config_error(path, ["training.context=65"])  # position 64 has no row
    assert err.startswith("--set training.context=65: training.context: must be <= model.max_len (64")
    assert "got 65" in err


def test_eval_max_len_longer_than_the_learned_positions_is_a_config_error(
    recipe: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    text = "model: {name: transformer, positions: learned, max_len: 16}\neval: {max_len: 16}\n"
    path = write_recipe(tmp_path, text)
    assert load_config(path).eval.max_len == 16  # 16 tokens decoded read positions 0..15: they fit
    err = config_error(write_recipe(tmp_path, text.replace("eval: {max_len: 16}", "eval: {max_len: 17}")))
    assert err.startswith(f"{path}:2: eval.max_len: must be <= model.max_len (16") and "got 17" in err
    # in a run: refused at the start, not at the first evaluation with a traceback
    rc, err, _ = train(capsys, recipe, tmp_path / "run", "--set", "model.positions=learned", "--set", "eval.max_len=17")
    assert rc == 2 and "eval.max_len: must be <= model.max_len (16" in err and "Traceback" not in err


# --- 6. a key given twice ------------------------------------------------------------------------------------


def test_a_duplicate_key_names_it_and_both_lines(tmp_path: Path) -> None:
    text = "task: {name: g2p}\ntraining:\n  max_steps: 10\neval: {every: 5}\ntraining:\n  seed: 3\n"
    path = write_recipe(tmp_path, text)
    err = config_error(path)
    assert err.startswith(f"{path}:5: invalid YAML: duplicate key 'training' (first at line 2, again at line 5)")
    nested = write_recipe(tmp_path, "training:\n  max_steps: 10\n  max_steps: 20\n")
    assert "duplicate key 'max_steps' (first at line 2, again at line 3)" in config_error(nested)


# --- 7. tracebacks that are now one line --------------------------------------------------------------------


def test_a_recipe_that_is_not_utf8_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_recipe(tmp_path, b"task: {name: g2p}\n# caf\xe9\ntraining: {max_steps: 5}\n")
    assert config_error(path).startswith(f"{path}:2: bytes b'\\xe9\\ntr' are not valid utf-8")
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("seed", ["99999999999999999999", "-1", "9223372036854775808"])
def test_a_seed_out_of_range_is_a_config_error(tmp_path: Path, seed: str) -> None:
    path = write_recipe(tmp_path, "task: {name: g2p}\n")
    err = config_error(path, [f"training.seed={seed}"])
    assert err == f"--set training.seed={seed}: training.seed: must be between 0 and 2**63 - 1, got {seed}"
    assert load_config(path, ["training.seed=9223372036854775807"]).training.seed == 2**63 - 1


NOT_AN_OBJECT = '{"step": 1, "split": "train"}\n[1, 2]\n{"step": 2, "split": "train"}\n'  # line 2: a list


@pytest.mark.parametrize(
    ("log", "message"),
    [(None, "metrics.jsonl: no training log"), (NOT_AN_OBJECT, "metrics.jsonl:2: not a JSON object")],
)
def test_collect_with_a_missing_or_damaged_log(
    straight: Path, tmp_path: Path, capsys: pytest.CaptureFixture, log: str | None, message: str
) -> None:
    run = Path(shutil.copytree(straight, tmp_path / "run"))
    if log is None:
        (run / "metrics.jsonl").unlink()
    else:
        (run / "metrics.jsonl").write_text(log)
    args = ["results", "collect", str(run), "--recipe", "tiny", "--command", "qkv train", "--threads", "1"]
    rc = main([*args, "--out", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "results" / "tiny" / "result.json").exists()


# --- 8. a fresh run into the folder of an attempt that left no checkpoint ----------------------------------


def test_a_fresh_run_over_an_attempt_without_a_checkpoint_starts_clean(
    recipe: Path, tmp_path: Path, straight: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    crash_at_step(monkeypatch, 5)  # dies before the first save (the evaluation of step 6)
    with pytest.raises(Killed):
        train(capsys, recipe, run)
    capsys.readouterr()
    monkeypatch.undo()
    assert train_steps(run) == [1, 2, 3, 4]

    rc, err, _ = train(capsys, recipe, run)  # no --resume: a new run, in the same folder
    assert rc == 0, err
    assert train_steps(run) == list(range(1, 13))  # one history, not 1..4 then 1..12
    assert (run / "samples.txt").read_text() == (straight / "samples.txt").read_text()
    assert_same_final_state(run, straight)
    assert f"{run}: holds an attempt that left no checkpoint to resume" in err  # and says so


# --- 9. checksums: required in new checkpoints, verified when only the state is read -----------------------


def test_a_new_checkpoint_without_its_checksum_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "best.safetensors"
    ckpt.save_checkpoint(path, {"w": torch.ones(2)})
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    assert metadata["format"] == "qkv-checkpoint-2" and "qkv_sha256" in metadata
    del metadata["qkv_sha256"]  # a header damaged or edited: nothing left to check the tensors against
    path.write_bytes(save({"w": torch.full((2,), 7.0)}, metadata=metadata))
    with pytest.raises(UserError, match=rf"{path}: lacks the checksum \(qkv_sha256\)"):
        ckpt.load_checkpoint(path)
    path.write_bytes(save({"w": torch.ones(2)}, metadata={**metadata, "format": "qkv-checkpoint-1"}))
    assert torch.equal(ckpt.load_weights(path)["w"], torch.ones(2))  # older files still load, unchecked


def test_resume_of_a_complete_run_verifies_its_last_checkpoint(
    straight: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = Path(shutil.copytree(straight, tmp_path / "run"))
    last = run / "checkpoints" / "last.safetensors"
    raw = bytearray(last.read_bytes())
    raw[-64:] = bytes(b ^ 0xFF for b in raw[-64:])  # the end of the file is tensor bytes: the header still reads
    last.write_bytes(bytes(raw))
    rc, err, _ = train(capsys, run, run, "--resume")
    assert rc == 2 and f"{last}: checksum mismatch" in err and "Traceback" not in err  # not "complete"


def test_resume_refuses_a_runs_config_cut_short(tmp_path):
    """`qkv train RUN --resume` reads RUN/config.yaml: with a section missing (cut short) it is an error
    naming the file, not a run that silently takes that section's defaults."""
    import subprocess
    import sys

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("task:\n  name: copy\nmodel:\n  name: transformer\n")  # 2 of 6 sections
    proc = subprocess.run(
        [sys.executable, "-m", "qkv", "train", str(run), "--out", str(run), "--resume", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{run / 'config.yaml'}: lacks the section(s)" in proc.stderr and "Traceback" not in proc.stderr


def test_lm_samples_are_drawn_in_eval_mode_and_leave_the_global_rng_alone():
    """The samples written at each evaluation: dropout off (as `qkv generate` samples) and no draw from the
    global RNG, so training after an evaluation goes on exactly as if no samples were drawn."""
    import torch

    from qkv.data.tokenizers import CharTokenizer
    from qkv.models.builder import build_model
    from qkv.models.config import ModelConfig
    from qkv.training import loop

    tok = CharTokenizer.train(["the cat sat on the mat\n"])
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(name="gpt", d_model=32, n_heads=2, n_decoder_layers=1, d_ff=64, dropout=0.5),
        tok.vocab_size,
        tok.vocab_size,
    )
    model.train()
    before = torch.get_rng_state()
    drawn = loop._lm_samples(model, tok, 2, 16)
    assert torch.equal(torch.get_rng_state(), before)  # dropout would have drawn from it
    assert model.training  # put back as it was
    model.eval()
    assert drawn == loop._lm_samples(model, tok, 2, 16)  # the same samples as the eval-mode model's
