"""A target given only some datasets (`datasets:` on the target): the run, the dry run and the store agree."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import harmful_rows, write_jsonl

from safemlrm.core.config import ConfigError, RunConfig, parse_config
from safemlrm.core.store import load_run
from safemlrm.pipeline.plan import dry_run
from safemlrm.pipeline.runner import Pipeline


def config(tmp_path: Path, **target_overrides: Any) -> RunConfig:
    a = write_jsonl(tmp_path / "a.jsonl", harmful_rows(4))
    b = write_jsonl(tmp_path / "b.jsonl", [{**r, "id": f"b{i}"} for i, r in enumerate(harmful_rows(3))])
    # one long file of outputs for the `a` dataset only, from two models; no row for dataset `b`
    outputs = write_jsonl(
        tmp_path / "outputs.jsonl",
        [
            {"id": f"s{i}", "model": m, "output": f"{m} says no to {i}. I cannot help."}
            for m in ("x", "y")
            for i in range(4)
        ],
    )
    return RunConfig.model_validate(
        {
            "name": "t",
            "datasets": [
                {"kind": "jsonl", "name": "a", "params": {"path": str(a)}},
                {"kind": "jsonl", "name": "b", "params": {"path": str(b)}},
            ],
            "targets": [
                {
                    "name": "replay-x",
                    "kind": "replay",
                    "parser": "plain",
                    "params": {"path": str(outputs), "where": {"model": "x"}},
                    "datasets": ["a"],
                    **target_overrides,
                },
                {
                    "name": "replay-y",
                    "kind": "replay",
                    "parser": "plain",
                    "params": {"path": str(outputs), "where": {"model": "y"}},
                    "datasets": ["a"],
                },
                {"name": "live", "kind": "fake", "parser": "plain", "params": {"default": "Sure."}},
            ],
            "judges": [{"kind": "keyword"}],
            "judge_cache": None,
        }
    )


def test_replay_targets_get_only_their_dataset_and_the_dry_run_agrees(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    plan = dry_run(cfg, tmp_path / "run", base_dir=tmp_path)
    assert {label: (t.probes, t.calls) for label, t in plan.targets.items()} == {
        "replay-x": (4, 4),
        "replay-y": (4, 4),
        "live": (7, 7),
    }
    result = asyncio.run(Pipeline(cfg, tmp_path / "run", base_dir=tmp_path, progress=False, reports=False).run())
    c = result.counters
    assert c.units == 4 + 4 + 7 == c.target_calls
    assert c.target_errors == 0  # no "no replayed output" errors for the other dataset's samples
    records = load_run(tmp_path / "run").records
    by_target: dict[str, list[str]] = {}
    for rec in records:
        by_target.setdefault(rec.generation.target, []).append(rec.sample.id)
    assert sorted(by_target["replay-x"]) == sorted(by_target["replay-y"]) == ["s0", "s1", "s2", "s3"]
    assert sorted(by_target["live"]) == ["b0", "b1", "b2", "s0", "s1", "s2", "s3"]
    assert all(r.generation.text.startswith(r.generation.target[-1]) for r in records if r.generation.target != "live")
    # the dry run of the finished run finds every generation under the keys the run stored
    again = dry_run(cfg, tmp_path / "run", base_dir=tmp_path)
    assert {label: (t.calls, t.cached) for label, t in again.targets.items()} == {
        "replay-x": (0, 4),
        "replay-y": (0, 4),
        "live": (0, 7),
    }
    assert again.judge_calls == 0


def test_generation_keys_do_not_depend_on_the_dataset_filter(tmp_path: Path) -> None:
    # giving a target fewer datasets must not change the keys of what it already generated
    cfg = config(tmp_path)
    asyncio.run(Pipeline(cfg, tmp_path / "run", base_dir=tmp_path, progress=False, reports=False).run())
    wider = config(tmp_path, datasets=None, params={"path": str(tmp_path / "outputs.jsonl"), "where": {"model": "x"}})
    result = asyncio.run(Pipeline(wider, tmp_path / "run", base_dir=tmp_path, progress=False, reports=False).run())
    assert result.counters.target_cached == 15 and result.counters.target_calls == 3  # only b's samples are new
    assert result.counters.target_errors == 3  # and they have no replayed output


def test_unknown_dataset_label_on_a_target_is_a_config_error() -> None:
    text = """
datasets: [{kind: demo}]
targets: [{name: t, kind: fake, datasets: [dmeo]}]
"""
    with pytest.raises(ConfigError, match=r"target 't': unknown datasets \['dmeo'\]; the run's datasets: \['demo'\]"):
        parse_config(text)
