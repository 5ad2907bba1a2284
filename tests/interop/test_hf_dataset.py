"""Hugging Face dataset export with a fixed schema, and exports read back as a `replay` target."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import orjson
import pytest
from tests.helpers import fake_config, harmful_rows, write_jsonl

from safemlrm.core.config import RunConfig
from safemlrm.core.store import load_run
from safemlrm.interop.hf_dataset import COLUMNS, to_hf_dataset
from safemlrm.interop.replay_source import ExportFileError, load_export_outputs
from safemlrm.pipeline.runner import Pipeline
from safemlrm.verbs.export import export_run

datasets = pytest.importorskip("datasets", reason="needs datasets: pip install 'safemlrm[datasets]'")


def run(config: RunConfig, run_dir: Path) -> None:
    asyncio.run(Pipeline(config, run_dir, base_dir=run_dir.parent, progress=False, reports=False).run())


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "data.jsonl", harmful_rows(8))


@pytest.fixture
def run_dir(data: Path, tmp_path: Path) -> Path:
    config = fake_config(data)
    targets = [t.model_dump() for t in config.targets]
    targets[1]["params"]["fail_ids"] = ["s3"]
    out = tmp_path / "run"
    run(fake_config(data, targets=targets), out)
    return out


def test_dataset_has_the_documented_schema_and_every_record(run_dir: Path) -> None:
    dataset = to_hf_dataset(run_dir)
    assert list(dataset.features) == list(COLUMNS)
    assert len(dataset) == 16
    records = {(r.probe.key, r.generation.target): r for r in load_run(run_dir).records}
    for row in dataset:
        record = records[(row["probe_key"], row["target"])]
        assert row["output"] == record.generation.text and row["reasoning"] == record.parsed.reasoning
        assert row["error"] == record.generation.error
        assert orjson.loads(row["messages"]) == [m.model_dump(mode="json") for m in record.probe.messages]
        judged = {(j["part"], j["judge"]): j for j in row["judgements"]}
        assert set(judged) == {(p.value, judge) for p, judge in record.judgements}
        for (part, judge), judgement in record.judgements.items():
            assert judged[(part.value, judge)]["score"] == judgement.score
            assert judged[(part.value, judge)]["rationale"] == judgement.rationale


def test_parquet_and_folder_exports_load_with_datasets(run_dir: Path, tmp_path: Path) -> None:
    parquet = export_run(run_dir, "hf", tmp_path / "out.parquet")
    folder = export_run(run_dir, "hf", tmp_path / "out_ds")
    from_parquet = datasets.Dataset.from_parquet(str(parquet))
    from_folder = datasets.load_from_disk(str(folder))
    assert from_parquet.features == from_folder.features == to_hf_dataset(run_dir).features
    assert from_parquet.to_list() == from_folder.to_list()
    assert not any(math.isnan(j["score"]) for row in from_folder for j in row["judgements"])


@pytest.mark.parametrize("fmt", ["hf", "hf-folder", "jsonl", "parquet"])
def test_an_export_replays_as_the_same_outputs(fmt: str, run_dir: Path, data: Path, tmp_path: Path) -> None:
    export = {
        "hf": lambda: export_run(run_dir, "hf", tmp_path / "e.parquet"),
        "hf-folder": lambda: export_run(run_dir, "hf", tmp_path / "e_ds"),
        "jsonl": lambda: export_run(run_dir, "jsonl", tmp_path / "e.jsonl"),
        "parquet": lambda: export_run(run_dir, "parquet", tmp_path / "e.pq.parquet"),
    }[fmt]()
    replay = fake_config(
        data,
        targets=[
            {
                "name": "reasoner",
                "kind": "replay",
                "base": None,
                "params": {"path": str(export), "format": "export", "source_target": "reasoner"},
            }
        ],
    )
    run(replay, tmp_path / "replayed")
    original = {r.probe.key: r for r in load_run(run_dir).records if r.generation.target == "reasoner"}
    replayed = load_run(tmp_path / "replayed").records
    assert len(replayed) == len(original) == 8
    for record in replayed:
        source = original[record.probe.key]
        assert record.generation.text == source.generation.text
        assert record.generation.error == source.generation.error
        assert record.parsed == source.parsed
        assert record.judgements == source.judgements  # same texts, same judge: same verdicts


def test_replay_export_errors_name_the_file(run_dir: Path, tmp_path: Path) -> None:
    export = export_run(run_dir, "jsonl", tmp_path / "e.jsonl")
    with pytest.raises(ExportFileError, match=r"several targets .*set `source_target`"):
        load_export_outputs(export, None)
    with pytest.raises(
        ExportFileError, match=r"no rows for target 'nope' \(targets in the file: base, reasoner\)"
    ):
        load_export_outputs(export, "nope")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "s0", "output": "x"}])
    with pytest.raises(
        ExportFileError, match=r"bad\.jsonl: line 1: not a safemlrm export: no column 'probe_key'"
    ):
        load_export_outputs(bad, None)
    one = write_jsonl(tmp_path / "one.jsonl", [{"probe_key": "k", "target": "t", "output": "x"}])
    assert load_export_outputs(one, None) == {
        "k": {"text": "x", "reasoning": None, "error": None, "finish_reason": None}
    }
