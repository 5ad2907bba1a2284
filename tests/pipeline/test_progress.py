"""Progress: plain lines when stderr is not a terminal (logs, CI), bars with totals on a terminal."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import pytest
from tests.helpers import fake_config, harmful_rows, write_jsonl

from safemlrm.pipeline.progress import StageProgress
from safemlrm.pipeline.runner import Pipeline

LINE = re.compile(r"^\[\d\d:\d\d\] \S")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_run_not_on_a_terminal_prints_plain_progress_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", harmful_rows(20))
    config = fake_config(
        data,
        targets=[
            {"name": "base", "kind": "fake", "parser": "plain", "params": {"default": "I cannot help."}},
            {
                "name": "reasoner",
                "kind": "fake",
                "params": {"default": "<think>Plan {sample_id}</think>Sure, here.", "fail_ids": ["s3"]},
            },
        ],
    )
    result = asyncio.run(Pipeline(config, tmp_path / "run", base_dir=tmp_path, progress=True).run())
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines and all(LINE.match(line) for line in lines), err
    assert "loaded 20 samples -> 20 probes -> 40 (probe, target) units" in err
    assert "generate 40/40 (100%)" in err
    # Judge total: 40 units x 3 parts x 1 judge, less the base's empty reasoning (20) and the failed
    # generation's 3 parts: exactly the judgements made or found, so the stage ends at 100%.
    c = result.counters
    judged = c.judge_calls + c.judge_cached
    assert judged == 40 * 3 - 20 - 3
    assert f"judge {judged}/{judged} (100%)" in err
    assert re.search(r"\] generate \d+/40 \((?:[1-9]\d)%\)", err)  # intermediate tenths
    steps = [line.split("] ", 1)[1] for line in lines if "] report" in line]
    assert steps == [
        "report 1/6: loading the run",
        "report 2/6: analysis",
        "report 3/6: summary.json",
        "report 4/6: tables",
        "report 5/6: report.md",
        "report 6/6: report.html",
        "report: done",
    ]
    assert "\x1b[" not in err  # no terminal control codes in a log


def test_no_progress_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", harmful_rows(3))
    asyncio.run(Pipeline(fake_config(data), tmp_path / "run", base_dir=tmp_path, progress=False).run())
    assert capsys.readouterr().err == ""


def test_lines_every_tenth_and_every_interval_while_the_total_is_unknown() -> None:
    out, clock = io.StringIO(), FakeClock()
    p = StageProgress(stream=out, terminal=False, interval_s=10, clock=clock, judgements_per_unit=2)
    with p:
        for _ in range(5):
            p.advance("load")
        assert out.getvalue() == ""  # no total yet and no interval passed
        clock.now += 12
        p.advance("load")
        assert out.getvalue().splitlines() == ["[00:12] load 6 (the total is known once loading ends)"]
        p.advance("load", 0)  # no change: nothing new
        p.loading_done(100)
        for _ in range(100):
            p.advance("generate")
        clock.now += 50
        p.advance("judge")  # due by the interval
    text = out.getvalue()
    generate = [line for line in text.splitlines() if "] generate" in line]
    assert [line.split("] ")[1] for line in generate] == [f"generate {n}/100 ({n}%)" for n in range(10, 101, 10)]
    assert "loaded 6 samples -> 0 probes -> 100 (probe, target) units; judgements: at most 200" in text
    assert "[01:02] judge 1/200 (0%)" in text


def test_drops_lower_the_judge_total_before_and_after_loading() -> None:
    out = io.StringIO()
    p = StageProgress(stream=out, terminal=False, judgements_per_unit=3, clock=FakeClock())
    p.drop("judge", 3)  # a failed generation before loading ended
    p.loading_done(4)
    assert p.total("judge") == 9
    p.drop("judge", 1)  # an empty part
    for _ in range(8):
        p.advance("judge")
    assert p.total("judge") == 8 and "judge 8/8 (100%)" in out.getvalue()
    assert out.getvalue().count("judge 8/8") == 1


def test_terminal_bars_get_totals_and_a_report_stage() -> None:
    out = io.StringIO()
    p = StageProgress(stream=out, terminal=True, judgements_per_unit=2)
    with p:
        p.advance("load")
        p.advance("attack")
        p.loading_done(2)
        p.drop("judge", 1)
        p.start_report(3)
        p.report_step("loading the run")
        p.report_step("analysis")
        p.report_done()
    tasks = {t.description: t for t in p._progress.tasks}
    assert tasks["judge"].total == 3 and tasks["generate"].total == 2 and tasks["load"].total == 1
    assert tasks["report"].total == 3 and tasks["report"].completed == 2
    assert p.mode == "bars" and "judge" in out.getvalue()
