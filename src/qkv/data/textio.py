"""Reading dataset files: plain or gzip text, line-aligned pairs, CSV — with clear errors.

Everything a user can get wrong in a data file becomes a :class:`~qkv.errors.UserError` naming the file
and, where there is one, the line: bytes that do not decode (and the encoding expected), empty files,
parallel files of different lengths, lines over a maximum length (cut only when asked, with a count
of how many were cut), CSV files without the expected columns, gzip files that are not gzip, and files
whose lines end in CR alone (old Mac OS), which would otherwise read as a single line.

One example (a line, a CSV field checked for length) holds at most :data:`MAX_LINE_CHARS` characters
unless a task's ``max_chars`` option says otherwise: training a BPE tokenizer takes time that grows with
the square of the longest run of letters, so a megabyte on one line would run for many minutes with no
message. A UTF-8 byte-order mark at the start of a file is dropped (editors on Windows write one; kept, it
would end up in the first example, or in the first column name of a CSV header).
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from qkv.errors import UserError

log = logging.getLogger("qkv.data")
csv.field_size_limit(1 << 28)
MAX_LINE_CHARS = 100_000  # the longest example read without asking (AESLC's longest email: 39,001)


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, gunzipped when the name ends in ``.gz``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None
    if path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise UserError(f"{path}: not a valid gzip file ({err})") from None
    return raw


def decode(data: bytes, path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """Decode ``data`` read from ``path``; a bad byte is reported with its line number. A leading byte-order
    mark is dropped; line ends that are CR alone are an error (the file would read as one line)."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        bad = data[err.start : err.start + 4]
        raise UserError(
            f"{path}:{line}: bytes {bad!r} are not valid {encoding} "
            f"(the file must be {encoding}-encoded text; re-encode it, e.g. with iconv)"
        ) from None
    except LookupError:
        raise UserError(f"{path}: unknown encoding {encoding!r}") from None
    text = text.removeprefix("\ufeff")
    if "\r" in text and "\n" not in text:
        raise UserError(
            f"{path}: its lines end in CR alone (old Mac OS line ends), so it would read as one "
            f"line; convert them first, e.g. tr '\\r' '\\n' < {path} > converted.txt"
        )
    return text


def split_lines(text: str) -> list[str]:
    """Split on newlines only (not on the other characters ``str.splitlines`` treats as breaks)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def check_lengths(
    texts: list[str],
    where: Callable[[int], str],
    max_chars: int | None,
    truncate: bool = False,
) -> list[str]:
    """Enforce ``max_chars`` (None: :data:`MAX_LINE_CHARS`) on every text; ``where(i)`` names the file
    and line of text ``i``.

    Without ``truncate`` the first over-long text is an error (saying how many are over); with it,
    over-long texts are cut and the count is logged on the ``qkv.data`` logger.
    """
    default = max_chars is None
    limit = MAX_LINE_CHARS if max_chars is None else max_chars
    over = [i for i, t in enumerate(texts) if len(t) > limit]
    if not over:
        return texts
    first = over[0]
    if not truncate and default:
        raise UserError(
            f"{where(first)}: {len(texts[first]):,} characters, more than qkv's limit of {MAX_LINE_CHARS:,} for "
            f"one example ({len(over)} of {len(texts)} are over; to read them, set the task option max_chars "
            "(summarization: max_src_chars) higher, or truncate: true)"
        )
    if not truncate:
        raise UserError(
            f"{where(first)}: {len(texts[first])} characters, more than the maximum {limit} "
            f"({len(over)} of {len(texts)} are over; raise the maximum or ask to truncate)"
        )
    log.warning("%s: truncated %d of %d texts to %d characters", where(first), len(over), len(texts), limit)
    out = list(texts)
    for i in over:
        out[i] = out[i][:limit]
    return out


def read_lines(
    path: str | os.PathLike,
    *,
    encoding: str = "utf-8",
    max_chars: int | None = None,
    truncate: bool = False,
) -> list[str]:
    """Lines of a text file (``.gz`` read transparently), without line ends. Empty files are errors."""
    path = Path(path)
    lines = split_lines(decode(read_bytes(path), path, encoding))
    if not lines or all(not line.strip() for line in lines):
        raise UserError(f"{path}: empty file (expected one example per line)")
    return check_lengths(lines, lambda i: f"{path}:{i + 1}", max_chars, truncate)


def read_parallel(
    src_path: str | os.PathLike,
    tgt_path: str | os.PathLike,
    *,
    encoding: str = "utf-8",
    max_chars: int | None = None,
    truncate: bool = False,
) -> tuple[list[str], list[str]]:
    """Two line-aligned files; different line counts are an error naming both files and counts."""
    src = read_lines(src_path, encoding=encoding, max_chars=max_chars, truncate=truncate)
    tgt = read_lines(tgt_path, encoding=encoding, max_chars=max_chars, truncate=truncate)
    if len(src) != len(tgt):
        raise UserError(
            f"parallel files differ in length: {src_path} has {len(src)} lines, "
            f"{tgt_path} has {len(tgt)} lines (line {min(len(src), len(tgt)) + 1} has no partner)"
        )
    return src, tgt


def read_csv(
    path: str | os.PathLike, columns: Sequence[str], *, encoding: str = "utf-8"
) -> tuple[list[dict[str, str]], list[int]]:
    """Rows of a CSV file with a header (only ``columns`` kept) and the line on which each row starts.

    A missing expected column is an error naming the columns that were found."""
    path = Path(path)
    text = decode(read_bytes(path), path, encoding)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in columns if c not in header]
    if missing:
        raise UserError(
            f"{path}:1: CSV header lacks column(s) {', '.join(missing)} "
            f"(found: {', '.join(header) if header else 'no header'}; expected: {', '.join(columns)})"
        )
    rows: list[dict[str, str]] = []
    starts: list[int] = []
    try:
        start = reader.line_num + 1
        for row in reader:
            if any(row.get(c) is None for c in columns):
                raise UserError(f"{path}:{start}: row has fewer fields than the header")
            rows.append({c: row[c] for c in columns})
            starts.append(start)
            start = reader.line_num + 1
    except csv.Error as err:
        raise UserError(f"{path}:{reader.line_num}: malformed CSV ({err})") from None
    if not rows:
        raise UserError(f"{path}: empty file (a header but no rows)")
    return rows, starts
