"""Where datasets are read from: ``--data-dir``, then ``$QKV_DATA``, then the user cache.

Every dataset lives in a folder named after it (``multi30k/``, ``ptb/``, ...) under one of these roots.
On a machine with internet, files that have a canonical public URL are downloaded into the cache
(``$QKV_CACHE``, else ``$XDG_CACHE_HOME/qkv``, else ``~/.cache/qkv``) and their content checksum is
verified. ``QKV_OFFLINE=1`` turns downloading off. A file that cannot be found or fetched is a
:class:`~qkv.errors.UserError` that names the file, every place searched, and where to put it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qkv.errors import UserError


def cache_dir() -> Path:
    """The user cache that downloads go to."""
    if os.environ.get("QKV_CACHE"):
        return Path(os.environ["QKV_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "qkv"


def data_roots(data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The roots searched, in order, each with the reason it is searched."""
    roots: list[tuple[str, Path]] = []
    if data_dir:
        roots.append(("--data-dir", Path(data_dir).expanduser()))
    if os.environ.get("QKV_DATA"):
        roots.append(("$QKV_DATA", Path(os.environ["QKV_DATA"]).expanduser()))
    roots.append(("cache", cache_dir()))
    return roots


def find(dataset: str, name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first existing ``ROOT/dataset/name``, or None."""
    for _, root in data_roots(data_dir):
        path = root / dataset / name
        if path.exists():
            return path
    return None


def content_sha256(path: Path) -> str:
    """SHA-256 of a file's content, decompressed first when it is gzip (robust to recompression)."""
    opener = gzip.open if path.suffix == ".gz" else open
    digest = hashlib.sha256()
    with opener(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, sha256: str | None = None, timeout: float = 30.0) -> Path:
    """Fetch ``url`` into ``dest`` (atomically) and verify its content checksum when one is known."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, suffix=".part" + dest.suffix)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        if sha256 is not None and (got := content_sha256(tmp)) != sha256:
            raise UserError(f"checksum mismatch for {url}: expected content sha256 {sha256}, got {got}")
        os.replace(tmp, dest)
    except OSError as err:
        raise UserError(f"could not download {url} to {dest}: {err}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def locate(
    dataset: str,
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
) -> Path:
    """Path of ``dataset/name``: found under a root, or downloaded into the cache, or a UserError."""
    path = find(dataset, name, data_dir)
    if path is not None:
        return path
    offline = os.environ.get("QKV_OFFLINE", "") not in ("", "0")
    if url is not None and not offline:
        try:
            return download(url, cache_dir() / dataset / name, sha256)
        except UserError as err:
            fetch_note = f"; downloading failed ({err})"
    else:
        fetch_note = f"; download it from {url}" if url else ""
    searched = ", ".join(f"{why} {root / dataset / name}" for why, root in data_roots(data_dir))
    raise UserError(
        f"missing data file {dataset}/{name} (searched: {searched}){fetch_note}",
        hint=f"put the file at $QKV_DATA/{dataset}/{name}, or pass --data-dir DIR holding {dataset}/{name}",
    )


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset as ``qkv data`` lists it: ``count(path)`` gives example counts per split from the
    first required file's location (quick: it reads no more than it must)."""

    name: str
    task: str
    folder: str
    files: tuple[str, ...]
    source: str
    licence: str
    count: Callable[[Path], dict[str, int]]
    unit: str = "examples"
    embedded: Path | None = None  # data shipped with an installed package (no folder lookup)

    def where(self, data_dir: str | os.PathLike | None = None) -> Path | None:
        """The folder (or embedded file) the dataset is read from, or None when any file is missing."""
        if self.embedded is not None:
            return self.embedded if self.embedded.exists() else None
        found = [find(self.folder, f, data_dir) for f in self.files]
        if any(p is None for p in found):
            return None
        return found[0].parent  # type: ignore[union-attr]
