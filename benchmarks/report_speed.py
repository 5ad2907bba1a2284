"""Report speed and memory: `safemlrm report` on synthetic stores of many sizes, and on 700 real outputs.

Synthetic (issue 13 item 9): a generated JSON Lines file of N harmful samples, the `fake` target (a
reply with about 2 KB of `<think>` reasoning that quotes each prompt, so every text differs) and the
`keyword` judge on reasoning, answer and whole, run once without reports to build the store; then
`python -m safemlrm report RUN` runs in its own child process, whose peak resident set size
(``ru_maxrss`` from wait4) and wall time are recorded. Goal: under 250 MB at 20,000 records and under
1 GB at 100,000.

Real (issue 16): 700 real outputs replayed through the `replay` target, 300 DeepSeek-R1 traces (STAR-1)
and 400 Mistral-Instruct answers to XSTest prompts (225 of them benign), judged by the `offline`,
`refusal` and `keyword` judges; the run is timed, then `safemlrm report` alone. Goal: the report in
under 10 seconds. Needs the shared fixture data (`--data ../shared/data`); skipped without it.

    .venv/bin/python benchmarks/report_speed.py                          # 20,000 and 100,000 records
    .venv/bin/python benchmarks/report_speed.py --records 2000 20000     # a quicker look
    .venv/bin/python benchmarks/report_speed.py --records --data ../shared/data   # the real run only
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import harmful_rows, write_jsonl, write_result

GOALS_MB = {20_000: 250.0, 100_000: 1024.0}
REAL_GOAL_S = 10.0

FILLER = (
    "I weigh the request carefully, think about who might ask it and why, what the safe parts of an answer "
    "would be, which details would give real uplift, and how to say no kindly while still being useful. "
) * 8  # about 1.6 KB: reasoning traces are long

SYNTHETIC_CONFIG = """\
name: report-speed
datasets:
  - kind: jsonl
    params: {{path: {data}}}
targets:
  - name: model
    kind: fake
    reasoning: true
    parser: think_tags
    params:
      default: "<think>The user asks: {{prompt}}. {filler}</think>Sure, about {{sample_id}}: no."
judges:
  - kind: keyword
parts: [reasoning, answer, whole]
judge_cache: null
concurrency: 64
"""

REAL_CONFIG = """\
name: replay-700
datasets:
  - {kind: jsonl, name: star1, params: {path: star1.jsonl}}
  - {kind: jsonl, name: xstest, params: {path: xstest.jsonl}}
targets:
  - name: r1
    kind: replay
    parser: think_tags
    reasoning: true
    datasets: [star1]
    params: {path: outputs.jsonl, where: {model: r1}, model: deepseek-r1}
  - name: mistral
    kind: replay
    parser: plain
    datasets: [xstest]
    params: {path: outputs.jsonl, where: {model: mistral}, model: mistral-instruct}
judges:
  - kind: offline
  - kind: refusal
  - kind: keyword
parts: [reasoning, answer, whole]
judge_cache: null
"""

BUILD = """
import asyncio, sys
from pathlib import Path
from safemlrm.core.config import load_config
from safemlrm.pipeline.runner import Pipeline
config = load_config(sys.argv[1])
result = asyncio.run(Pipeline(config, Path(sys.argv[2]), base_dir=Path(sys.argv[1]).parent,
                              progress=False, reports=False).run())
print(result.counters.as_dict())
"""


def child(args: list[str], cwd: Path) -> dict[str, Any]:
    """Run one child process to its end; its own peak RSS (from wait4), wall time and exit status."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    return {
        "returncode": os.waitstatus_to_exitcode(status),
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1),  # Linux reports kilobytes
        "stdout_tail": stdout[-300:],
        "stderr_tail": stderr[-800:],
    }


def synthetic(records: int, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(work / "probes.jsonl", harmful_rows(records))
    config = work / "run.yaml"
    config.write_text(SYNTHETIC_CONFIG.format(data=data, filler=FILLER.strip()), encoding="utf-8")
    run_dir = work / "run"
    print(f"{records} records: building the store ...", flush=True)
    build = child(["-c", BUILD, str(config), str(run_dir)], work)
    if build["returncode"] != 0:
        print(build["stderr_tail"], file=sys.stderr)
        return {"records": records, "build": build}
    print(f"  built in {build['wall_s']} s; safemlrm report ...", flush=True)
    report = child(["-m", "safemlrm", "report", str(run_dir)], work)
    goal = GOALS_MB.get(records)
    result = {
        "records": records,
        "store_mb": round((run_dir / "run.sqlite").stat().st_size / 2**20, 1),
        "build_wall_s": build["wall_s"],
        "report": {k: report[k] for k in ("returncode", "wall_s", "peak_rss_mb")},
        "goal_mb": goal,
        "goal_met": None if goal is None else report["returncode"] == 0 and report["peak_rss_mb"] < goal,
    }
    if report["returncode"] != 0:
        result["report"]["stderr_tail"] = report["stderr_tail"]
    print(f"  report: exit {report['returncode']}, {report['wall_s']} s, peak RSS {report['peak_rss_mb']} MB")
    return result


def write_real_inputs(data: Path, work: Path) -> None:
    """star1.jsonl (300 R1 prompts), xstest.jsonl (400 XSTest prompts) and outputs.jsonl (both models)."""
    traces = json.loads((data / "reasoning_traces" / "star1_r1_traces_dev.json").read_text(encoding="utf-8"))
    with (data / "judge_validation" / "xstest_v2_completions_dev.csv").open(encoding="utf-8", newline="") as f:
        xstest = [r for r in csv.DictReader(f) if r["model"] == "mistralinstruct"][:400]
    star1 = [{"id": f"s{t['id']}", "prompt": t["question"], "category": "STAR-1"} for t in traces]
    xs = [
        {"id": f"x{r['id']}", "prompt": r["prompt"], "category": r["type"], "benign": r["prompt_label"] == "safe"}
        for r in xstest
    ]
    outputs = [{"id": f"s{t['id']}", "output": t["response"], "model": "r1"} for t in traces] + [
        {"id": f"x{r['id']}", "output": r["completion"], "model": "mistral"} for r in xstest
    ]
    write_jsonl(work / "star1.jsonl", star1)
    write_jsonl(work / "xstest.jsonl", xs)
    write_jsonl(work / "outputs.jsonl", outputs)


def real(data: Path, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    write_real_inputs(data, work)
    config = work / "run.yaml"
    config.write_text(REAL_CONFIG, encoding="utf-8")
    run_dir = work / "run"
    print("700 real outputs, 3 judges: the run (judging takes minutes on a laptop CPU) ...", flush=True)
    build = child(["-c", BUILD, str(config), str(run_dir)], work)
    if build["returncode"] != 0:
        print(build["stderr_tail"], file=sys.stderr)
        return {"build": build}
    print(f"  run {build['wall_s']} s; safemlrm report ...", flush=True)
    report = child(["-m", "safemlrm", "report", str(run_dir)], work)
    print(f"  report: exit {report['returncode']}, {report['wall_s']} s, peak RSS {report['peak_rss_mb']} MB")
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8")) if report["returncode"] == 0 else {}
    return {
        "outputs": sum(t.get("generations", 0) for t in summary.get("targets", {}).values()),
        "judges": [j["label"] for j in summary.get("run", {}).get("judges", [])],
        "run_wall_s": build["wall_s"],
        "report": {k: report[k] for k in ("returncode", "wall_s", "peak_rss_mb")},
        "headline_judge": summary.get("run", {}).get("primary_judge"),
        "goal_s": REAL_GOAL_S,
        "goal_met": report["returncode"] == 0 and report["wall_s"] < REAL_GOAL_S,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, nargs="*", default=[20_000, 100_000])
    parser.add_argument("--data", help="the shared fixture data folder (runs the 700-output replay)")
    parser.add_argument("--keep", help="keep the runs in this folder instead of a temporary one")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="safemlrm-report-") as scratch:
        work = Path(args.keep) if args.keep else Path(scratch)
        results: dict[str, Any] = {"synthetic": [synthetic(n, work / f"synthetic-{n}") for n in args.records]}
        if args.data:
            data = Path(args.data)
            if (data / "reasoning_traces").is_dir():
                results["real"] = real(data, work / "real-700")
            else:
                print(f"{data}: no shared fixture data there; the real run is skipped", file=sys.stderr)
    command = "python benchmarks/report_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if results["synthetic"]:  # each part keeps its own file, so running one does not erase the other
        write_result("report_speed", {"command": command, "synthetic": results["synthetic"]})
    if "real" in results:
        write_result("report_speed_real", {"command": command, "real": results["real"]})
    met = [r.get("goal_met") for r in results["synthetic"]] + [results.get("real", {}).get("goal_met")]
    return 0 if all(m is not False for m in met) else 1


if __name__ == "__main__":
    raise SystemExit(main())
