"""Atomic file writes -- the one home of "write a temp file, then rename it over the target".

A reader (or a ``kill -9``, or Ctrl-C) never sees half a file: the data goes to a temporary file in the same
directory (same file system, so the rename is atomic), which is flushed and fsync'ed, then ``os.replace``-d
over the target; the directory is fsync'ed too, so the rename itself survives a crash. If anything fails
before the rename, the temporary file is removed and the old target is left as it was.

Temporary files are named ``.<name>.<random>.tmp`` so a later start can recognise and remove the leftovers
of a process that was killed mid-write (:func:`qkv.training.checkpoint.remove_orphans`).

Used by checkpoints (``qkv.training.checkpoint``), downloads (``qkv.data.paths``) and reports.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_open(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[IO[bytes]]:
    """``with atomic_open(path) as f: f.write(...)``: ``path`` is replaced only when the block ends without an
    exception (binary mode). ``f.name`` is the temporary file's path, e.g. to verify a checksum before the
    block ends; raising inside the block keeps the old ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the file gets the mode open() would give it
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see the module docstring)."""
    atomic_write(path, text.encode(encoding))


def _umask() -> int:
    """The process's file-creation mask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (not possible on every platform and file system: best effort)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
