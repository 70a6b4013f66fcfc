"""Where datasets are read from: ``data_dir`` alone when given, else ``$QKV_DATA``, then the user cache.

Every dataset lives in a folder named after it (``multi30k/``, ``ptb/``, ...) under one of these roots, and
all its files are read from **one** folder (:func:`dataset_folder`): ``data_dir/DATASET`` when ``data_dir``
(``task.data_dir``, ``--data-dir``) is given -- a file missing there is an error, never taken from
elsewhere -- otherwise the first root that has a ``DATASET/`` folder. Two forms of one file in that folder
(``train.csv`` and ``train.csv.gz``) are an error, not a guess.
On a machine with internet, files that have a canonical public URL are downloaded into the cache
(``$QKV_CACHE``, else ``$XDG_CACHE_HOME/qkv``, else ``~/.cache/qkv``) and their content checksum is
verified. ``QKV_OFFLINE=1`` turns downloading off. A file that cannot be found or fetched is a
:class:`~qkv.errors.UserError` that names the file, the folder it belongs in, what that folder holds, and
where to put it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qkv.atomic import atomic_open
from qkv.errors import UserError


def cache_dir() -> Path:
    """The user cache that downloads go to."""
    if os.environ.get("QKV_CACHE"):
        return Path(os.environ["QKV_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "qkv"


def data_roots(data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The roots a dataset may be read from, in order, each with the reason it is there.

    With ``data_dir`` (``task.data_dir``, ``--data-dir``) that folder is the only root: a user's own data is
    never completed with files from ``$QKV_DATA`` or the cache."""
    if data_dir:
        return [("data_dir", Path(data_dir).expanduser())]
    roots: list[tuple[str, Path]] = []
    if os.environ.get("QKV_DATA"):
        roots.append(("$QKV_DATA", Path(os.environ["QKV_DATA"]).expanduser()))
    roots.append(("cache", cache_dir()))
    return roots


def dataset_folder(dataset: str, data_dir: str | os.PathLike | None = None) -> tuple[str, Path]:
    """``(why, ROOT/dataset)``: the one folder every file of ``dataset`` is read from.

    That is ``data_dir/dataset`` when ``data_dir`` is given; else the first root that has a ``dataset/``
    folder; else the cache's, where downloads go. Files are never gathered from two places."""
    roots = data_roots(data_dir)
    for why, root in roots:
        if (root / dataset).is_dir():
            return why, root / dataset
    why, root = roots[-1]
    return why, root / dataset


def _one_of(folder: Path, names: tuple[str, ...]) -> Path | None:
    """The one of ``names`` (forms of the same file, e.g. ``train.csv`` and ``train.csv.gz``) present in
    ``folder``, or None; two present is a UserError rather than a guess."""
    present = [folder / n for n in names if (folder / n).exists()]
    if len(present) > 1:
        raise UserError(
            f"{folder}: both {' and '.join(p.name for p in present)} are present (two forms of the same file)",
            hint="keep one of them, so that it is clear which one is read",
        )
    return present[0] if present else None


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
    try:  # the suffix keeps ".gz" last, so content_sha256 reads a gzip download decompressed
        with atomic_open(dest, suffix=".part" + dest.suffix) as out, urllib.request.urlopen(url, timeout=timeout) as r:
            shutil.copyfileobj(r, out)
            out.flush()
            if sha256 is not None and (got := content_sha256(Path(out.name))) != sha256:
                raise UserError(f"checksum mismatch for {url}: expected content sha256 {sha256}, got {got}")
    except OSError as err:
        raise UserError(f"could not download {url} to {dest}: {err}") from None
    return dest


def locate(
    dataset: str,
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    also: tuple[str, ...] = (),
) -> Path:
    """Path of ``dataset/name`` (or of one of its other forms ``also``) in the dataset's one folder
    (:func:`dataset_folder`); when that folder is the cache, a file with a ``url`` is downloaded there.
    Anything else is a UserError naming the folder, the missing file and what the folder does hold."""
    why, folder = dataset_folder(dataset, data_dir)
    path = _one_of(folder, (name, *also))
    if path is not None:
        return path
    offline = os.environ.get("QKV_OFFLINE", "") not in ("", "0")
    fetch_note = ""
    if why == "cache" and url is not None and not offline:
        try:
            return download(url, folder / name, sha256)
        except UserError as err:
            fetch_note = f"; downloading failed ({err})"
    elif why == "cache" and url:
        fetch_note = f"; download it from {url}"
    forms = " / ".join((name, *also))
    raise UserError(
        f"missing data file {dataset}/{forms} in {folder} ({why}){_holds(folder)}{fetch_note}",
        hint=_missing_hint(why, folder, name),
    )


def _holds(folder: Path, limit: int = 8) -> str:
    """What ``folder`` holds, for an error message about a file missing from it."""
    if not folder.is_dir():
        return "; that folder does not exist"
    names = sorted(p.name for p in folder.iterdir())
    if not names:
        return "; that folder is empty"
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return "; that folder holds " + ", ".join(names[:limit]) + more


def _missing_hint(why: str, folder: Path, name: str) -> str:
    if why == "data_dir":
        return (
            f"with data_dir every file of a dataset is read from {folder} and nowhere else: "
            f"put {name} there too, or leave data_dir unset to use $QKV_DATA or the cache"
        )
    if why == "$QKV_DATA":
        return (
            f"put {name} in {folder} (the first folder holding {folder.name}/ is the only one read), "
            f"or move {folder} away to use the cache"
        )
    return f"put the file at $QKV_DATA/{folder.name}/{name}, or pass --data-dir DIR holding {folder.name}/{name}"


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
        """The folder (or embedded file) the dataset is read from, or None when any file is missing there."""
        if self.embedded is not None:
            return self.embedded if self.embedded.exists() else None
        folder = dataset_folder(self.folder, data_dir)[1]
        return folder if all((folder / f).exists() for f in self.files) else None
