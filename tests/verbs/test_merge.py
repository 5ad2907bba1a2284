"""Sharded runs merged into one: the same records, in the same order, and the same report as one run."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from safemlrm.analysis.summary import build_summary
from safemlrm.core.config import RunConfig
from safemlrm.core.shard import Shard
from safemlrm.core.store import STORE_FILE, RunStore, load_run
from safemlrm.core.types import ImageRef, Message, Probe, TextPart
from safemlrm.pipeline.runner import Pipeline, RunResult
from safemlrm.verbs import cli
from safemlrm.verbs.merge import MergeError, _copy_assets, _rewrite_image_paths, merge_runs
from tests.helpers import fake_config, harmful_rows, write_jsonl


def run(config: RunConfig, run_dir: Path, shard: Shard | None = None) -> RunResult:
    pipeline = Pipeline(config, run_dir, base_dir=run_dir.parent, progress=False, reports=False, shard=shard)
    return asyncio.run(pipeline.run())


def comparable_summary(run_dir: Path) -> dict[str, Any]:
    """summary.json less what names the run's folder, its machine and its invocations."""
    summary = build_summary(load_run(run_dir))
    for key in ("run_dir", "environment", "invocations"):
        summary["run"].pop(key)
    return summary


def units(run_dir: Path) -> list[tuple[str, str, str]]:
    return [(r.probe.key, r.generation.target, r.generation.text) for r in load_run(run_dir).records]


@pytest.fixture
def config(tmp_path: Path) -> RunConfig:
    data = write_jsonl(tmp_path / "data.jsonl", harmful_rows(24))
    return fake_config(data)


def test_three_shards_merge_to_the_unsharded_run(config: RunConfig, tmp_path: Path) -> None:
    run(config, tmp_path / "full")
    sizes = [run(config, tmp_path / f"s{i}", Shard(i, 3)).counters.units for i in range(3)]
    assert sum(sizes) == 48 and all(s > 0 for s in sizes)  # 24 probes x 2 targets, split, none lost

    result = merge_runs([tmp_path / f"s{i}" for i in range(3)], tmp_path / "merged")

    assert result.items == 48 and result.warnings == []
    assert units(tmp_path / "merged") == units(tmp_path / "full")  # same records, same order
    assert comparable_summary(tmp_path / "merged") == comparable_summary(tmp_path / "full")
    full, merged = RunStore(tmp_path / "full").counts(), RunStore(tmp_path / "merged").counts()
    assert merged == full
    # The merged run is a run like any other: running its config there again makes no call.
    again = run(config, tmp_path / "merged").counters
    assert again.target_calls == 0 and again.judge_calls == 0 and again.target_cached == 48


def test_a_missing_shard_is_reported(config: RunConfig, tmp_path: Path) -> None:
    run(config, tmp_path / "s0", Shard(0, 3))
    run(config, tmp_path / "s2", Shard(2, 3))
    result = merge_runs([tmp_path / "s0", tmp_path / "s2"], tmp_path / "merged")
    assert result.warnings == ["shards 1/3 are missing: the merge is partial"]


def test_runs_of_different_configs_do_not_merge(config: RunConfig, tmp_path: Path) -> None:
    run(config, tmp_path / "a", Shard(0, 2))
    run(config.model_copy(update={"asr_threshold": 3.0}), tmp_path / "b", Shard(1, 2))
    with pytest.raises(MergeError, match=r"differs .* in asr_threshold"):
        merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "merged")


def test_merge_refuses_an_existing_run_and_a_non_run(config: RunConfig, tmp_path: Path) -> None:
    run(config, tmp_path / "a")
    with pytest.raises(MergeError, match="already holds a run"):
        merge_runs([tmp_path / "a"], tmp_path / "a")
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="not a safemlrm run directory"):
        merge_runs([tmp_path / "a", tmp_path / "empty"], tmp_path / "merged")


def test_a_successful_generation_wins_over_a_failed_copy(config: RunConfig, tmp_path: Path) -> None:
    run(config, tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    with sqlite3.connect(tmp_path / "a" / STORE_FILE) as conn:  # in a, one generation "failed"
        key = conn.execute("SELECT key FROM generations LIMIT 1").fetchone()[0]
        conn.execute("UPDATE generations SET ok = 0 WHERE key = ?", (key,))
    merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "merged")
    with sqlite3.connect(tmp_path / "merged" / STORE_FILE) as conn:
        assert conn.execute("SELECT ok FROM generations WHERE key = ?", (key,)).fetchone()[0] == 1


def test_rendered_images_are_copied_and_probes_point_at_the_copies(tmp_path: Path) -> None:
    source, out = tmp_path / "shard", tmp_path / "merged"
    sha = "ab" * 32
    asset = source / "assets" / f"typo-{sha[:16]}.png"
    asset.parent.mkdir(parents=True)
    asset.write_bytes(b"png bytes")
    probe = Probe(
        sample_key="k",
        sample_id="s",
        attack="typography",
        messages=(Message(role="user", content=(TextPart(text="look"),)),),
    )
    data = probe.model_dump(mode="json")
    data["messages"][0]["content"].append({"type": "image", "image": {"path": str(asset), "sha256": sha}})
    moved_probe = Probe.model_validate(data)
    store = RunStore(out)
    store.put_probe(moved_probe)
    store.commit()
    moved = _copy_assets(source, out)
    _rewrite_image_paths(store.conn, moved)
    row = store.conn.execute("SELECT key, data FROM probes").fetchone()
    store.close()
    restored = Probe.model_validate_json(row[1])
    assert restored.images == (ImageRef(path=str((out / "assets" / asset.name).resolve()), sha256=sha),)
    assert restored.key == moved_probe.key == row[0]  # keys hash bytes, not paths
    assert (out / "assets" / asset.name).read_bytes() == b"png bytes"


def test_cli_run_shards_and_merge(
    config: RunConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
    for i in range(2):
        code = cli.main(
            ["run", str(config_file), "--out", str(tmp_path / f"s{i}"), "--shard", f"{i}/2", "--no-progress"]
        )
        assert code == 0
    assert cli.main(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "m")]) == 0
    assert "merged 2 runs" in capsys.readouterr().out
    assert cli.main(["run", str(config_file), "--out", str(tmp_path / "full"), "--no-progress"]) == 0
    merged = json.loads((tmp_path / "m" / "summary.json").read_text())
    full = json.loads((tmp_path / "full" / "summary.json").read_text())
    for summary in (merged, full):
        for key in ("run_dir", "environment", "invocations"):
            summary["run"].pop(key)
        summary.pop("calls")
    assert merged == full
    assert cli.main(["run", str(config_file), "--shard", "2/2", "--out", str(tmp_path / "x")]) == 2
