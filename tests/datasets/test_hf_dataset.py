from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.datasets._common import DatasetError

hf_datasets = pytest.importorskip("datasets")


def test_saved_dataset_with_image_feature(tmp_path: Path) -> None:
    features = hf_datasets.Features(
        {"uid": hf_datasets.Value("string"), "goal": hf_datasets.Value("string"), "img": hf_datasets.Image()}
    )
    data = hf_datasets.Dataset.from_dict(
        {
            "uid": ["a", "b"],
            "goal": ["g1", "g2"],
            "img": [Image.new("RGB", (6, 6), "red"), Image.new("RGB", (6, 6), "blue")],
        },
        features=features,
    )
    hf_datasets.DatasetDict({"test": data}).save_to_disk(str(tmp_path / "saved"))
    ctx = PluginContext(label="hfdata", run_dir=tmp_path / "run", base_dir=tmp_path)
    params = {"path": "saved", "split": "test", "columns": {"id": "uid", "instruction": "goal", "image": "img"}}
    samples = list(plugins.datasets.create("hf", params, ctx).load())
    assert [(s.id, s.instruction, s.dataset) for s in samples] == [("a", "g1", "hfdata"), ("b", "g2", "hfdata")]
    image_path = Path(samples[0].images[0].path)
    assert image_path.parent == tmp_path / "run" / "assets"
    assert Image.open(image_path).getpixel((0, 0)) == (255, 0, 0)
    with pytest.raises(DatasetError, match=r"no split 'train'; the splits are: test"):
        plugins.datasets.create("hf", {**params, "split": "train"}, ctx).load()
    with pytest.raises(DatasetError, match=r"column 'goals' \(columns.instruction\) not found"):
        plugins.datasets.create("hf", {**params, "columns": {"instruction": "goals"}}, ctx).load()


def test_local_data_files_folder(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "train.jsonl").write_text('{"prompt": "p1", "category": "C"}\n', encoding="utf-8")
    samples = list(plugins.datasets.create("hf", {"path": "files"}, PluginContext(base_dir=tmp_path)).load())
    assert [(s.id, s.prompt, s.category) for s in samples] == [("0", "p1", "C")]


def test_missing_local_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="dataset folder not found"):
        plugins.datasets.create("hf", {"path": "./nowhere"}, PluginContext(base_dir=tmp_path)).load()
