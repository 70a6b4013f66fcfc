"""qkv.atomic: the one atomic writer (checkpoints, downloads, reports) -- all or nothing, no leftovers."""

from __future__ import annotations

from pathlib import Path

import pytest

from qkv.atomic import atomic_open, atomic_write, atomic_write_text


def test_writes_replace_the_file_and_leave_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "results.json"
    atomic_write_text(path, "première\n")
    atomic_write(path, b"second\n")
    assert path.read_bytes() == b"second\n"
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]


def test_an_error_inside_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "data.gz"
    atomic_write(path, b"old")
    with pytest.raises(ValueError, match="checksum"), atomic_open(path, suffix=".part.gz") as f:
        f.write(b"half of the new")
        assert Path(f.name).parent == tmp_path and Path(f.name).name.endswith(".part.gz")
        raise ValueError("checksum mismatch")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.gz"]


def test_a_file_written_atomically_gets_the_mode_open_would_give_it(tmp_path: Path) -> None:
    """mkstemp creates 0600; a report or checkpoint others may read gets 0666 minus the umask, as open() does."""
    import os

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "report.md", "x")
        (tmp_path / "plain.md").write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "report.md").stat().st_mode & 0o777 == (tmp_path / "plain.md").stat().st_mode & 0o777 == 0o644
