"""Fault injection: damaged files, bad values, torn writes, closed pipes, oversized input.

Each fault ends in **one line** on stderr that names the file (and line), key or flag, exit status 2 and no
traceback -- or, where qkv can ride it out (a metrics line torn by a kill, a temporary file a kill left
behind, a byte-order mark), it is ridden out. Each case is listed in docs/reliability.md with the name of its
test. Runs are the tiny copy-probe run of tests/test_reliability.py, trained once per module and copied where
a test damages it; commands run in this process (`qkv.cli.main`), except the closed-pipe cases, which need a
real pipe. Damaged checkpoints are made the way a disk or a hand edit damages them: bytes flipped in place, a
file cut short, a header rewritten, tensors removed or added (re-saved with a fresh checksum, as another
program or an older qkv would write them).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save

from qkv.cli import main
from qkv.data import get_task
from qkv.data.textio import MAX_LINE_CHARS, read_csv, read_lines
from qkv.data.tokenizers import train_tokenizer
from qkv.errors import UserError
from qkv.pretrained import PretrainedTokenizer
from qkv.training import checkpoint as ckpt
from qkv.training.metrics_log import read_metrics
from test_reliability import RECIPE, samsum_rows, train
from test_reliability import straight as _straight  # noqa: F401 (its fixture, as `_straight`)

MT_RECIPE = RECIPE.replace(
    "{name: copy, options: {length: 4, num_examples: 64, num_eval_examples: 4, vocab_size: 5}}",
    "{name: translation, options: {tokenizer: bpe, vocab_size: 300}}",
)


def one_line_error(rc: int, err: str, command: str, *names: str) -> str:
    """Assert the user-error contract: exit 2, `qkv COMMAND: error: ...` on one line, naming each of ``names``."""
    assert rc == 2, err
    assert "Traceback" not in err and err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(f"qkv {command}: error: "), err
    for name in names:
        assert name in err, (name, err)
    return err


def qkv(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """`qkv ARGS` in this process: (exit status, stdout, stderr)."""
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def trained(request: pytest.FixtureRequest) -> Path:
    """RECIPE trained to the end (12 steps), never changed; tests that damage a run damage a copy."""
    return request.getfixturevalue("_straight")


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    """A private copy of the trained run."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(RECIPE)
    return path


def resume(capsys: pytest.CaptureFixture, run: Path, steps: int = 14) -> tuple[int, str, dict | None]:
    return train(capsys, run, run, "--resume", "--max-steps", str(steps))


def rewrite(path: Path, edit) -> None:
    """Re-save checkpoint ``path`` after ``edit(weights, tensors, state)`` changed it in place (fresh checksum)."""
    weights, tensors, state = ckpt.load_checkpoint(path)
    edit(weights, tensors, state)
    ckpt.save_checkpoint(path, weights, tensors, state)


def header(path: Path) -> tuple[dict, bytes]:
    """A safetensors file's JSON header and the tensor bytes after it."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def write_with_header(path: Path, head: dict, data: bytes) -> None:
    text = json.dumps(head).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


# --- values and keys: config, flags ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting",
    [
        "optim.lr=.nan",
        "optim.eps=.nan",
        "optim.lr=.inf",
        "optim.clip_norm=.nan",
        "schedule.min_lr=.nan",
        "optim.weight_decay=.nan",
    ],
)
def test_non_finite_optimizer_values_are_config_errors(
    recipe: Path, tmp_path: Path, capsys: pytest.CaptureFixture, setting: str
) -> None:
    rc, err, _ = train(capsys, recipe, tmp_path / "run", "--set", setting)
    one_line_error(rc, err, "train", f"--set {setting}", setting.split("=")[0], "finite number")
    assert not (tmp_path / "run").exists()  # caught before anything is written


@pytest.mark.parametrize("setting", ["model.norm_eps=.nan", "model.rotary_base=.inf", "model.norm_eps=0"])
def test_non_finite_model_values_are_config_errors(
    recipe: Path, tmp_path: Path, capsys: pytest.CaptureFixture, setting: str
) -> None:
    rc, err, _ = train(capsys, recipe, tmp_path / "run", "--set", setting)
    one_line_error(rc, err, "train", setting.split("=")[0], "finite number > 0")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("setting", ["nosuch.key=1", "model.nosuch.key=1"])
def test_set_of_an_unknown_section_is_blamed_on_the_set(
    recipe: Path, tmp_path: Path, capsys: pytest.CaptureFixture, setting: str
) -> None:
    rc, err, _ = train(capsys, recipe, tmp_path / "run", "--set", setting)
    one_line_error(rc, err, "train", f"--set {setting}: unknown key '{setting.rsplit('.', 1)[0]}'")
    assert str(recipe) not in err  # (before: "tiny.yaml: unknown key 'nosuch'")


def test_task_option_of_the_wrong_type_is_blamed_on_its_set_or_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    recipe = tmp_path / "mt.yaml"
    recipe.write_text(MT_RECIPE)
    # a string where a {split: [source, target]} mapping belongs (before: TypeError, string indices)
    rc, err, _ = train(capsys, recipe, tmp_path / "run", "--set", "task.options.files=/data/train.txt")
    one_line_error(
        rc,
        err,
        "train",
        "--set task.options.files=/data/train.txt: task.options.files: expected mapping",
        "got '/data/train.txt'",
    )
    recipe.write_text(MT_RECIPE.replace("vocab_size: 300}", "vocab_size: 300, max_chars: lots}"))
    rc, err, _ = train(capsys, recipe, tmp_path / "run")
    one_line_error(rc, err, "train", f"{recipe}:2: task.options.max_chars: expected integer or null, got 'lots'")
    recipe.write_text(MT_RECIPE)
    rc, err, _ = train(capsys, recipe, tmp_path / "run", "--set", "task.options.colour=red")
    one_line_error(rc, err, "train", "--set task.options.colour=red: task.options.colour: unknown option")


@pytest.mark.parametrize(
    "flag",
    [
        ["--max-len", "0"],
        ["--temperature", "0"],
        ["--temperature", "-1"],
        ["--temperature", "nan"],
        ["--top-p", "2"],
        ["--top-k", "0"],
        ["--beam", "0"],
    ],
)
def test_generate_flag_out_of_range_is_one_line(trained: Path, capsys: pytest.CaptureFixture, flag: list[str]) -> None:
    rc, _, err = qkv(capsys, "generate", trained, "1 2 3", "--sample", *flag)
    one_line_error(rc, err, "generate", f"{flag[0]} must be")


def test_serve_port_out_of_range_is_one_line(trained: Path, capsys: pytest.CaptureFixture) -> None:
    for port in ("99999", "-1"):
        rc, _, err = qkv(capsys, "serve", trained, "--port", port)
        one_line_error(rc, err, "serve", f"--port {port}", "0 to 65535")


def test_explain_html_into_a_directory_or_a_missing_folder(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rc, _, err = qkv(capsys, "explain", trained, "1 2", "--token", "0", "--html", tmp_path)
    one_line_error(rc, err, "explain", f"--html {tmp_path}: is a directory")
    missing = tmp_path / "no" / "such" / "page.html"
    rc, out, err = qkv(capsys, "explain", trained, "1 2", "--token", "0", "--html", missing)
    one_line_error(rc, err, "explain", f"--html {missing}: the folder {missing.parent} does not exist")
    assert out == ""  # found before the model runs
    rc, out, _ = qkv(capsys, "explain", trained, "1 2", "--token", "0", "--html", tmp_path / "page.html")
    assert rc == 0 and (tmp_path / "page.html").is_file()


def test_an_output_folder_that_is_a_file(trained: Path, recipe: Path, capsys: pytest.CaptureFixture) -> None:
    # (found on the way: FileExistsError tracebacks, and for `train` only after the data and tokenizers were done)
    taken = recipe  # any existing file
    rc, _, err = qkv(capsys, "attention", trained, "1 2", "--out", taken)
    one_line_error(rc, err, "attention", f"--out {taken}: exists and is not a directory")
    rc, _, err = qkv(capsys, "serve", trained, "--export", taken, "--text", "1 2")
    one_line_error(rc, err, "serve", f"--export {taken}: exists and is not a directory")
    rc, err, _ = train(capsys, recipe, taken)
    one_line_error(rc, err, "train", f"--out {taken}: exists and is not a directory")
    assert taken.read_text() == RECIPE


# --- checkpoints: another model, missing or extra tensors, damage ------------------------------------------


def test_checkpoint_of_another_size_or_an_edited_config(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    best = run / "checkpoints" / "best.safetensors"
    weights = ckpt.load_weights(best)
    weights["lm_head.weight"] = torch.zeros(weights["lm_head.weight"].shape[0], 32)  # another d_model's layer
    other = tmp_path / "other.safetensors"
    ckpt.save_checkpoint(other, weights)
    rc, _, err = qkv(capsys, "evaluate", run, "--checkpoint", other)
    one_line_error(rc, err, "evaluate", str(other), str(run / "config.yaml"), "lm_head.weight", "(10, 32)")
    rc, _, err = qkv(capsys, "generate", run, "1 2", "--checkpoint", other)
    one_line_error(rc, err, "generate", str(other), "lm_head.weight")

    config = run / "config.yaml"  # an edited config.yaml: the run's own checkpoints no longer fit it
    config.write_text(config.read_text().replace("d_model: 16", "d_model: 32"))
    rc, _, err = qkv(capsys, "evaluate", run)
    one_line_error(rc, err, "evaluate", str(best), str(config), "has shape (10, 16) in the checkpoint, (10, 32)")
    rc, err, _ = resume(capsys, run)
    one_line_error(rc, err, "train", str(run / "checkpoints" / "last.safetensors"), str(config))


def _drop(where: str, key: str):
    def edit(weights, tensors, state):
        del {"weights": weights, "tensors": tensors, "state": state}[where][key]

    return edit


def _add(where: str, key: str, value=None):
    def edit(weights, tensors, state):
        {"weights": weights, "tensors": tensors}[where][key] = torch.zeros(3) if value is None else value

    return edit


@pytest.mark.parametrize(
    ("edit", "names"),
    [
        (_drop("weights", "lm_head.weight"), ["it lacks lm_head.weight"]),
        (_add("weights", "extra.weight"), ["it has unexpected extra.weight"]),
        (_drop("tensors", "rng.torch"), ["lacks 'rng.torch'"]),
        (_drop("tensors", "optim.3.exp_avg"), ["lacks training tensor _train.optim.3.exp_avg"]),
        (_drop("tensors", "optim.0.step"), ["lacks training tensor _train.optim.0.step"]),
        (_add("tensors", "optim.999.exp_avg"), ["unexpected training tensor _train.optim.999"]),
        (_add("tensors", "optim.2.exp_avg_sq"), ["_train.optim.2.exp_avg_sq has shape (3,)"]),
        (_add("tensors", "surprise"), ["unexpected training tensor(s) _train.surprise"]),
        (_drop("state", "rng"), ["the training state in its header lacks rng"]),
        (_drop("state", "step"), ["no integer 'step'"]),
    ],
    ids=[
        "no-weight",
        "extra-weight",
        "no-rng",
        "no-moment",
        "no-step-tensor",
        "extra-moment",
        "moment-shape",
        "extra-tensor",
        "no-rng-state",
        "no-step",
    ],
)
def test_resume_with_a_missing_or_extra_tensor(run: Path, capsys: pytest.CaptureFixture, edit, names) -> None:
    last = run / "checkpoints" / "last.safetensors"
    rewrite(last, edit)
    rc, err, _ = resume(capsys, run)
    one_line_error(rc, err, "train", str(last), *names)


def test_flipped_bytes_fail_the_checksum(run: Path, capsys: pytest.CaptureFixture) -> None:
    # 1,000 bytes flipped in the tensors of `best` (before: evaluated with exit 0) and of `last` (before: resumed,
    # and the NaNs that followed were blamed on the learning rate)
    generator = torch.Generator().manual_seed(0)
    for name in ("best", "last"):
        path = run / "checkpoints" / f"{name}.safetensors"
        head, data = header(path)
        data = bytearray(data)
        for i in torch.randperm(len(data), generator=generator)[:1000].tolist():
            data[i] ^= 0xFF
        write_with_header(path, head, bytes(data))
    rc, _, err = qkv(capsys, "evaluate", run)
    one_line_error(rc, err, "evaluate", str(run / "checkpoints" / "best.safetensors"), "checksum mismatch")
    rc, err, _ = resume(capsys, run)
    one_line_error(rc, err, "train", str(run / "checkpoints" / "last.safetensors"), "checksum mismatch")


def test_checksum_covers_every_tensor_and_the_training_state(run: Path) -> None:
    last = run / "checkpoints" / "last.safetensors"
    head, data = header(last)
    meta = head["__metadata__"]
    weights, tensors, state = ckpt.load_checkpoint(last)  # verifies
    stored = {**weights, **{ckpt.TRAIN_PREFIX + k: v for k, v in tensors.items()}}
    assert meta["qkv_sha256"] == ckpt.checksum(stored, meta["qkv_train_state"])
    edited = dict(meta, qkv_train_state=meta["qkv_train_state"].replace('"step": 12', '"step": 11'))
    assert edited != meta  # a changed digit in the state: still valid JSON, caught by the checksum
    write_with_header(last, dict(head, __metadata__=edited), data)
    with pytest.raises(UserError, match=rf"{last}: checksum mismatch"):
        ckpt.load_checkpoint(last)


def test_checkpoint_without_a_checksum_still_loads(run: Path, capsys: pytest.CaptureFixture) -> None:
    """Checkpoints written before the checksum existed (no ``qkv_sha256``) load and resume as before."""
    for name in ("best", "last"):
        path = run / "checkpoints" / f"{name}.safetensors"
        weights, tensors, state = ckpt.load_checkpoint(path)
        payload = {**weights, **{ckpt.TRAIN_PREFIX + k: v for k, v in tensors.items()}}
        meta = {"format": "qkv-checkpoint-1", **({"qkv_train_state": json.dumps(state)} if state else {})}
        path.write_bytes(save(payload, metadata=meta))
        assert "qkv_sha256" not in header(path)[0]["__metadata__"]
    rc, out, err = qkv(capsys, "evaluate", run)
    assert rc == 0, err
    rc, err, summary = resume(capsys, run)
    assert rc == 0 and summary["step"] == 14, err
    assert "qkv_sha256" in header(run / "checkpoints" / "last.safetensors")[0]["__metadata__"]  # new saves: with


def test_cut_short_checkpoint_or_header(run: Path, capsys: pytest.CaptureFixture) -> None:
    last = run / "checkpoints" / "last.safetensors"
    head, data = header(last)
    state = head["__metadata__"]["qkv_train_state"]
    cut = dict(head["__metadata__"], qkv_train_state=state[: len(state) // 2])
    write_with_header(last, dict(head, __metadata__=cut), data)
    rc, err, _ = resume(capsys, run)
    one_line_error(rc, err, "train", str(last), "not valid JSON")

    raw = (run / "checkpoints" / "previous.safetensors").read_bytes()
    last.write_bytes(raw[: len(raw) // 2])  # the file itself cut short (a copy that ran out of disk)
    rc, err, _ = resume(capsys, run)
    one_line_error(rc, err, "train", str(last), "not a readable safetensors checkpoint")

    shutil.copyfile(run / "checkpoints" / "previous.safetensors", last)
    (run / "checkpoints" / "last.json").write_text('{"step": 1')  # the readable copy is never read back
    rc, err, summary = resume(capsys, run, steps=12)
    assert rc == 0 and summary["step"] == 12, err


# --- torn writes: metrics log, temporary files ----------------------------------------------------------


def test_metrics_log_ending_in_a_torn_line_is_tolerated_on_resume(run: Path, capsys: pytest.CaptureFixture):
    log = run / "metrics.jsonl"
    text = log.read_text()
    log.write_text(text[:-30])  # a kill in the middle of writing the last line
    assert [r["step"] for r in read_metrics(run)][-1] == 12  # readers skip the torn line
    rc, err, summary = resume(capsys, run)
    assert rc == 0 and summary["step"] == 14, err
    records = read_metrics(run)
    assert [r["step"] for r in records if r["split"] == "train"] == list(range(1, 15))
    assert all(line and json.loads(line) for line in log.read_text().splitlines())  # every line whole

    lines = log.read_text().splitlines(keepends=True)
    lines[3] = lines[3][:20] + "\n"  # damage in the middle is not a torn write: an error naming the line
    log.write_text("".join(lines))
    with pytest.raises(UserError, match=rf"{log}:4: not a JSON object"):
        read_metrics(run)
    rc, err, _ = resume(capsys, run, steps=16)
    one_line_error(rc, err, "train", f"{log}:4")


def test_orphaned_temporary_files_are_removed_on_the_next_start(run: Path, capsys: pytest.CaptureFixture) -> None:
    # what `kill -9` during a save leaves: atomic_write's temp file, copy_checkpoint's hard-link temp file
    folder = run / "checkpoints"
    orphans = [folder / ".last.safetensors.k2j4h1.tmp", folder / ".previous.safetensors.4242.link.tmp"]
    orphans[0].write_bytes((folder / "last.safetensors").read_bytes()[:1000])
    os.link(folder / "last.safetensors", orphans[1])
    rc, err, summary = resume(capsys, run)
    assert rc == 0 and summary["step"] == 14, err
    assert not any(p.exists() for p in orphans) and not list(folder.glob(".*"))
    assert all(f"removed {p}, left by a save that was interrupted" in err for p in orphans)
    assert ckpt.remove_orphans(folder) == []


# --- damaged tokenizer and pretrained files ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "names"),
    [
        (b'{"kind": "word", "tok', ["qkv_tokenizer.json", "not valid JSON"]),
        (bytes(range(256)) * 4, ["qkv_tokenizer.json", "binary data"]),
        (b'{"kind": "word", "tokens": 5}', ["qkv_tokenizer.json", "'tokens' must be a list of strings"]),
        (b"[1, 2]", ["qkv_tokenizer.json", "unknown tokenizer kind"]),
        (b'{"kind": "word", "tokens": ["a", "b"]}', ["qkv_tokenizer.json", "vocabulary must start with"]),
        (b'{"kind": "bpe"}', ["tokenizer.json", "not a readable Hugging Face tokenizer file"]),
    ],
    ids=["cut-short", "binary", "wrong-type", "not-an-object", "no-specials", "bpe-without-its-file"],
)
def test_damaged_tokenizer_file(run: Path, capsys: pytest.CaptureFixture, content: bytes, names) -> None:
    (run / "tokenizer" / "tgt" / "qkv_tokenizer.json").write_bytes(content)
    rc, _, err = qkv(capsys, "evaluate", run)
    one_line_error(rc, err, "evaluate", str(run / "tokenizer" / "tgt"), *names)


def test_damaged_pretrained_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "gpt2"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "gpt2",
                "n_embd": 8,
                "n_head": 2,
                "n_layer": 1,
                "n_positions": 16,
                "vocab_size": 20,
                "activation_function": "gelu_new",
            }
        )
    )
    (folder / "model.safetensors").write_bytes(os.urandom(1000))  # a download cut short / overwritten
    rc, _, err = qkv(capsys, "explain", folder, "a", "--token", "0", "--pretrained", "--html", "")
    one_line_error(rc, err, "explain", str(folder / "model.safetensors"), "not a readable safetensors file")
    rc, _, err = qkv(capsys, "serve", "--pretrained", folder, "--port", "0")
    one_line_error(rc, err, "serve", str(folder / "model.safetensors"))

    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors.index.json").write_text('{"weight_map": ')
    rc, _, err = qkv(capsys, "explain", folder, "a", "--token", "0", "--pretrained", "--html", "")
    one_line_error(rc, err, "explain", str(folder / "model.safetensors.index.json"), "not a safetensors index")

    (folder / "config.json").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(100))
    rc, _, err = qkv(capsys, "explain", folder, "a", "--token", "0", "--pretrained", "--html", "")
    one_line_error(rc, err, "explain", str(folder / "config.json"))

    (tmp_path / "tokenizer.json").write_text('{"model": 3')
    with pytest.raises(UserError, match=r"tokenizer\.json: not a readable Hugging Face tokenizer file"):
        PretrainedTokenizer.from_file(tmp_path / "tokenizer.json")


# --- input: encodings, line ends, size --------------------------------------------------------------------


def test_generate_file_that_is_not_utf8(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inputs = tmp_path / "inputs.txt"
    inputs.write_bytes(b"1 2\n3 \xff\xfe 4\n")
    rc, out, err = qkv(capsys, "generate", trained, "--file", inputs)
    one_line_error(rc, err, "generate", f"{inputs}:2: bytes", "not valid utf-8")
    assert out == ""
    rc, _, err = qkv(capsys, "generate", trained, "--file", tmp_path)
    one_line_error(rc, err, "generate", f"{tmp_path}: cannot read")

    inputs.write_bytes(b"1 2\r3 4\r")  # old-Mac line ends
    rc, _, err = qkv(capsys, "generate", trained, "--file", inputs)
    one_line_error(rc, err, "generate", str(inputs), "CR alone")

    inputs.write_bytes("\ufeff1 2\r\n3 4\r\n".encode())  # a BOM and Windows line ends: read as the two lines
    rc, out, err = qkv(capsys, "generate", trained, "--file", inputs)
    rc_plain, plain, _ = qkv(capsys, "generate", trained, "1 2", "3 4")
    assert rc == rc_plain == 0 and out == plain and len(out.splitlines()) == 2


def test_generate_stdin_that_is_not_utf8(trained: Path, capsys: pytest.CaptureFixture, monkeypatch) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"1 2\n\xff 3\n")))
    rc, out, err = qkv(capsys, "generate", trained)
    one_line_error(rc, err, "generate", "stdin line 2", "not valid UTF-8")
    assert len(out.splitlines()) == 1  # the good line before it was answered


def test_generate_input_size_is_bounded(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # 100,000 characters (before: 223 s and about 1 GB); refused before the run is opened
    start = time.perf_counter()
    rc, _, err = qkv(capsys, "generate", trained, "1 " * 50_000)
    one_line_error(rc, err, "generate", "TEXT argument 1: 100,000 characters", "--max-input-chars 10,000")
    assert time.perf_counter() - start < 2
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("1 2\n" + "3 " * 6000 + "\n")
    rc, _, err = qkv(capsys, "generate", trained, "--file", inputs)
    one_line_error(rc, err, "generate", f"{inputs}:2: 12,000 characters")
    rc, out, err = qkv(capsys, "generate", trained, "--file", inputs, "--max-input-chars", "20000")
    assert rc == 0 and len(out.splitlines()) == 2, err  # asked for: accepted


def test_a_megabyte_on_one_line_is_refused_quickly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # before: BPE training ran for many minutes with no message (time grows with the square of a word's length)
    src, tgt = tmp_path / "train.de", tmp_path / "train.en"
    src.write_text("ein haus\n" * 20 + "x" * 1_000_000 + "\n")
    tgt.write_text("a house\n" * 21)
    recipe = tmp_path / "mt.yaml"
    recipe.write_text(MT_RECIPE.replace("vocab_size: 300}", f"vocab_size: 300, src_file: {src}, tgt_file: {tgt}}}"))
    start = time.perf_counter()
    rc, err, _ = train(capsys, recipe, tmp_path / "run")
    one_line_error(
        rc, err, "train", f"{src}:21: 1,000,000 characters", f"qkv's limit of {MAX_LINE_CHARS:,}", "max_chars"
    )
    assert time.perf_counter() - start < 10
    assert len(read_lines(src, max_chars=2_000_000)) == 21  # an explicit, higher maximum reads it
    with pytest.raises(UserError, match=r"BPE training text 2 has 1,000,000 characters"):
        train_tokenizer("bpe", ["short", "y" * 1_000_000])  # the tokenizer's own guard, for callers of the API


def test_cr_only_line_ends_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "old-mac.txt"
    path.write_bytes(b"first line\rsecond line\rthird line\r")
    with pytest.raises(UserError, match=rf"{path}: its lines end in CR alone .* tr "):
        read_lines(path)
    path.write_bytes(b"first line\r\nsecond line\r\n")  # Windows line ends are fine
    assert read_lines(path) == ["first line", "second line"]


def test_a_byte_order_mark_is_dropped_from_text_and_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffein Haus\nzwei\n".encode())
    assert read_lines(path) == ["ein Haus", "zwei"]  # (before: "\ufeffein Haus")
    csv_path = tmp_path / "bom.csv"
    csv_path.write_bytes(("\ufeff" + samsum_rows("X")).encode())
    rows, _ = read_csv(csv_path, ["id", "dialogue", "summary"])  # (before: no column "id": it was "\ufeffid")
    assert rows[0] == {"id": "0", "dialogue": "A: X 0", "summary": "X summary 0"}

    folder = tmp_path / "mine" / "samsum"
    folder.mkdir(parents=True)
    for name in ("train", "validation", "test"):
        (folder / f"{name}.csv.gz").write_bytes(gzip.compress(("\ufeff" + samsum_rows("BOM")).encode()))
    monkeypatch.setenv("QKV_OFFLINE", "1")
    task = get_task("summarization", dataset="samsum", data_dir=str(tmp_path / "mine"))
    assert task.examples("train")[0].src == "A: BOM 0"


# --- closed pipes ------------------------------------------------------------------------------------------


def _closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """Run `python -m qkv ARGS` with its stdout a pipe whose reader has gone (as `| head -1` does after its line)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "qkv", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, None, err.decode())


def test_a_closed_pipe_stops_quietly(trained: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("1 2 3\n" * 200)
    for args in (["data", "--no-count"], ["generate", str(trained), "--file", str(inputs)]):
        done = _closed_pipe(*args)
        assert done.returncode == 141 and done.stderr == "", (args, done.stderr)  # (before: BrokenPipeError)
