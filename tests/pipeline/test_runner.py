"""The store guarantees, through the real pipeline with the fake target and the keyword judge."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from pathlib import Path

import pytest
from tests.helpers import fake_config, harmful_rows, write_jsonl

from safemlrm.core.store import STORE_FILE, RunStore, load_run
from safemlrm.core.types import Generation, ParseStatus, Part
from safemlrm.pipeline.runner import Pipeline, RunInterrupted


def run(config, run_dir: Path):  # type: ignore[no-untyped-def]
    return asyncio.run(Pipeline(config, run_dir, base_dir=run_dir.parent, progress=False, reports=False).run())


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "data.jsonl", harmful_rows(9))


def test_first_run_generates_parses_and_judges_everything(data: Path, tmp_path: Path) -> None:
    result = run(fake_config(data), tmp_path / "run")
    c = result.counters
    assert (c.samples, c.probes, c.units) == (9, 9, 18)
    assert c.target_calls == 18 and c.target_cached == 0 and c.target_errors == 0
    # base: plain parser -> answer + whole (reasoning empty, skipped); reasoner: 3 parts. Keyword judge.
    assert c.parts_skipped_empty == 9
    assert c.judge_calls + c.judge_cached == 9 * 2 + 9 * 3
    run_data = load_run(tmp_path / "run")
    assert len(run_data.records) == 18
    reasoner = [r for r in run_data.records if r.generation.target == "reasoner"]
    assert all(r.parsed.reasoning.startswith("Plan for") for r in reasoner)
    assert all(r.judgements[(Part.ANSWER, "keyword")].score == 5.0 for r in reasoner)
    base = [r for r in run_data.records if r.generation.target == "base"]
    assert all(r.judgements[(Part.WHOLE, "keyword")].score == 0.0 for r in base)


def test_second_run_makes_zero_calls_and_adds_no_rows(data: Path, tmp_path: Path) -> None:
    run(fake_config(data), tmp_path / "run")
    before = RunStore(tmp_path / "run").counts()
    again = run(fake_config(data), tmp_path / "run").counters
    assert again.target_calls == 0 and again.judge_calls == 0
    assert again.target_cached == 18
    after = RunStore(tmp_path / "run").counts()
    assert {k: v for k, v in after.items()} == before


def test_rejudge_with_another_judge_does_not_generate_again(data: Path, tmp_path: Path) -> None:
    run(fake_config(data), tmp_path / "run")
    strict = fake_config(data, judges=[{"kind": "keyword", "name": "strict", "params": {"compliance_score": 4}}])
    counters = run(strict, tmp_path / "run").counters
    assert counters.target_calls == 0 and counters.target_cached == 18
    assert counters.judge_calls > 0
    records = load_run(tmp_path / "run").records
    assert all((Part.WHOLE, "strict") in r.judgements for r in records)


def test_identical_texts_are_judged_once(tmp_path: Path) -> None:
    rows = [{"id": f"s{i}", "instruction": "same intent", "prompt": f"p{i}"} for i in range(6)]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    config = fake_config(
        data, targets=[{"name": "t", "kind": "fake", "parser": "plain", "params": {"default": "I cannot help."}}]
    )
    c = run(config, tmp_path / "run").counters
    # 6 generations x 2 non-empty parts, all the same (instruction, text): one call.
    assert c.judge_calls == 1 and c.judge_cached == 11


def test_failed_generations_are_stored_and_retried_alone(data: Path, tmp_path: Path) -> None:
    config = fake_config(data, targets=[{"name": "t", "kind": "fake", "params": {"fail_ids": ["s1", "s4"]}}])
    first = run(config, tmp_path / "run").counters
    assert first.target_errors == 2 and first.target_calls == 9
    records = load_run(tmp_path / "run").records
    assert sorted(r.sample.id for r in records if r.generation.error) == ["s1", "s4"]
    fixed = fake_config(data, targets=[{"name": "t", "kind": "fake"}])
    second = run(fixed, tmp_path / "run").counters
    # the target's identity changed (fail_ids is part of it), so use a target whose identity is the same:
    assert second.target_calls == 9
    again = run(config, tmp_path / "run").counters
    assert again.target_calls == 2 and again.target_errors == 2


def test_judge_cache_is_shared_across_runs(data: Path, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache.sqlite")
    first = run(fake_config(data, judge_cache=cache), tmp_path / "run1").counters
    second = run(fake_config(data, judge_cache=cache), tmp_path / "run2").counters
    assert first.judge_calls > 0 and first.judge_shared_cached == 0
    assert second.judge_calls == 0 and second.target_calls == 18
    assert second.judge_shared_cached == first.judge_calls  # counted apart from the run's own store


def test_judge_cache_key_covers_the_judges_code(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A change to a judge's (parsing) code must not be served old verdicts from the shared cache."""
    from safemlrm.pipeline import build

    cache = str(tmp_path / "cache.sqlite")
    run(fake_config(data, judge_cache=cache), tmp_path / "run1")
    monkeypatch.setattr(build, "verdict_code_version", lambda cls: "changed-parsing-code")
    after_fix = run(fake_config(data, judge_cache=cache), tmp_path / "run2").counters
    assert after_fix.judge_calls > 0 and after_fix.judge_shared_cached == 0


def test_nan_judgements_are_kept_and_not_zero(data: Path, tmp_path: Path) -> None:
    from safemlrm.core.types import NAN, Judgement
    from safemlrm.judges.keyword import KeywordJudge

    async def broken(self, sample, text, part):  # type: ignore[no-untyped-def]
        return Judgement(judge=self.label, score=NAN, raw="no score here")

    original = KeywordJudge.judge
    KeywordJudge.judge = broken  # type: ignore[method-assign]
    try:
        counters = run(fake_config(data), tmp_path / "run").counters
    finally:
        KeywordJudge.judge = original  # type: ignore[method-assign]
    assert counters.judge_failed == counters.judge_calls > 0
    records = load_run(tmp_path / "run").records
    assert all(math.isnan(j.score) for r in records for j in r.judgements.values())


def test_cancelled_run_keeps_results_and_resumes(data: Path, tmp_path: Path) -> None:
    rows = harmful_rows(40)
    data = write_jsonl(tmp_path / "big.jsonl", rows)
    config = fake_config(
        data,
        targets=[{"name": "slow", "kind": "fake", "params": {"delay_s": 0.05, "max_concurrency": 4}}],
        concurrency=4,
    )

    def stored() -> int:
        path = tmp_path / "run" / STORE_FILE
        if not path.exists():
            return 0
        conn = sqlite3.connect(path)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM generations WHERE ok=1").fetchone()[0])
        except sqlite3.OperationalError:  # the table is not created yet
            return 0
        finally:
            conn.close()

    async def run_then_cancel() -> None:
        pipeline = Pipeline(config, tmp_path / "run", base_dir=tmp_path, progress=False, reports=False)
        task = asyncio.create_task(pipeline.run())
        # Cancel once some work is stored (not after a fixed sleep, which a loaded machine outruns).
        for _ in range(3000):
            await asyncio.sleep(0.01)
            if stored() > 0 or task.done():
                break
        task.cancel()
        with pytest.raises(RunInterrupted):
            await task

    asyncio.run(run_then_cancel())
    conn = sqlite3.connect(tmp_path / "run" / STORE_FILE)
    done = conn.execute("SELECT COUNT(*) FROM generations WHERE ok=1").fetchone()[0]
    status = conn.execute("SELECT status FROM invocations").fetchone()[0]
    conn.close()
    assert 0 < done < 40 and status == "interrupted"
    resumed = run(config, tmp_path / "run").counters
    assert resumed.target_calls == 40 - done and resumed.target_cached == done
    counts = RunStore(tmp_path / "run").counts()
    assert counts["generations"] == 40 and counts["items"] == 40


def test_batching_targets_receive_batches(tmp_path: Path) -> None:
    from safemlrm.core.context import PluginContext
    from safemlrm.core.types import Message, Probe, TextPart
    from safemlrm.pipeline.batching import TargetDispatcher
    from safemlrm.targets.fake import FakeTarget

    target = FakeTarget(FakeTarget.Params(max_batch_size=4, max_concurrency=8), PluginContext(label="f"))
    probes = [
        Probe(
            sample_key="k",
            sample_id=f"s{i}",
            attack="vanilla",
            messages=(Message(role="user", content=(TextPart(text=f"t{i}"),)),),
        )
        for i in range(10)
    ]

    async def go() -> list[str]:
        dispatcher = TargetDispatcher(target, "f", max_wait_s=0.01)
        gens = await asyncio.gather(*(dispatcher.submit(p) for p in probes))
        return [g.probe_key for g in gens]

    keys = asyncio.run(go())
    assert keys == [p.key for p in probes]  # each caller gets its own generation
    assert sorted(target.batches, reverse=True)[:2] == [4, 4] and sum(target.batches) == 10


def test_datasets_can_name_their_attacks(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", harmful_rows(3))
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": "x", "instruction": "i", "prompt": "p"}])
    config = fake_config(
        a,
        datasets=[
            {"kind": "jsonl", "name": "a", "params": {"path": str(a)}},
            {"kind": "jsonl", "name": "b", "params": {"path": str(b)}, "attacks": ["blank"]},
        ],
        attacks=[{"kind": "vanilla"}, {"kind": "vanilla", "name": "blank", "params": {"blank_image": True}}],
        targets=[{"name": "t", "kind": "fake"}],
    )
    counters = run(config, tmp_path / "run").counters
    assert counters.probes == 3 * 2 + 1


def test_unknown_dataset_attack_is_a_config_error(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown attacks"):
        fake_config(tmp_path / "a.jsonl", datasets=[{"kind": "jsonl", "params": {"path": "x"}, "attacks": ["nope"]}])


def test_an_unparsable_judge_reply_is_a_final_nan_not_requested_again(data: Path, tmp_path: Path) -> None:
    """A judge model whose replies never hold a 1-5 score: NaN after the bounded retries, then never again."""
    rubric = {
        "kind": "rubric",
        "params": {"model": {"name": "jm", "kind": "fake", "params": {"default": "#thescore: 9"}}, "max_attempts": 2},
    }
    config = fake_config(data, judges=[rubric])
    first = run(config, tmp_path / "run").counters
    assert first.judge_calls > 0 and first.judge_failed == first.judge_calls
    again = run(config, tmp_path / "run").counters
    assert again.judge_calls == 0 and again.judge_cached == first.judge_calls + first.judge_cached
    record = load_run(tmp_path / "run").records[0]
    judgement = next(iter(record.judgements.values()))
    assert math.isnan(judgement.score) and judgement.label == "unparsed"
    assert judgement.raw.count("#thescore: 9") == 2  # every raw reply kept


def test_a_failed_generation_keeps_its_raw_text_in_the_parse() -> None:
    from safemlrm.pipeline.runner import _parse

    generation = Generation(probe_key="p", target="t", text="partial reply", error="timeout")
    parsed = _parse(None, generation)  # type: ignore[arg-type]  # a failed generation never reaches the parser
    assert parsed.raw == "partial reply" and parsed.status is ParseStatus.ERROR
