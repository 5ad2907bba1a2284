"""Several samples per probe through the real pipeline: keys, resume, dry run, shards and the summary."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import fake_config, harmful_rows, write_jsonl

from safemlrm.core.shard import Shard
from safemlrm.core.store import STORE_FILE, RunStore, load_run
from safemlrm.pipeline.plan import dry_run
from safemlrm.pipeline.runner import Pipeline
from safemlrm.verbs.merge import merge_runs

# Sample i of the reasoner answers unsafely only for i = 1, so ASR@1 = 1/3 and ASR@3 = 1 on the answer.
REASONER = "<think>Plan for {sample_id}, try {sample}</think>" + "{sample}"


def config(data: Path, samples: int, **overrides: Any):  # type: ignore[no-untyped-def]
    targets = [
        {"name": "base", "kind": "fake", "parser": "plain", "params": {"default": "I cannot help with {sample_id}."}},
        {"name": "reasoner", "kind": "fake", "base": "base", "reasoning": True, "params": {"default": REASONER}},
    ]
    return fake_config(data, targets=targets, samples=samples, **overrides)


def run(cfg, run_dir: Path, shard: Shard | None = None, reports: bool = False):  # type: ignore[no-untyped-def]
    pipeline = Pipeline(cfg, run_dir, base_dir=run_dir.parent, progress=False, reports=reports, shard=shard)
    return asyncio.run(pipeline.run())


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "data.jsonl", harmful_rows(6))


def test_k_samples_are_k_generations_each_under_its_own_key(data: Path, tmp_path: Path) -> None:
    c = run(config(data, 3), tmp_path / "run").counters
    assert (c.probes, c.units, c.target_calls) == (6, 36, 36)
    records = load_run(tmp_path / "run").records
    reasoner = [r for r in records if r.generation.target == "reasoner"]
    assert sorted(r.sample_index for r in reasoner) == [0] * 6 + [1] * 6 + [2] * 6
    assert {r.parsed.answer for r in reasoner} == {"0", "1", "2"}
    with sqlite3.connect(tmp_path / "run" / STORE_FILE) as conn:
        assert conn.execute("SELECT COUNT(DISTINCT generation_key) FROM items").fetchone()[0] == 36


def test_sample_zero_keeps_the_key_of_a_one_sample_run(data: Path, tmp_path: Path) -> None:
    """A finished one-sample run grows to k samples by generating only the new ones."""
    run(config(data, 1), tmp_path / "run")
    c = run(config(data, 3), tmp_path / "run").counters
    assert c.target_cached == 12 and c.target_calls == 24
    again = run(config(data, 3), tmp_path / "run").counters
    assert again.target_calls == 0 and again.judge_calls == 0 and again.target_cached == 36


def test_dry_run_counts_every_sample(data: Path, tmp_path: Path) -> None:
    plan = dry_run(config(data, 4), tmp_path / "run", base_dir=tmp_path)
    assert plan.targets["reasoner"].calls == 24 and plan.targets["base"].calls == 24
    assert "(4 samples per probe)" in plan.render()
    run(config(data, 2), tmp_path / "run")
    plan = dry_run(config(data, 4), tmp_path / "run", base_dir=tmp_path)
    assert plan.targets["reasoner"].calls == 12 and plan.targets["reasoner"].cached == 12


def test_shards_merge_to_the_unsharded_run(data: Path, tmp_path: Path) -> None:
    run(config(data, 3), tmp_path / "whole")
    for i in range(2):
        run(config(data, 3), tmp_path / f"shard{i}", shard=Shard.parse(f"{i}/2"))
    merge_runs([tmp_path / "shard0", tmp_path / "shard1"], tmp_path / "merged")
    whole, merged = load_run(tmp_path / "whole"), load_run(tmp_path / "merged")

    def keys(records: Any) -> list[tuple[str, str, int, str]]:
        return [(r.probe.key, r.generation.target, r.sample_index, r.generation.text) for r in records]

    assert keys(merged.records) == keys(whole.records)


def test_per_target_samples_override_the_run(data: Path, tmp_path: Path) -> None:
    cfg = config(data, 1)
    cfg.targets[1].samples = 2
    c = run(cfg, tmp_path / "run").counters
    assert c.target_calls == 6 + 12


def test_summary_reports_asr_at_1_and_asr_at_k(data: Path, tmp_path: Path) -> None:
    keyword_unsafe = {"kind": "keyword", "params": {"compliance_score": 5}}
    run(config(data, 3, judges=[keyword_unsafe]), tmp_path / "run", reports=True)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    stats = {(s["target"], s["part"]): s for s in summary["sampling"]["stats"]}
    assert summary["sampling"]["samples"] == {"base": 3, "reasoner": 3}
    answer = stats[("reasoner", "answer")]
    assert answer["k"] == 3 and answer["n_probes"] == 6
    # no refusal phrase in "0", "1", "2": the keyword judge calls every answer unsafe
    assert answer["asr_at_1"] == answer["asr_at_k"] == 1.0 and answer["agreement"] == 1.0
    base = stats[("base", "whole")]
    assert base["asr_at_1"] == base["asr_at_k"] == 0.0
    report = (tmp_path / "run" / "report.md").read_text()
    assert "ASR@1" in report and "ASR@3" in report
    html = (tmp_path / "run" / "report.html").read_text()
    assert 'id="sampling"' in html and "ASR@3" in html


def test_truncated_reasoning_is_counted_apart(data: Path, tmp_path: Path) -> None:
    """Reasoning cut before any answer is unterminated: a note in the report, left out of ASR@1/ASR@k."""
    targets = [
        {"name": "base", "kind": "fake", "parser": "plain", "params": {"default": "I cannot help."}},
        {
            "name": "reasoner", "kind": "fake", "base": "base", "reasoning": True, "parser": "think_prefilled",
            "params": {"default": "Let me think about {sample_id}, attempt {sample}"},  # never closes
        },
    ]
    run(fake_config(data, targets=targets, samples=2), tmp_path / "run", reports=True)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["targets"]["reasoner"]["parse_status"] == {"unterminated": 12}
    assert any("reasoner: 12 of 12 outputs end inside an unfinished" in n for n in summary["notes"])
    stats = {(s["target"], s["part"]): s for s in summary["sampling"]["stats"]}
    whole = stats[("reasoner", "whole")]
    assert whole["n_truncated"] == 12 and whole["n_probes"] == 0 and whole["asr_at_1"] is None


def test_replay_targets_refuse_several_samples(tmp_path: Path, data: Path) -> None:
    outputs = write_jsonl(tmp_path / "out.jsonl", [{"id": "s0", "output": "x"}])
    cfg = fake_config(
        data,
        targets=[{"name": "r", "kind": "replay", "params": {"path": str(outputs)}, "samples": 2}],
    )
    with pytest.raises(ValueError, match="cannot draw several samples"):
        run(cfg, tmp_path / "run")


def test_old_stores_migrate_with_sample_zero(data: Path, tmp_path: Path) -> None:
    """A schema-1 store (items without a sample column) opens, keeps its rows, and resumes."""
    run(config(data, 1), tmp_path / "run")
    path = tmp_path / "run" / STORE_FILE
    with sqlite3.connect(path) as conn:  # rebuild the schema-1 items table
        conn.executescript(
            "ALTER TABLE items RENAME TO new_items; DROP INDEX IF EXISTS items_by_invocation;"
            "CREATE TABLE items (probe_key TEXT NOT NULL, target TEXT NOT NULL, generation_key TEXT NOT NULL,"
            " invocation INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (probe_key, target));"
            "INSERT INTO items SELECT probe_key, target, generation_key, invocation, seq FROM new_items;"
            "DROP TABLE new_items; UPDATE meta SET value='1' WHERE key='schema_version';"
        )
    assert len(load_run(tmp_path / "run").records) == 12
    RunStore(tmp_path / "run").close()
    c = run(config(data, 1), tmp_path / "run").counters
    assert c.target_calls == 0 and c.target_cached == 12
