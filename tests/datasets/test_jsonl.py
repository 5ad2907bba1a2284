from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.hashing import file_sha256
from safemlrm.core.types import Sample
from safemlrm.datasets._common import DatasetError


def load(tmp_path: Path, params: dict[str, Any]) -> list[Sample]:
    dataset = plugins.datasets.create("jsonl", params, PluginContext(label="mine", base_dir=tmp_path))
    return list(dataset.load())


def write(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_maps_columns_images_and_metadata(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (8, 8), "red").save(tmp_path / "imgs" / "a.png")
    write(
        tmp_path / "data.jsonl",
        [
            {"qid": "a", "goal": "do harm", "ask": "please", "pic": "imgs/a.png", "scenario": "Fraud", "extra": 3},
            {"qid": "b", "goal": "say hi", "safe": "yes", "metadata": {"note": "n"}},
        ],
    )
    columns = {"id": "qid", "instruction": "goal", "prompt": "ask", "image": "pic", "category": "scenario"}
    columns["benign"] = "safe"
    # an explicit column must exist in every row: the second row lacks `ask`, `pic`, `scenario`
    with pytest.raises(DatasetError, match=r"data.jsonl:2: no column 'ask'"):
        load(tmp_path, {"path": "data.jsonl", "columns": columns})
    first, second = load(
        tmp_path,
        {"path": "data.jsonl", "columns": {"id": "qid", "instruction": "goal", "image": "pic", "benign": "safe"}},
    )
    assert first.id == "a" and first.instruction == "do harm" and first.prompt == "do harm"
    assert first.dataset == "mine"
    assert first.metadata == {"ask": "please", "scenario": "Fraud", "extra": 3}
    assert first.images[0].sha256 == file_sha256(str(tmp_path / "imgs" / "a.png"))
    assert not first.benign
    assert second.benign and second.images == () and second.metadata == {"note": "n"}


def test_optional_column_absent_from_every_row_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "d.jsonl", [{"prompt": "x", "safe": True}, {"prompt": "y"}])
    assert [s.benign for s in load(tmp_path, {"path": "d.jsonl", "columns": {"benign": "safe"}})] == [True, False]
    with pytest.raises(DatasetError, match=r"column 'is_safe' \(columns.benign\) not found.*'prompt', 'safe'"):
        load(tmp_path, {"path": "d.jsonl", "columns": {"benign": "is_safe"}})


def test_defaults_and_row_number_ids(tmp_path: Path) -> None:
    write(tmp_path / "d.jsonl", [{"prompt": "p0"}, "", {"instruction": "i1", "category": "C"}])
    samples = load(tmp_path, {"path": "d.jsonl", "default_category": "Misc"})
    assert [(s.id, s.instruction, s.prompt, s.category) for s in samples] == [
        ("0", "p0", "p0", "Misc"),
        ("1", "i1", "i1", "C"),
    ]


def test_category_filter(tmp_path: Path) -> None:
    write(tmp_path / "d.jsonl", [{"id": str(i), "prompt": "p", "category": c} for i, c in enumerate("ABA")])
    assert [s.id for s in load(tmp_path, {"path": "d.jsonl", "categories": ["a"]})] == ["0", "2"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (['{"id": "a", "prompt": "x"}', '{"id": "b", "prompt": '], r"d.jsonl:2: invalid JSON"),
        (['["a list"]'], r"d.jsonl:1: expected a JSON object, got list"),
        ([{"id": "a", "text": "x"}], r"d.jsonl:1: neither 'instruction' nor 'prompt' has text.*'id', 'text'"),
        ([{"id": "a", "prompt": "x"}, {"id": "a", "prompt": "y"}], r"duplicate sample id 'a' \(items 1 and 2\)"),
        ([{"prompt": "x", "benign": "maybe"}], r"d.jsonl:1: field 'benign': expected a boolean"),
        ([{"prompt": "x", "image": "nope.png"}], r"d.jsonl:1: image not found: .*nope.png"),
        ([{"prompt": "x", "image": "../outside.png"}], r"d.jsonl:1: image path '../outside.png' points outside"),
        ([{"prompt": "x", "image": 5}], r"d.jsonl:1: image must be a path or a list of paths, got int"),
        ([{"prompt": {"nested": 1}}], r"d.jsonl:1: field 'prompt' must be text, got dict"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, rows: list[Any], message: str) -> None:
    write(tmp_path / "d.jsonl", rows)
    with pytest.raises(DatasetError, match=message):
        load(tmp_path, {"path": "d.jsonl"})


def test_corrupt_and_unreadable_images(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    write(tmp_path / "d.jsonl", [{"prompt": "x", "image": "bad.png"}])
    with pytest.raises(DatasetError, match=r"d.jsonl:1: corrupt or unreadable image .*bad.png"):
        load(tmp_path, {"path": "d.jsonl"})
    (tmp_path / "text.png").write_text("hello")
    write(tmp_path / "d.jsonl", [{"prompt": "x", "image": "text.png"}])
    with pytest.raises(DatasetError, match=r"d.jsonl:1: not a readable image: .*text.png"):
        load(tmp_path, {"path": "d.jsonl"})
    Image.new("RGB", (64, 64), "blue").save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    write(tmp_path / "d.jsonl", [{"prompt": "x", "image": "cut.png"}])
    with pytest.raises(DatasetError, match=r"d.jsonl:1: .*cut.png"):
        load(tmp_path, {"path": "d.jsonl"})
    (tmp_path / "dir.png").mkdir()
    write(tmp_path / "d.jsonl", [{"prompt": "x", "image": "dir.png"}])
    with pytest.raises(DatasetError, match=r"image path is not a file"):
        load(tmp_path, {"path": "d.jsonl"})


def test_image_root_and_outside_root(tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    (tmp_path / "data").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "pics" / "x.png")
    write(tmp_path / "data" / "d.jsonl", [{"prompt": "x", "image": "x.png"}])
    (sample,) = load(tmp_path, {"path": "data/d.jsonl", "image_root": "pics"})
    assert sample.images[0].path == str((tmp_path / "pics" / "x.png").resolve())
    write(tmp_path / "data" / "d.jsonl", [{"prompt": "x", "image": "../pics/x.png"}])
    with pytest.raises(DatasetError, match="outside the dataset root"):
        load(tmp_path, {"path": "data/d.jsonl"})
    (sample,) = load(tmp_path, {"path": "data/d.jsonl", "allow_outside_root": True})
    assert sample.images


def test_missing_file_fails_at_load(tmp_path: Path) -> None:
    dataset = plugins.datasets.create("jsonl", {"path": "absent.jsonl"}, PluginContext(base_dir=tmp_path))
    with pytest.raises(DatasetError, match=r"absent.jsonl: JSONL file not found"):
        dataset.load()


def test_a_json_array_file_loads_like_json_lines(tmp_path: Path) -> None:
    rows = [{"instruction": "do harm", "category": "Fraud"}, {"instruction": "say hi", "benign": True}]
    (tmp_path / "data.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    samples = load(tmp_path, {"path": "data.json"})
    assert [(s.id, s.instruction, s.benign) for s in samples] == [("0", "do harm", False), ("1", "say hi", True)]
    (tmp_path / "bad.json").write_text('[\n{"instruction": "a"},\n"text"\n]', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad.json:3: expected a JSON object, got str"):
        load(tmp_path, {"path": "bad.json"})
