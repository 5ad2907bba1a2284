"""Reading JSON Lines and Parquet files row by row, with errors that name the file and the line.

The dataset loaders, the replay target and export replay read the same formats. Each raises its own
error class (``error``) and writes locations its own way (``where``); the datasets keep the standard
``json`` parser (``loads``), which accepts NaN and integers of any size, the others use orjson.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

MakeError = Callable[[str], Exception]
Where = Callable[[Path, int], str]


def line_where(path: Path, number: int) -> str:
    return f"{path}: line {number}"


def iter_jsonl(
    path: Path,
    *,
    error: MakeError,
    loads: Callable[[str], Any] = orjson.loads,
    where: Where = line_where,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each line of a JSON Lines file; blank lines are skipped."""
    try:
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
