"""Bad input becomes a UserError naming the file and line; good input reads back exactly."""

from __future__ import annotations

import gzip
import logging

import pytest

from qkv.data import paths
from qkv.data.textio import check_lengths, read_csv, read_lines, read_parallel
from qkv.errors import UserError


def write(path, data: bytes, gz: bool = False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_plain_and_gzip_read_the_same(tmp_path):
    text = "ein Hund\r\nzwei Katzen\n\u00fcber\n".encode()
    assert read_lines(write(tmp_path / "a.txt", text)) == ["ein Hund", "zwei Katzen", "über"]
    assert read_lines(write(tmp_path / "a.txt.gz", text, gz=True)) == ["ein Hund", "zwei Katzen", "über"]


def test_undecodable_bytes_name_file_line_and_encoding(tmp_path):
    path = write(tmp_path / "bad.de", b"ok\nalso ok\ncaf\xe9\n")
    with pytest.raises(UserError, match=r"bad\.de:3: .*not valid utf-8"):
        read_lines(path)
    assert read_lines(path, encoding="latin-1")[2] == "café"


def test_empty_file(tmp_path):
    with pytest.raises(UserError, match=r"empty\.txt: empty file"):
        read_lines(write(tmp_path / "empty.txt", b""))
    with pytest.raises(UserError, match=r"blank\.txt: empty file"):
        read_lines(write(tmp_path / "blank.txt", b"\n\n"))


def test_missing_file_and_bad_gzip(tmp_path):
    with pytest.raises(UserError, match=r"nothere\.txt: file not found"):
        read_lines(tmp_path / "nothere.txt")
    with pytest.raises(UserError, match=r"fake\.gz: not a valid gzip file"):
        read_lines(write(tmp_path / "fake.gz", b"plain text"))


def test_parallel_length_mismatch_names_both_files_and_counts(tmp_path):
    src = write(tmp_path / "train.de", b"a\nb\nc\n")
    tgt = write(tmp_path / "train.en", b"A\nB\n")
    with pytest.raises(UserError) as err:
        read_parallel(src, tgt)
    msg = str(err.value)
    assert "train.de has 3 lines" in msg and "train.en has 2 lines" in msg and "line 3" in msg


def test_overlong_lines_error_or_truncate_with_count(tmp_path, caplog):
    path = write(tmp_path / "long.txt", b"short\n" + b"x" * 12 + b"\nok\n" + b"y" * 20 + b"\n")
    with pytest.raises(UserError, match=r"long\.txt:2: 12 characters, more than the maximum 10 \(2 of 4"):
        read_lines(path, max_chars=10)
    with caplog.at_level(logging.WARNING, logger="qkv.data"):
        lines = read_lines(path, max_chars=10, truncate=True)
    assert lines == ["short", "x" * 10, "ok", "y" * 10]
    assert "truncated 2 of 4" in caplog.text
    assert check_lengths(["abc"], lambda i: "x", None) == ["abc"]


def test_csv_missing_columns_and_line_numbers(tmp_path):
    path = write(tmp_path / "d.csv.gz", b'id,dialogue,summary\n1,"A: hi\nB: yo",greet\n2,x,y\n', gz=True)
    rows, lines = read_csv(path, ["dialogue", "summary"])
    assert rows == [{"dialogue": "A: hi\nB: yo", "summary": "greet"}, {"dialogue": "x", "summary": "y"}]
    assert lines == [2, 4]
    bad = write(tmp_path / "bad.csv", b"id,text,summary\n1,a,b\n")
    want = r"bad\.csv:1: CSV header lacks column\(s\) dialogue \(found: id, text, summary"
    with pytest.raises(UserError, match=want):
        read_csv(bad, ["dialogue", "summary"])
    short = write(tmp_path / "short.csv", b"id,dialogue,summary\n1,a,b\n2,c\n")
    with pytest.raises(UserError, match=r"short\.csv:3: row has fewer fields"):
        read_csv(short, ["dialogue", "summary"])


def test_locate_lookup_order_and_missing_message(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    for root in (first, second):
        (root / "ds").mkdir(parents=True)
        (root / "ds" / "f.txt").write_text(root.name)
    monkeypatch.setenv("QKV_DATA", str(second))
    monkeypatch.setenv("QKV_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("QKV_OFFLINE", "1")
    assert paths.locate("ds", "f.txt", first).read_text() == "first"
    assert paths.locate("ds", "f.txt").read_text() == "second"
    with pytest.raises(UserError) as err:
        paths.locate("ds", "g.txt", first, url="https://example.org/g.txt")
    msg = str(err.value)
    # a data_dir is the one place the dataset comes from: never completed from $QKV_DATA or the cache
    assert "missing data file ds/g.txt" in msg and str(first / "ds") in msg and "nowhere else" in msg
    assert not (tmp_path / "cache" / "ds" / "g.txt").exists()


def test_content_checksum_ignores_compression(tmp_path):
    import hashlib

    data = b"hello\nworld\n"
    expected = hashlib.sha256(data).hexdigest()
    assert paths.content_sha256(write(tmp_path / "a.txt", data)) == expected
    assert paths.content_sha256(write(tmp_path / "a.gz", data, gz=True)) == expected


def test_download_into_cache_verifies_checksum(tmp_path, monkeypatch):
    import hashlib

    data = b"line one\nline two\n"
    source = write(tmp_path / "src.txt.gz", data, gz=True)
    monkeypatch.setenv("QKV_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("QKV_OFFLINE", raising=False)
    monkeypatch.delenv("QKV_DATA", raising=False)
    good = hashlib.sha256(data).hexdigest()
    got = paths.locate("ds", "f.txt.gz", url=source.as_uri(), sha256=good)
    assert got == tmp_path / "cache" / "ds" / "f.txt.gz" and read_lines(got) == ["line one", "line two"]
    with pytest.raises(UserError, match="checksum mismatch") as err:
        paths.locate("ds", "g.txt.gz", url=source.as_uri(), sha256="0" * 64)
    assert "missing data file ds/g.txt.gz" in str(err.value)
    assert sorted(p.name for p in (tmp_path / "cache" / "ds").iterdir()) == ["f.txt.gz"]  # no partial files
