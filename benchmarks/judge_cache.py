"""Judge-call savings of the judge cache on real model outputs, replayed through the pipeline.

Two sources from ../shared/data (real outputs, not synthetic): XSTest v2 completions of three chat
models (450 prompts each; no reasoning, so `answer` and `whole` are the same text) and 300 STAR-1
DeepSeek-R1 responses with `<think>` traces (reasoning, answer and whole all differ). Each is
replayed with the `replay` target and judged on reasoning, answer and whole by the `keyword` judge
(the call counts do not depend on the judge).

Counted, per source:
- without any cache: every non-empty (output, part) is a judge call;
- first run with the cache: identical (judge, instruction, text) are judged once within the run;
- a second run directory over the same outputs (a rerun elsewhere, a new comparison) with the shared
  cross-run cache on, and with it off.

    .venv/bin/python benchmarks/judge_cache.py     # about a minute
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import ROOT, write_result

SHARED = ROOT.parent / "shared" / "data"
XSTEST = SHARED / "judge_validation" / "xstest_v2_completions_dev.csv"
STAR1 = SHARED / "reasoning_traces" / "star1_r1_traces_dev.json"


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def xstest_source(folder: Path) -> tuple[Path, list[dict[str, Any]]]:
    with XSTEST.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    samples: dict[str, dict[str, Any]] = {}
    outputs: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        samples[row["id"]] = {"id": row["id"], "instruction": row["prompt"], "prompt": row["prompt"]}
        outputs.setdefault(row["model"], []).append({"id": row["id"], "output": row["completion"]})
    data = write_jsonl(folder / "xstest.jsonl", list(samples.values()))
    targets = [
        {
            "name": model,
            "kind": "replay",
            "parser": "plain",
            "params": {"path": str(write_jsonl(folder / f"out-{model}.jsonl", outs)), "model": model},
        }
        for model, outs in sorted(outputs.items())
    ]
    return data, targets


def star1_source(folder: Path) -> tuple[Path, list[dict[str, Any]]]:
    items = json.loads(STAR1.read_text(encoding="utf-8"))
    data = write_jsonl(
        folder / "star1.jsonl",
        [{"id": str(i["id"]), "instruction": i["question"], "prompt": i["question"]} for i in items],
    )
    outputs = write_jsonl(folder / "out-r1.jsonl", [{"id": str(i["id"]), "output": i["response"]} for i in items])
    target = {
        "name": "deepseek-r1",
        "kind": "replay",
        "parser": "think_tags",
        "reasoning": True,
        "params": {"path": str(outputs), "model": "deepseek-r1"},
    }
    return data, [target]


def run(data: Path, targets: list[dict[str, Any]], run_dir: Path, cache: str | None) -> dict[str, int]:
    from safemlrm.core.config import RunConfig
    from safemlrm.pipeline.runner import Pipeline

    config = RunConfig.model_validate(
        {
            "name": "judge-cache",
            "datasets": [{"kind": "jsonl", "params": {"path": str(data)}}],
            "targets": targets,
            "judges": [{"kind": "keyword"}],
            "parts": ["reasoning", "answer", "whole"],
            "judge_cache": cache,
            "html_report": False,
        }
    )
    pipeline = Pipeline(config, run_dir, base_dir=run_dir.parent, progress=False, reports=False)
    return asyncio.run(pipeline.run()).counters.as_dict()


def measure_source(name: str, data: Path, targets: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    cache = str(folder / f"{name}-cache.sqlite")
    first = run(data, targets, folder / f"{name}-run1", cache)
    second_cached = run(data, targets, folder / f"{name}-run2", cache)
    second_uncached = run(data, targets, folder / f"{name}-run3", None)
    without_cache = first["judge_calls"] + first["judge_cached"]  # every non-empty (output, part)
    result = {
        "outputs": first["units"],
        "judged_parts_without_cache": without_cache,
        "empty_parts_skipped": first["parts_skipped_empty"],
        "first_run_judge_calls": first["judge_calls"],
        "first_run_saving": round(1 - first["judge_calls"] / without_cache, 3),
        "second_run_judge_calls_with_cross_run_cache": second_cached["judge_calls"],
        "second_run_judge_calls_without_cross_run_cache": second_uncached["judge_calls"],
    }
    print(f"{name}:")
    for key, value in result.items():
        print(f"  {key}: {value}")
    return result


def main(argv: list[str] | None = None) -> int:
    if not XSTEST.exists() or not STAR1.exists():
        print(f"needs the shared data folder at {SHARED}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="safemlrm-cache-") as scratch:
        folder = Path(scratch)
        sources = {
            "xstest_v2_3_models": measure_source("xstest", *xstest_source(folder), folder),
            "star1_r1_traces": measure_source("star1", *star1_source(folder), folder),
        }
    total_without = sum(s["judged_parts_without_cache"] for s in sources.values())
    total_first = sum(s["first_run_judge_calls"] for s in sources.values())
    summary = {
        "judged_parts_without_cache": total_without,
        "first_run_judge_calls": total_first,
        "first_run_saving": round(1 - total_first / total_without, 3),
        "second_run_judge_calls_with_cross_run_cache": sum(
            s["second_run_judge_calls_with_cross_run_cache"] for s in sources.values()
        ),
    }
    print("summary:", summary)
    write_result(
        "judge_cache",
        {
            "command": "python benchmarks/judge_cache.py",
            "data": [str(XSTEST.relative_to(SHARED.parent)), str(STAR1.relative_to(SHARED.parent))],
            "summary": summary,
            "sources": sources,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
