"""Reading JSON Lines, JSON arrays and Parquet files row by row, with errors that name the file and the line.

The dataset loaders, the replay target and export replay read the same formats. A file whose first
non-blank character is `[` is read as one JSON array of objects (each numbered by the line it starts
on), any other as JSON Lines, whatever its extension. Each raises its own
error class (``error``) and writes locations its own way (``where``); the datasets keep the standard
``json`` parser (``loads``), which accepts NaN and integers of any size, the others use orjson.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

MakeError = Callable[[str], Exception]
Where = Callable[[Path, int], str]


def line_where(path: Path, number: int) -> str:
    return f"{path}: line {number}"


def is_json_array(path: Path) -> bool:
    """Whether the file is a JSON array of objects: its first non-blank characters are `[` then `{` or `]`
    (a JSON Lines file whose first line is a list is still JSON Lines, and fails as such)."""
    with path.open("rb") as handle:
        head = handle.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()
        while len(head) < 2:
            more = handle.read(4096)
            if not more:
                break
            head = (head + more).lstrip()
    if not head.startswith(b"["):
        return False
    rest = head[1:].lstrip()
    return rest.startswith((b"{", b"]")) or not rest


_BLANK = re.compile(r"\s*")


def _skip_blank(text: str, pos: int) -> int:
    match = _BLANK.match(text, pos)
    return match.end() if match else pos


def _iter_json_array(path: Path, *, error: MakeError, where: Where) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line where the item starts, object) for each item of a JSON array of objects."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    decoder = json.JSONDecoder()
    pos = _skip_blank(text, 0) + 1  # past the `[`
    line, counted = 1, 0
    first = True
    while True:
        pos = _skip_blank(text, pos)
        if text.startswith("]", pos):
            end = _skip_blank(text, pos + 1)
            if end < len(text):
                line += text.count("\n", counted, end)
                raise error(f"{where(path, line)}: invalid JSON: extra data after the closing ']' of the array")
            return
        if not first:
            if not text.startswith(",", pos):
                line += text.count("\n", counted, pos)
                counted = pos
                raise error(f"{where(path, line)}: invalid JSON array: expected ',' or ']'")
            pos = _skip_blank(text, pos + 1)
        first = False
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise error(f"{where(path, exc.lineno)}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(value, dict):
            raise error(f"{where(path, line)}: expected a JSON object, got {type(value).__name__}")
        yield line, value
        pos = end


def iter_jsonl(
    path: Path,
    *,
    error: MakeError,
    loads: Callable[[str], Any] = orjson.loads,
    where: Where = line_where,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each line of a JSON Lines file (blank lines are skipped), or for each
    item of a JSON array of objects (numbered by the line it starts on)."""
    try:
        if is_json_array(path):
            yield from _iter_json_array(path, error=error, where=where)
            return
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    value = loads(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise error(f"{where(path, number)}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
                except json.JSONDecodeError as exc:  # orjson's error is a subclass
                    raise error(f"{where(path, number)}: invalid JSON: {exc.msg} (column {exc.colno})") from None
                if not isinstance(value, dict):
                    raise error(f"{where(path, number)}: expected a JSON object, got {type(value).__name__}")
                yield number, value
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from exc


def iter_parquet(path: Path, *, error: MakeError) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row) for each row of a Parquet file, read a batch at a time."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(f"reading {path} needs pyarrow: pip install 'safemlrm[parquet]'") from exc
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow has its own error types for corrupt files
        raise error(f"{path}: not a readable Parquet file: {exc}") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            number += 1
            yield number, row
