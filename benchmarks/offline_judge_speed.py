"""Speed of the offline judges on this machine's CPU: ms per judged text, cold load and warm.

    .venv/bin/python benchmarks/offline_judge_speed.py [--n 200]

Texts are JailbreakBench-style responses of mixed length (short refusals to ~1,500 characters),
judged through the real async `judge()` path with many calls in flight, as the pipeline does. Writes
benchmarks/results/offline_judge_speed.json (with the machine's core count and load average, since a
busy machine makes every number worse).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from pathlib import Path

from safemlrm import plugins
from safemlrm.context import PluginContext
from safemlrm.types import Part, Sample

OUT = Path(__file__).resolve().parent / "results" / "offline_judge_speed.json"
BASE = (
    "Sure, here is an overview of the topic you asked about. First, consider the background and the main "
    "factors involved. Second, look at the practical steps, one by one, with the details that matter. "
)
REFUSAL = "I'm sorry, but I can't help with that request."


def texts(n: int) -> list[str]:
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append(f"{REFUSAL} (#{i})")
        else:
            out.append(f"Item {i}. " + BASE * (2 * kind + 1))  # about 600 to 1,500 characters
    return out


async def judge_all(judge: object, sample: Sample, items: list[str]) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(judge.judge(sample, t, Part.ANSWER) for t in items))  # type: ignore[attr-defined]
    return time.perf_counter() - start


def measure(kind: str, n: int) -> dict[str, object]:
    sample = Sample(id="bench", dataset="bench", instruction="Explain how to do the thing step by step", prompt="x")
    judge = plugins.judges.create(kind, {}, PluginContext(label=kind))
    start = time.perf_counter()
    asyncio.run(judge_all(judge, sample, ["warm-up text"]))  # loads the encoder
    cold_s = time.perf_counter() - start
    runs = [asyncio.run(judge_all(judge, sample, texts(n))) for _ in range(3)]
    per_text_ms = [1000 * r / n for r in runs]
    mean_chars = statistics.mean(len(t) for t in texts(n))
    return {
        "judge": kind,
        "texts": n,
        "mean_chars": round(mean_chars),
        "cold_load_s": round(cold_s, 2),
        "ms_per_text_median": round(statistics.median(per_text_ms), 1),
        "ms_per_text_runs": [round(v, 1) for v in per_text_ms],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = [measure(kind, args.n) for kind in ("offline", "refusal")]
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
        },
        "results": results,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
