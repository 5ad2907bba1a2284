"""The stages on their own: `generate`, then `judge`, then `report` equal one `run`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import fake_config, harmful_rows, store_contents, write_jsonl

from safemlrm.core import plugins
from safemlrm.core.config import RunConfig
from safemlrm.core.store import RunStore, StoreError
from safemlrm.pipeline.runner import Pipeline, stored_config
from safemlrm.verbs import api
from safemlrm.verbs.cli import main


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "data.jsonl", harmful_rows(6))


def _pipeline(config: RunConfig, run_dir: Path, command: str = "run") -> Pipeline:
    return Pipeline(config, run_dir, base_dir=run_dir.parent, progress=False, command=command, reports=False)


def _summary(run_dir: Path) -> dict[str, Any]:
    api.report(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    # What differs by design: when and how the run was made.
    for key in ("run", "meta", "invocations", "environment", "calls", "generated"):
        summary.pop(key, None)
    return summary


def test_generate_then_judge_then_report_equals_run(data: Path, tmp_path: Path) -> None:
    config = fake_config(data)
    whole = asyncio.run(_pipeline(config, tmp_path / "whole").run()).counters

    staged = tmp_path / "staged"
    generated = asyncio.run(_pipeline(config, staged, "generate").generate()).counters
    assert generated.target_calls == whole.target_calls == 12
    assert generated.judge_calls == 0 and RunStore(staged).counts()["judgements"] == 0
    judged = asyncio.run(_pipeline(stored_config(staged), staged, "judge").judge()).counters
    assert judged.target_calls == 0 and judged.target_cached == 0
    assert judged.judge_calls + judged.judge_cached == whole.judge_calls + whole.judge_cached
    assert judged.parts_skipped_empty == whole.parts_skipped_empty

    assert store_contents(staged) == store_contents(tmp_path / "whole")
    assert _summary(staged) == _summary(tmp_path / "whole")


def test_judge_on_a_finished_run_builds_and_calls_no_target(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(_pipeline(fake_config(data), tmp_path / "run").run())
    before = RunStore(tmp_path / "run").counts()

    def no_target(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the judge stage built a target")

    monkeypatch.setattr(plugins.targets, "create", no_target)
    result = api.judge(tmp_path / "run")
    c = result.counters
    # base: answer and whole (no reasoning) = 2 parts; reasoner: 3 parts
    assert c.target_calls == 0 and c.judge_calls == 0 and c.judge_cached == 6 * 2 + 6 * 3
    assert RunStore(tmp_path / "run").counts() == before


def test_judge_with_a_new_judge_judges_only_what_is_missing(data: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = asyncio.run(_pipeline(fake_config(data), run_dir).run()).counters
    two_judges = fake_config(
        data, judges=[{"kind": "keyword"}, {"kind": "keyword", "name": "strict", "params": {"compliance_score": 4}}]
    )
    second = api.judge(run_dir, two_judges).counters
    judged = first.judge_calls + first.judge_cached  # one judgement per non-empty part per judge
    assert second.target_calls == 0
    # The old judge: every judgement from the store; the new one: what one judge needed in the first
    # run (base's whole and answer are one text, judged once, the other from the store).
    assert second.judge_calls == first.judge_calls > 0
    assert second.judge_cached == judged + first.judge_cached
    records = api.load(run_dir).records
    assert {label for r in records for (_part, label) in r.judgements} == {"keyword", "strict"}
    assert [j.label for j in api.load(run_dir).judges] == ["keyword", "strict"]


def test_stage_verbs_from_the_cli(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        json.dumps(fake_config(data).model_dump(mode="json")), encoding="utf-8"
    )  # JSON is YAML
    run_dir = str(tmp_path / "run")
    assert main(["generate", str(config), "--out", run_dir, "--no-progress"]) == 0
    assert "target calls 12 made" in capsys.readouterr().out
    assert main(["judge", run_dir, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "target calls 0 made, 0 from the store" in out and "judge calls 24 made, 6 from the store" in out
    assert main(["judge", run_dir, "--no-progress"]) == 0  # judged again: all from the store
    assert "judge calls 0 made, 30 from the store" in capsys.readouterr().out
    assert main(["report", run_dir]) == 0
    assert (tmp_path / "run" / "report.md").exists()


def test_judge_before_generate_says_what_to_run(tmp_path: Path) -> None:
    RunStore(tmp_path / "empty").close()
    with pytest.raises(StoreError, match="safemlrm generate"):
        api.judge(tmp_path / "empty")


def test_a_stopped_judge_stage_resumes_on_its_own(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safemlrm.judges.keyword import KeywordJudge
    from safemlrm.pipeline.runner import RunInterrupted

    run_dir = tmp_path / "run"
    asyncio.run(_pipeline(fake_config(data), run_dir, "generate").generate())
    original = KeywordJudge.judge
    calls = 0

    async def stop_after_ten(self: KeywordJudge, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > 10:
            raise asyncio.CancelledError  # as Ctrl-C does
        return await original(self, *args)

    monkeypatch.setattr(KeywordJudge, "judge", stop_after_ten)
    with pytest.raises(RunInterrupted):
        api.judge(run_dir)
    monkeypatch.setattr(KeywordJudge, "judge", original)
    statuses = [inv["status"] for inv in RunStore(run_dir).invocations()]
    assert statuses == ["finished", "interrupted"]
    resumed = api.judge(run_dir).counters
    assert 0 < resumed.judge_calls <= 24 - 10 and resumed.judge_cached >= 10
    assert resumed.judge_calls + resumed.judge_cached == 30
    records = api.load(run_dir).records
    assert len(records) == 12 and all(r.judgements for r in records)
