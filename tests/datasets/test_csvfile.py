from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.types import Sample
from safemlrm.datasets._common import DatasetError


def load(tmp_path: Path, params: dict[str, Any]) -> list[Sample]:
    return list(plugins.datasets.create("csv", params, PluginContext(base_dir=tmp_path)).load())


def test_column_mapping_images_and_line_numbers(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    Image.new("RGB", (4, 4), "white").save(tmp_path / "b.png")
    (tmp_path / "d.csv").write_text(
        'key,goal,kind,pics,safe\nk1,"multi\nline goal",Fraud,a.png;b.png,false\nk2,second,Sex,,true\n',
        encoding="utf-8",
    )
    columns = {"id": "key", "instruction": "goal", "category": "kind", "image": "pics", "benign": "safe"}
    first, second = load(tmp_path, {"path": "d.csv", "columns": columns, "image_separator": ";"})
    assert first.id == "k1" and first.instruction == "multi\nline goal" and len(first.images) == 2
    assert (second.id, second.category, second.benign, second.images) == ("k2", "Sex", True, ())
    (tmp_path / "d.csv").write_text("key,goal\nk1,x\nk2,\nk3,y\n", encoding="utf-8")
    # the empty goal is on line 3 (line 1 is the header)
    with pytest.raises(DatasetError, match=r"d.csv:3: neither 'goal' nor 'prompt' has text"):
        load(tmp_path, {"path": "d.csv", "columns": {"id": "key", "instruction": "goal"}})


def test_wrong_column_name_lists_the_columns(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("id,question,topic\n1,q,t\n", encoding="utf-8")
    dataset = plugins.datasets.create(
        "csv", {"path": "d.csv", "columns": {"prompt": "questoin"}}, PluginContext(base_dir=tmp_path)
    )
    with pytest.raises(
        DatasetError, match=r"column 'questoin' \(columns.prompt\) not found; .*'id', 'question', 'topic'"
    ):
        dataset.load()


def test_malformed_rows(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("id,prompt\n1,ok\n2,too,many\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"d.csv:3: row has 3 cells, the header has 2"):
        load(tmp_path, {"path": "d.csv"})
    (tmp_path / "d.csv").write_bytes(b"id,prompt\n1,\xff\xfe\n")
    with pytest.raises(DatasetError, match=r"d.csv: not UTF-8"):
        load(tmp_path, {"path": "d.csv"})
    (tmp_path / "d.csv").write_text("id,prompt,image\n1,x,missing.jpg\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"d.csv:2: image not found"):
        load(tmp_path, {"path": "d.csv"})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"nothing.csv: CSV file not found"):
        load(tmp_path, {"path": "nothing.csv"})
