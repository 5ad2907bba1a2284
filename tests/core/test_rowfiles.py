"""The shared JSON Lines and Parquet readers: row numbers, the caller's error class and locations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safemlrm.core.rowfiles import iter_jsonl, iter_parquet


class MyError(ValueError):
    pass


def test_jsonl_rows_keep_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"a": 2}\n', encoding="utf-8")
    assert list(iter_jsonl(path, error=MyError)) == [(1, {"a": 1}), (4, {"a": 2})]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a": 1}\n{"a": \n', r"rows.jsonl: line 2: invalid JSON: .*\(column \d+\)"),
        (b'{"a": 1}\n[1]\n', r"rows.jsonl: line 2: expected a JSON object, got list"),
        (b'{"a": "\xff"}\n', r"rows.jsonl: line 1: not UTF-8 text"),
    ],
)
def test_bad_jsonl_raises_the_callers_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(content)
    with pytest.raises(MyError, match=message):
        list(iter_jsonl(path, error=MyError))
    with pytest.raises(MyError, match=r"cannot read"):
        list(iter_jsonl(tmp_path, error=MyError))


def test_the_parser_and_location_style_are_the_callers(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": NaN}\n{"a": \n', encoding="utf-8")
    rows = iter_jsonl(path, error=MyError, loads=json.loads, where=lambda p, n: f"{p}:{n}")
    number, row = next(rows)
    assert number == 1 and row["a"] != row["a"]  # the standard parser accepts NaN, orjson does not
    with pytest.raises(MyError, match=r"rows.jsonl:2: invalid JSON"):
        next(rows)
    with pytest.raises(MyError, match=r"rows.jsonl: line 1: invalid JSON"):
        list(iter_jsonl(path, error=MyError))


def test_parquet_rows_are_numbered_and_a_corrupt_file_is_the_callers_error(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"a": [1, 2, 3]}), path)
    assert list(iter_parquet(path, error=MyError)) == [(1, {"a": 1}), (2, {"a": 2}), (3, {"a": 3})]
    path.write_bytes(b"PAR1 not parquet")
    with pytest.raises(MyError, match=r"rows.parquet: not a readable Parquet file"):
        list(iter_parquet(path, error=MyError))


def test_a_json_array_is_read_with_the_line_each_item_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text('\ufeff\n [\n  {"a": 1},\n  {"a": [1,\n 2]}, {"a": 3}\n]\n', encoding="utf-8")
    assert list(iter_jsonl(path, error=MyError)) == [(3, {"a": 1}), (4, {"a": [1, 2]}), (5, {"a": 3})]
    path.write_text("[]", encoding="utf-8")
    assert list(iter_jsonl(path, error=MyError)) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[\n{"a": 1},\n{"a": }\n]', r"rows.json: line 3: invalid JSON: Expecting value"),
        ('[\n{"a": 1}\n{"a": 2}\n]', r"rows.json: line 3: invalid JSON array: expected ',' or '\]'"),
        ('[\n{"a": 1},\n7\n]', r"rows.json: line 3: expected a JSON object, got int"),
        ('[\n{"a": 1},\n', r"rows.json: line 3: invalid JSON: Expecting value"),
    ],
)
def test_bad_json_array_names_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "rows.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(MyError, match=message):
        list(iter_jsonl(path, error=MyError))


def test_json_lines_whose_first_line_is_a_list_stay_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('[1, 2]\n{"a": 1}\n', encoding="utf-8")
    with pytest.raises(MyError, match=r"rows.jsonl: line 1: expected a JSON object, got list"):
        list(iter_jsonl(path, error=MyError))
    path.write_text('[{"a": 1}]\n[{"a": 2}]\n', encoding="utf-8")  # JSON Lines of arrays: not one array
    with pytest.raises(MyError, match=r"rows.jsonl: line 2: invalid JSON: extra data after the closing"):
        list(iter_jsonl(path, error=MyError))
