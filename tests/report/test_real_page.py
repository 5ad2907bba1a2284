"""Real outputs nobody here wrote (STAR-1 DeepSeek-R1 traces, Mistral answers to XSTest) replayed and
judged, then every figure of the report checked against the others. Needs ../shared/data."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pytest
from tests.report.test_page_cases import check_page_agrees

from safemlrm.core.config import load_config
from safemlrm.core.store import load_run
from safemlrm.pipeline.runner import Pipeline

CONFIG = """\
name: real-outputs
datasets:
  - {kind: jsonl, name: star1, params: {path: star1.jsonl}}
  - {kind: jsonl, name: xstest, params: {path: xstest.jsonl}}
targets:
  - {name: r1, kind: replay, parser: think_tags, reasoning: true, datasets: [star1],
     params: {path: outputs.jsonl, where: {model: r1}}}
  - {name: mistral, kind: replay, parser: plain, datasets: [xstest],
     params: {path: outputs.jsonl, where: {model: mistral}}}
judges:
  - kind: offline
  - kind: keyword
parts: [reasoning, answer, whole]
judge_cache: null
"""


def _jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.mark.slow
def test_real_outputs_report_agrees_with_itself(shared_data: Path, tmp_path: Path) -> None:
    traces = json.loads((shared_data / "reasoning_traces" / "star1_r1_traces_dev.json").read_text("utf-8"))[:40]
    with (shared_data / "judge_validation" / "xstest_v2_completions_dev.csv").open(encoding="utf-8") as f:
        xstest = [r for r in csv.DictReader(f) if r["model"] == "mistralinstruct"][::15]
    _jsonl(tmp_path / "star1.jsonl", [{"id": t["id"], "prompt": t["question"], "category": "STAR-1"} for t in traces])
    _jsonl(
        tmp_path / "xstest.jsonl",
        [
            {"id": r["id"], "prompt": r["prompt"], "category": r["type"], "benign": r["prompt_label"] == "safe"}
            for r in xstest
        ],
    )
    _jsonl(
        tmp_path / "outputs.jsonl",
        [{"id": t["id"], "output": t["response"], "model": "r1"} for t in traces]
        + [{"id": r["id"], "output": r["completion"], "model": "mistral"} for r in xstest],
    )
    (tmp_path / "run.yaml").write_text(CONFIG, encoding="utf-8")
    run_dir = tmp_path / "run"
    config = load_config(tmp_path / "run.yaml")
    result = asyncio.run(Pipeline(config, run_dir, base_dir=tmp_path, progress=False).run())
    assert result.counters.target_errors == 0
    run = load_run(run_dir)
    check_page_agrees(run, result.reports)
    summary = json.loads(result.reports["summary.json"].read_text("utf-8"))
    assert summary["run"]["primary_judge"] == "offline"
    md = result.reports["report.md"].read_text("utf-8")
    assert "r1: no benign prompts, so no over-refusal figure" in md
