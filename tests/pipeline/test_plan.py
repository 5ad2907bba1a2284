"""`--dry-run`: the plan walks the same units as the run (shard included) and calls nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.helpers import fake_config, harmful_rows, write_jsonl

from safemlrm.core.shard import Shard
from safemlrm.pipeline.runner import Pipeline
from safemlrm.verbs import api


def test_a_sharded_dry_run_plans_what_the_shard_runs(tmp_path: Path) -> None:
    config = fake_config(write_jsonl(tmp_path / "d.jsonl", harmful_rows(40)))
    whole = api.plan(config, tmp_path / "planned")
    shards = [api.plan(config, tmp_path / "planned", shard=f"{i}/4") for i in range(4)]
    assert whole.probes == 40 and sum(p.probes for p in shards) == 40
    assert all(0 < p.probes < 40 for p in shards)  # each plan holds its shard only
    assert [p.shard for p in shards] == [Shard(i, 4) for i in range(4)] and whole.shard is None
    assert "shard 1/4" in shards[1].render()
    run_dir = tmp_path / "run"
    pipeline = Pipeline(config, run_dir, base_dir=tmp_path, progress=False, reports=False, shard=Shard(1, 4))
    counters = asyncio.run(pipeline.run()).counters
    assert counters.probes == shards[1].probes and counters.target_calls == shards[1].targets["base"].calls * 2
    again = api.plan(config, run_dir, shard="1/4")
    assert sum(t.calls for t in again.targets.values()) == 0 and again.judge_calls == 0


def test_cli_dry_run_takes_the_shard(tmp_path: Path, capsys: object) -> None:
    from safemlrm.verbs.cli import main

    data = write_jsonl(tmp_path / "d.jsonl", harmful_rows(40))
    config = tmp_path / "c.yaml"
    config.write_text(
        "datasets: [{kind: jsonl, params: {path: " + str(data) + "}}]\n"
        "targets: [{name: t, kind: fake}]\njudges: [{kind: keyword}]\njudge_cache: null\n",
        encoding="utf-8",
    )
    whole = api.plan(config, tmp_path / "r")
    assert main(["run", str(config), "--out", str(tmp_path / "r"), "--dry-run", "--shard", "0/4"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    planned = api.plan(config, tmp_path / "r", shard="0/4")
    assert f"-> {planned.probes} probes" in out and planned.probes < whole.probes
