"""A run's checkpoints are tied to its tokenizers: every checkpoint ``qkv train`` writes records the
fingerprint of each side's vocabulary, and opening or resuming a run refuses a tokenizer whose vocabulary
is not the recorded one. Without it, a tokenizer folder copied from another run of the same vocabulary size
loaded and decoded without an error, into the wrong words (a silently wrong result).

Runs are the tiny copy-probe run of tests/test_reliability.py (a word tokenizer over its 5 symbols, shared
by both sides); the "other" tokenizer has the same size with two symbols swapped.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qkv.cli import main
from qkv.data.tokenizers import (
    BPETokenizer,
    CharTokenizer,
    WordTokenizer,
    load_tokenizer,
    train_tokenizer,
    vocabulary_fingerprint,
)
from qkv.errors import UserError
from qkv.special import SPECIAL_TOKENS
from qkv.training import checkpoint as ckpt
from qkv.training.run import load_run
from test_reliability import RECIPE, Killed, crash_at_step, train
from test_safety_review import averaged_straight as _averaged  # noqa: F401 (its fixture, as `_averaged`)


@pytest.fixture(scope="module")
def trained(request: pytest.FixtureRequest) -> Path:
    """RECIPE averaging the last 3 saves, trained to the end (never changed: tests copy it)."""
    return request.getfixturevalue("_averaged")


def swapped(tok: WordTokenizer) -> WordTokenizer:
    """The same vocabulary size, two ordinary tokens trading ids."""
    tokens = list(tok.tokens)
    first = len(SPECIAL_TOKENS)
    tokens[first], tokens[first + 1] = tokens[first + 1], tokens[first]
    return WordTokenizer(tokens)


def test_the_fingerprint_tells_vocabularies_apart_and_survives_a_save(tmp_path: Path) -> None:
    words = WordTokenizer(SPECIAL_TOKENS + ["a", "b", "c"])
    assert vocabulary_fingerprint(words) == vocabulary_fingerprint(WordTokenizer(SPECIAL_TOKENS + ["a", "b", "c"]))
    assert vocabulary_fingerprint(words) != vocabulary_fingerprint(swapped(words))
    # the same token list read as characters is another tokenizer (its texts split differently)
    assert vocabulary_fingerprint(words) != vocabulary_fingerprint(CharTokenizer(SPECIAL_TOKENS + ["a", "b", "c"]))
    texts = ["the cat sat on the mat", "a dog ran after the cat", "two dogs sat on a red mat"] * 20
    bpe = train_tokenizer("bpe", texts, vocab_size=280)
    assert isinstance(bpe, BPETokenizer)
    bpe.save(tmp_path / "bpe")
    assert vocabulary_fingerprint(load_tokenizer(tmp_path / "bpe")) == vocabulary_fingerprint(bpe)
    other = train_tokenizer("bpe", texts, vocab_size=275)
    assert other.vocab_size < bpe.vocab_size  # (fewer merges learned: a vocabulary that is a prefix of the other)
    assert vocabulary_fingerprint(other) != vocabulary_fingerprint(bpe)


def test_every_checkpoint_of_a_run_records_its_tokenizers(trained: Path) -> None:
    tok = load_tokenizer(trained / "tokenizer" / "tgt")
    expected = {side: vocabulary_fingerprint(load_tokenizer(trained / "tokenizer" / side)) for side in ("src", "tgt")}
    assert expected["tgt"] == vocabulary_fingerprint(tok)
    folder = trained / "checkpoints"
    names = ["last", "previous", "best", "averaged"] + [p.stem for p in folder.glob("step-*.safetensors")]
    assert len(names) == 7  # the last three scheduled saves are kept for the average
    for name in names:
        assert ckpt.read_vocabulary(folder / f"{name}.safetensors") == expected, name


@pytest.mark.parametrize("checkpoint", ["best", "averaged", "last"])
def test_a_run_opened_with_another_runs_tokenizer_is_refused(trained: Path, tmp_path: Path, checkpoint: str) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    load_run(run, checkpoint)  # its own tokenizers: fine
    swapped(load_tokenizer(run / "tokenizer" / "tgt")).save(run / "tokenizer" / "tgt")
    with pytest.raises(UserError) as info:
        load_run(run, checkpoint)
    message = str(info.value)
    assert str(run / "tokenizer" / "tgt") in message and f"{checkpoint}.safetensors" in message
    assert "put back the run's own tokenizer/tgt" in message


def test_the_cli_says_so_in_one_line(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    swapped(load_tokenizer(run / "tokenizer" / "src")).save(run / "tokenizer" / "src")
    assert main(["evaluate", str(run), "--max-examples", "2"]) == 2
    err = capsys.readouterr().err
    assert "not the tokenizer" in err and "Traceback" not in err


def test_a_resume_with_another_tokenizer_is_refused_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe, run = tmp_path / "tiny.yaml", tmp_path / "run"
    recipe.write_text(RECIPE)
    crash_at_step(monkeypatch, 9)  # saves at the evaluation of step 6; dies in step 9
    with pytest.raises(Killed):
        train(capsys, recipe, run)
    monkeypatch.undo()
    capsys.readouterr()
    swapped(load_tokenizer(run / "tokenizer" / "tgt")).save(run / "tokenizer" / "tgt")
    before = (run / "checkpoints" / "last.safetensors").read_bytes()
    rc, err, _ = train(capsys, recipe, run, "--resume")
    assert rc == 2 and "not the tokenizer" in err
    assert (run / "checkpoints" / "last.safetensors").read_bytes() == before


def test_checkpoints_without_fingerprints_still_open(trained: Path, tmp_path: Path) -> None:
    """Runs written before the fingerprints existed (every committed result's) open as before, unchecked."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    path = run / "checkpoints" / "best.safetensors"
    ckpt.save_checkpoint(path, ckpt.load_weights(path))  # rewritten without vocabulary
    assert ckpt.read_vocabulary(path) is None
    swapped(load_tokenizer(run / "tokenizer" / "tgt")).save(run / "tokenizer" / "tgt")
    assert load_run(run, "best").tgt_tok.vocab_size == load_tokenizer(trained / "tokenizer" / "tgt").vocab_size


def test_the_fingerprint_is_the_documented_hash() -> None:
    """``v1:`` + sha256 of ``KIND \\0 LANG`` then ``\\0 TOKEN`` per id, computed here with hashlib directly."""
    import hashlib

    words = WordTokenizer(SPECIAL_TOKENS + ["a", "é"])
    expected = hashlib.sha256(b"word\0" + b"".join(b"\0" + t.encode() for t in SPECIAL_TOKENS + ["a", "é"]))
    assert vocabulary_fingerprint(words) == "v1:" + expected.hexdigest()


def test_a_fingerprint_of_another_version_is_not_checked(trained: Path, tmp_path: Path) -> None:
    """A later definition of the fingerprint must not refuse the runs written under this one (and this one
    does not judge theirs)."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    path = run / "checkpoints" / "best.safetensors"
    ckpt.save_checkpoint(path, ckpt.load_weights(path), vocabulary={"src": "v0:abc", "tgt": "v0:abc"})
    assert load_run(run, "best").checkpoint == path
    ckpt.save_checkpoint(path, ckpt.load_weights(path), vocabulary={"src": "v1:abc", "tgt": "v1:abc"})
    with pytest.raises(UserError, match="not the tokenizer"):
        load_run(run, "best")


def test_packing_a_run_checks_its_tokenizers_and_keeps_the_fingerprint(trained: Path, tmp_path: Path) -> None:
    from qkv.assets.pack import WEIGHTS, pack_run

    packed = pack_run(trained, tmp_path / "packed")
    assert ckpt.read_vocabulary(packed / WEIGHTS) == ckpt.read_vocabulary(trained / "checkpoints" / "best.safetensors")
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    swapped(load_tokenizer(run / "tokenizer" / "tgt")).save(run / "tokenizer" / "tgt")
    with pytest.raises(UserError, match="not the tokenizer"):
        pack_run(run, tmp_path / "packed-swapped")
    assert not (tmp_path / "packed-swapped").exists()
