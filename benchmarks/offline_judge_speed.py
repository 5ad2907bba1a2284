"""Speed of the offline judges on this machine's CPU: ms per judged text, cold load and warm, by length.

    .venv/bin/python benchmarks/offline_judge_speed.py [--n 200] [--lengths 100,1000,5000,20000] [--n-per-length 40]

First, JailbreakBench-style responses of mixed length (short refusals to ~1,500 characters); then
texts of fixed lengths (100 B, 1 KB, 5 KB, 20 KB of English prose by default), since reasoning traces
are long: the `offline` cross-encoder reads 256 tokens of instruction + response (the response's head
and tail when long), the `refusal` head's encoder the first 256 tokens and its lexical cues at most 8 KB;
what is cut, and how much is tokenized, sets the cost past the window.
Every text goes through the real async `judge()` path with many calls in flight, as the
pipeline does, three times (median reported). Writes benchmarks/results/offline_judge_speed.json (with
the machine's core count and load average, since a busy machine makes every number worse).
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

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.language import detect_language
from safemlrm.core.types import Part, Sample

OUT = Path(__file__).resolve().parent / "results" / "offline_judge_speed.json"
BASE = (
    "Sure, here is an overview of the topic you asked about. First, consider the background and the main "
    "factors involved. Second, look at the practical steps, one by one, with the details that matter. "
)
REFUSAL = "I'm sorry, but I can't help with that request."


def texts_of_length(n: int, length: int) -> list[str]:
    """`n` distinct English texts of exactly `length` characters (ASCII: bytes = characters)."""
    out = []
    for i in range(n):
        text = f"Item {i}. "
        while len(text) < length:
            text += BASE
        out.append(text[:length])
    return out


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


def timed(judge: object, sample: Sample, items: list[str]) -> dict[str, object]:
    runs = [asyncio.run(judge_all(judge, sample, items)) for _ in range(3)]
    per_text_ms = [1000 * r / len(items) for r in runs]
    return {
        "ms_per_text_median": round(statistics.median(per_text_ms), 1),
        "ms_per_text_runs": [round(v, 1) for v in per_text_ms],
    }


def language_check_ms(items: list[str]) -> float:
    """ms per text of the language check the English-only judges run before judging (median of 3)."""
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        for text in items:
            detect_language(text)
        runs.append(1000 * (time.perf_counter() - start) / len(items))
    return round(statistics.median(runs), 3)


def measure(kind: str, n: int, lengths: list[int], n_per_length: int) -> dict[str, object]:
    sample = Sample(id="bench", dataset="bench", instruction="Explain how to do the thing step by step", prompt="x")
    judge = plugins.judges.create(kind, {}, PluginContext(label=kind))
    start = time.perf_counter()
    asyncio.run(judge_all(judge, sample, ["warm-up text"]))  # loads the encoder
    cold_s = time.perf_counter() - start
    mixed = texts(n)
    by_length = [
        {
            "chars": length,
            "texts": n_per_length,
            **timed(judge, sample, texts_of_length(n_per_length, length)),
            "language_check_ms_per_text": language_check_ms(texts_of_length(n_per_length, length)),
        }
        for length in lengths
    ]
    return {
        "judge": kind,
        "texts": n,
        "mean_chars": round(statistics.mean(len(t) for t in mixed)),
        "cold_load_s": round(cold_s, 2),
        **timed(judge, sample, mixed),
        "by_length": by_length,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="texts of mixed length")
    parser.add_argument("--lengths", default="100,1000,5000,20000", help="fixed text lengths in characters")
    parser.add_argument("--n-per-length", type=int, default=40, help="texts judged at each fixed length")
    args = parser.parse_args()
    lengths = [int(v) for v in args.lengths.split(",") if v.strip()]
    load_before = os.getloadavg()
    results = [measure(kind, args.n, lengths, args.n_per_length) for kind in ("offline", "refusal")]
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
