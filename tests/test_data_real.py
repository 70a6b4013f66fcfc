"""The loaders on the real datasets under $QKV_DATA: counts equal those in ../shared/data/README.md."""

from __future__ import annotations

import hashlib

import pytest

from qkv.cli import main
from qkv.data import get_task
from qkv.data.lm import PTB_MD5

pytestmark = pytest.mark.data


def test_multi30k_counts_and_alignment(data_dir):
    task = get_task("translation", src_lang="de", tgt_lang="en", data_dir=str(data_dir))
    assert [len(task.examples(s)) for s in ("train", "dev", "test")] == [29000, 1014, 1000]
    cs = get_task("translation", src_lang="en", tgt_lang="cs", data_dir=str(data_dir))
    assert len(cs.examples("test")) == 1000
    assert task.examples("train")[0].src.startswith("Zwei junge weiße Männer")


def test_g014b2b_counts(data_dir):
    task = get_task("g2p", source="g014b2b", data_dir=str(data_dir))
    train_words = {e.src for e in task.examples("train")} | {e.src for e in task.examples("dev")}
    assert len(train_words) == 106837 and len(task.examples("test")) == 12000
    lines = len(task.examples("train")) + sum(len(e.refs) for e in task.examples("dev"))
    assert lines == 113438  # one training example per line (variants included)
    assert sum(len(e.refs) for e in task.examples("test")) == 12753


def test_summarization_counts(data_dir):
    aeslc = get_task("summarization", dataset="aeslc", data_dir=str(data_dir))
    assert [len(aeslc.examples(s)) for s in ("train", "dev", "test")] == [14436, 1960, 1906]
    assert all(len(e.refs) == 4 for e in aeslc.examples("test"))
    samsum = get_task("summarization", dataset="samsum", data_dir=str(data_dir))
    assert [len(samsum.examples(s)) for s in ("train", "dev", "test")] == [14731, 818, 819]


def test_lm_counts_and_ptb_md5(data_dir):
    shakespeare = get_task("lm", data_dir=str(data_dir))
    assert len(shakespeare.text("train")) + len(shakespeare.text("dev")) == 1115394
    for name, md5 in PTB_MD5.items():
        assert hashlib.md5((data_dir / "ptb" / name).read_bytes()).hexdigest() == md5
    ptb = get_task("lm", dataset="ptb", data_dir=str(data_dir))
    tok, _ = ptb.build_tokenizers(ptb.text("train"))
    assert len(tok.encode(ptb.text("train"))) == 929589
    # PTB: 10k types counting <unk> and the sentence end; plus <pad>, <bos>, <eos>
    assert tok.vocab_size == 10000 + 3


def test_qkv_data_lists_every_dataset(data_dir, capsys):
    assert main(["data", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    for name in ("cmudict", "cmudict-g014b2b", "multi30k", "tinyshakespeare", "ptb", "aeslc", "samsum", "probes"):
        assert name in out
    assert "MISSING" not in out
    assert "train 29,000, dev 1,014, test 1,000" in out and "train 14,436, dev 1,960, test 1,906" in out
    assert "train 106,837, test 12,000" in out and "all 1,115,394" in out and "train 929,589" in out
