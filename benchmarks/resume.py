"""Resume: a second run of a finished run makes zero calls and takes under 5% of the first run's time.

The first run is the throughput benchmark's pipeline (one generation and three rubric-judge calls per
probe against the mock server, 100 ms latency, 64 requests in flight); the second run is the same
config on the same run directory. Both are timed in-process (the pipeline's generate, parse and judge
stages, reports off), so Python's start-up, the same for both, is left out. The server's request
counter proves the zero.

    .venv/bin/python benchmarks/resume.py                # about 20 s
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import MockServerProcess, harmful_rows, measure, write_jsonl, write_result
from api_throughput import pipeline_config, run_pipeline

GOAL = 0.05


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args(argv)

    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="safemlrm-resume-") as scratch, MockServerProcess(
        "--latency-ms", str(args.latency_ms), "--bench-replies"
    ) as server:
        data = write_jsonl(Path(scratch) / "probes.jsonl", harmful_rows(args.probes))
        config = pipeline_config(data, server.base_url)
        run_pipeline(config, Path(scratch) / "warm-up")  # imports and first-use costs out of the timing
        run_dir = Path(scratch) / "run"
        for name in ("first", "second"):
            server.reset()
            with measure() as meter:
                counters = run_pipeline(config, run_dir)
            requests = int(server.stats()["requests"])
            runs[name] = {
                "wall_s": round(meter.wall_s, 3),
                "cpu_s": round(meter.cpu_s, 3),
                "server_requests": requests,
                "counters": counters.as_dict(),
            }
            print(f"  {name:<6} run: {meter.wall_s:6.2f} s, {requests} requests to the server", flush=True)
    first, second = runs["first"], runs["second"]
    ratio = second["wall_s"] / first["wall_s"]
    calls = second["counters"]["target_calls"] + second["counters"]["judge_calls"]
    summary = {
        "probes": args.probes,
        "first_run_s": first["wall_s"],
        "second_run_s": second["wall_s"],
        "second_over_first": round(ratio, 4),
        "second_run_calls": calls,
        "second_run_server_requests": second["server_requests"],
        "second_run_ms_per_probe": round(1000 * second["wall_s"] / args.probes, 3),
        "goal_second_over_first": GOAL,
        "goal_met": ratio < GOAL and calls == 0 and second["server_requests"] == 0,
    }
    for key, value in summary.items():
        print(f"  {key}: {value}")
    write_result(
        "resume",
        {
            "command": "python benchmarks/resume.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "summary": summary,
            "runs": runs,
        },
    )
    return 0 if summary["goal_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
