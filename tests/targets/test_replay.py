"""The `replay` target: outputs a user already has, matched by sample id (and attack)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.types import Message, Probe, TextPart
from safemlrm.targets.replay import ReplayFileError, ReplayTarget


def probe(sample_id: str, attack: str = "vanilla") -> Probe:
    return Probe(
        sample_key=f"k-{sample_id}",
        sample_id=sample_id,
        attack=attack,
        messages=(Message(role="user", content=(TextPart(text="q"),)),),
    )


def replay(tmp_path: Path, **params: Any) -> ReplayTarget:
    target = plugins.targets.create("replay", params, PluginContext(label="old-run", base_dir=tmp_path))
    assert isinstance(target, ReplayTarget)
    return target


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


async def test_jsonl_outputs_matched_by_id_and_missing_ids_are_errors(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "out.jsonl",
        [{"id": "a", "output": "<think>hm</think>No."}, {"id": 7, "output": "Sure, step 1"}],
    )
    target = replay(tmp_path, path="out.jsonl")
    gens = await target.generate([probe("7"), probe("a"), probe("zzz")])
    assert [g.text for g in gens] == ["Sure, step 1", "<think>hm</think>No.", ""]
    assert gens[0].ok and gens[0].target == "old-run" and gens[0].probe_key == probe("7").key
    assert gens[2].error == "no replayed output for sample zzz"
    assert len(target) == 2


async def test_csv_with_mapped_columns_reasoning_and_errors(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "out.csv",
        ["qid", "response", "thoughts", "err", "stop"],
        [["q1", "I can't help.", "It is harmful,\nso refuse", "", "stop"], ["q2", "", "", "HTTP 500", ""]],
    )
    target = replay(
        tmp_path,
        path=str(tmp_path / "out.csv"),
        id_column="qid",
        output_column="response",
        reasoning_column="thoughts",
        error_column="err",
        finish_reason_column="stop",
    )
    first, second = await target.generate([probe("q1"), probe("q2")])
    assert first.text == "I can't help." and first.reasoning == "It is harmful,\nso refuse"
    assert first.finish_reason == "stop" and first.ok
    assert second.error == "HTTP 500" and not second.ok


async def test_match_by_sample_and_attack(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "out.jsonl",
        [
            {"id": "s1", "attack": "vanilla", "output": "no"},
            {"id": "s1", "attack": "figstep", "output": "yes"},
        ],
    )
    target = replay(tmp_path, path="out.jsonl", attack_column="attack")
    gens = await target.generate([probe("s1", "figstep"), probe("s1", "vanilla"), probe("s1", "qr")])
    assert [g.text for g in gens[:2]] == ["yes", "no"]
    assert gens[2].error == "no replayed output for sample s1 (attack qr)"


async def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"id": ["a", "b"], "output": ["x", "y"], "reasoning": ["r", None]})
    pq.write_table(table, tmp_path / "out.parquet")
    target = replay(tmp_path, path="out.parquet", reasoning_column="reasoning")
    a, b = await target.generate([probe("a"), probe("b")])
    assert (a.text, a.reasoning, b.text, b.reasoning) == ("x", "r", "y", None)


def test_identity_follows_content_not_location(tmp_path: Path) -> None:
    rows = [{"id": "a", "output": "x"}]
    one = replay(tmp_path, path=str(write_jsonl(tmp_path / "one.jsonl", rows)))
    two = replay(tmp_path, path=str(write_jsonl(tmp_path / "two.jsonl", rows)))
    three = replay(tmp_path, path=str(write_jsonl(tmp_path / "three.jsonl", [{"id": "a", "output": "y"}])))
    assert one.identity() == two.identity() != three.identity()


@pytest.mark.parametrize(
    ("content", "params", "message"),
    [
        ('{"id": "a", "output": "x"}\n{"id": "b", "output": \n', {}, r"line 2: invalid JSON"),
        ('{"id": "a", "output": "x"}\n[1, 2]\n', {}, r"line 2: expected a JSON object, got list"),
        ('{"id": "a", "output": "x"}\n{"output": "y"}\n', {}, r"line 2: no column 'id'"),
        (
            '{"id": "a", "output": "x"}\n{"id": "a", "output": "y"}\n',
            {},
            r"line 2: duplicate sample 'a' \(first at line 1\)",
        ),
        ('{"id": "a", "text": "x"}\n', {}, r"line 1: no column 'output'"),
        ('{"id": "a", "output": null}\n', {}, r"line 1: empty output"),
        ('{"id": "", "output": "x"}\n', {}, r"line 1: empty sample id"),
        ('{"id": "a", "output": {"nested": 1}}\n', {}, r"line 1: column 'output' must be text, got dict"),
        ('{"id": "a", "output": "x"}\n', {"reasoning_column": "thinking"}, r"line 1: no column 'thinking'"),
        ("\n\n", {}, r"no rows"),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path: Path, content: str, params: dict[str, Any], message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ReplayFileError, match=message) as info:
        replay(tmp_path, path=str(path), **params)
    assert str(path) in str(info.value)


def test_bad_csv_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,output\na,fine\nb,too,many\n", encoding="utf-8")
    with pytest.raises(ReplayFileError, match=r"bad\.csv: line 3: more cells than the 2 header columns"):
        replay(tmp_path, path=str(path))
    path.write_bytes(b"id,output\na,\xff\xfe broken\n")
    with pytest.raises(ReplayFileError, match="not UTF-8"):
        replay(tmp_path, path=str(path))


def test_missing_file_unknown_extension_and_corrupt_parquet(tmp_path: Path) -> None:
    with pytest.raises(ReplayFileError, match=r"nope\.jsonl: replay file not found"):
        replay(tmp_path, path="nope.jsonl")
    (tmp_path / "out.txt").write_text('{"id": "a", "output": "x"}\n')
    with pytest.raises(ReplayFileError, match=r"out\.txt: unknown extension"):
        replay(tmp_path, path="out.txt")
    assert len(replay(tmp_path, path="out.txt", format="jsonl")) == 1
    pytest.importorskip("pyarrow")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ReplayFileError, match=r"broken\.parquet: not a readable Parquet file"):
        replay(tmp_path, path="broken.parquet")


# ---------------------------------------------------------------- where, JSON arrays, ids from positions


LONG_FILE = [
    {"id": "a", "model": "r1-7b", "run": 1, "output": "a by 7b"},
    {"id": "a", "model": "r1-8b", "run": 1, "output": "a by 8b"},
    {"id": "b", "model": "r1-7b", "run": 2, "output": "b by 7b"},
    {"id": "b", "model": "r1-8b", "run": 1, "output": "b by 8b"},
]


async def test_where_keeps_one_models_rows_of_a_long_file(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "all.jsonl", LONG_FILE)
    r7 = replay(tmp_path, path="all.jsonl", where={"model": "r1-7b"})
    r8 = replay(tmp_path, path="all.jsonl", where={"model": ["r1-8b", "r1-32b"]})
    assert [g.text for g in await r7.generate([probe("a"), probe("b")])] == ["a by 7b", "b by 7b"]
    assert [g.text for g in await r8.generate([probe("a"), probe("b")])] == ["a by 8b", "b by 8b"]
    assert r7.identity() != r8.identity()  # one file, two targets, two identities
    # a number in `where` matches a number in JSON and a CSV cell alike: values compare as text
    both = replay(tmp_path, path="all.jsonl", where={"model": "r1-7b", "run": 1})
    assert len(both) == 1
    write_csv(tmp_path / "all.csv", ["id", "model", "run", "output"], [[str(v) for v in r.values()] for r in LONG_FILE])
    assert len(replay(tmp_path, path="all.csv", where={"model": "r1-7b", "run": 1})) == 1


def test_where_on_a_missing_column_or_matching_nothing_is_a_clear_error(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "all.jsonl", LONG_FILE)
    with pytest.raises(ReplayFileError, match=r"all\.jsonl: column 'modle' \(where\) not found; the columns are: 'id'"):
        replay(tmp_path, path="all.jsonl", where={"modle": "r1-7b"})
    with pytest.raises(ReplayFileError, match=r"no row matches where .*values in the file: model: 'r1-7b', 'r1-8b'"):
        replay(tmp_path, path="all.jsonl", where={"model": "r1-70b"})


async def test_json_array_file(tmp_path: Path) -> None:
    (tmp_path / "out.json").write_text(json.dumps(LONG_FILE, indent=2), encoding="utf-8")
    target = replay(tmp_path, path="out.json", where={"model": "r1-8b"})
    assert [g.text for g in await target.generate([probe("b")])] == ["b by 8b"]
    (tmp_path / "dup.json").write_text(json.dumps(LONG_FILE, indent=1), encoding="utf-8")
    # errors name the line the item starts on
    with pytest.raises(ReplayFileError, match=r"dup\.json: line 8: duplicate sample 'a' \(first at line 2\)"):
        replay(tmp_path, path="dup.json")


async def test_a_file_without_ids_is_matched_by_row_position(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "noid.jsonl",
        [
            {"model": "m1", "output": "first of m1"},
            {"model": "m2", "output": "first of m2"},
            {"model": "m1", "output": "second of m1"},
        ],
    )
    target = replay(tmp_path, path="noid.jsonl", where={"model": "m1"})
    gens = await target.generate([probe("0"), probe("1"), probe("2")])
    assert [g.text for g in gens] == ["first of m1", "second of m1", ""]  # positions among the kept rows
    with pytest.raises(ReplayFileError, match=r"line 1: no column 'id'"):  # a named id column must exist
        replay(tmp_path, path="noid.jsonl", id_column="id")
    with pytest.raises(ReplayFileError, match=r"with attack_column every row needs a sample id"):
        replay(tmp_path, path="noid.jsonl", attack_column="model")
