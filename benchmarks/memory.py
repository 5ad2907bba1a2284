"""Memory: a 100,000-probe synthetic run stays under 1 GB resident.

A generated JSON Lines file of 100,000 samples, the `fake` target (a reply with `<think>` reasoning
that quotes each prompt, so every text differs), the `keyword` judge on reasoning, answer and whole.
Each stage runs in its own child process and its peak resident set size (``ru_maxrss``) is read when
it exits: the run itself, a rerun (zero calls), `safemlrm export`, and the report stage (Markdown and tables
only, then with the HTML report), which reads the run back through `load_run`.

    .venv/bin/python benchmarks/memory.py                 # about 5-10 minutes on 2 cores
    .venv/bin/python benchmarks/memory.py --probes 20000  # a quicker look
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import harmful_rows, write_jsonl, write_result

LIMIT_MB = 1024.0

CONFIG = """\
name: memory
datasets:
  - kind: jsonl
    params: {{path: {data}}}
targets:
  - name: model
    kind: fake
    reasoning: true
    parser: think_tags
    params:
      default: "<think>The user asks: {{prompt}}. I weigh the request carefully.</think>Sure, about {{sample_id}}: no."
judges:
  - kind: keyword
parts: [reasoning, answer, whole]
judge_cache: null
concurrency: 64
html_report: false
"""

RUN_PIPELINE = """
import asyncio, sys
from pathlib import Path
from safemlrm.core.config import load_config
from safemlrm.pipeline.runner import Pipeline
config = load_config(sys.argv[1])
result = asyncio.run(Pipeline(config, Path(sys.argv[2]), base_dir=Path(sys.argv[1]).parent,
                              progress=False, reports=False).run())
print(result.counters.as_dict())
"""

REPORT = """
import sys
from pathlib import Path
from safemlrm.report import write_reports
from safemlrm.core.store import load_run
print(write_reports(load_run(sys.argv[1]), Path(sys.argv[1]), None, html=sys.argv[2] == "html"))
"""


def child(args: list[str], cwd: Path) -> dict[str, Any]:
    """Run one child process to its end; its own peak RSS (from wait4), wall time and exit status."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    return {
        "returncode": proc.returncode,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1),  # Linux reports kilobytes
        "stdout_tail": stdout[-400:],
        "stderr_tail": stderr[-800:],
    }


def _has_report_stage() -> bool:
    import importlib

    try:  # `safemlrm.report` the module, not the `report` function safemlrm re-exports
        module = importlib.import_module("safemlrm.report")
    except ImportError:
        return False
    return hasattr(module, "write_reports")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", type=int, default=100_000)
    parser.add_argument("--keep", help="keep the run in this folder instead of a temporary one")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="safemlrm-mem-") as scratch:
        work = Path(args.keep) if args.keep else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        data = write_jsonl(work / "probes.jsonl", harmful_rows(args.probes))
        config = work / "memory.yaml"
        config.write_text(CONFIG.format(data=data), encoding="utf-8")
        run_dir = work / "run"
        stages: dict[str, dict[str, Any]] = {}
        steps = [
            ("run", ["-c", RUN_PIPELINE, str(config), str(run_dir)]),
            ("rerun", ["-c", RUN_PIPELINE, str(config), str(run_dir)]),
            ("export", ["-m", "safemlrm", "export", str(run_dir), "--format", "jsonl"]),
        ]
        if _has_report_stage():
            steps.append(("report_md", ["-c", REPORT, str(run_dir), "md"]))
            steps.append(("report_html", ["-c", REPORT, str(run_dir), "html"]))
        for name, step in steps:
            print(f"{name} ...", flush=True)
            stages[name] = child(step, work)
            s = stages[name]
            print(f"  exit {s['returncode']}, {s['wall_s']} s, peak RSS {s['peak_rss_mb']} MB", flush=True)
            if s["returncode"] != 0:
                print(s["stderr_tail"], file=sys.stderr)
        store_mb = (run_dir / "run.sqlite").stat().st_size / 2**20 if (run_dir / "run.sqlite").exists() else 0.0
    # The run itself, its resume and export are the goal; the reports are shown beside them.
    core = {k: v for k, v in stages.items() if not k.startswith("report")}
    peak = max(s["peak_rss_mb"] for s in core.values())
    ok = all(s["returncode"] == 0 for s in stages.values())
    summary = {
        "probes": args.probes,
        "peak_rss_mb_by_stage": {k: v["peak_rss_mb"] for k, v in stages.items()},
        "wall_s_by_stage": {k: v["wall_s"] for k, v in stages.items()},
        "peak_rss_mb_run_rerun_export": peak,
        "limit_mb": LIMIT_MB,
        "store_size_mb": round(store_mb, 1),
        "goal_met": ok and peak < LIMIT_MB,
        "reports_under_limit": {k: v["peak_rss_mb"] < LIMIT_MB for k, v in stages.items() if k.startswith("report")},
    }
    for key, value in summary.items():
        print(f"  {key}: {value}")
    write_result(
        "memory",
        {
            "command": "python benchmarks/memory.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "summary": summary,
            "stages": stages,
        },
    )
    return 0 if summary["goal_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
