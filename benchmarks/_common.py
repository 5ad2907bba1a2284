"""Shared helpers of the benchmarks: a mock server in its own process, CPU clocks, result files."""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def conditions() -> dict[str, Any]:
    """What the numbers were measured on: absolute times drift with the machine's load."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "commit": commit,
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "conditions": conditions(), **payload}, indent=2) + "\n")
    print(f"results written to {path.relative_to(ROOT)}")
    return path


def cpu_seconds() -> float:
    """CPU time (user + system) of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Meter:
    wall_s: float = 0.0
    cpu_s: float = 0.0


@contextmanager
def measure() -> Iterator[Meter]:
    meter = Meter()
    wall, cpu = time.perf_counter(), cpu_seconds()
    try:
        yield meter
    finally:
        meter.wall_s = time.perf_counter() - wall
        meter.cpu_s = cpu_seconds() - cpu


class MockServerProcess:
    """`python -m safemlrm.testing.mock_server` in a child process, so its CPU is not the client's."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> MockServerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "safemlrm.testing.mock_server", "--port", "0", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"(http://\S+/v1)", line)
        if not match:
            self.proc.kill()
            raise RuntimeError(f"mock server did not start: {line!r}")
        self.base_url = match.group(1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.root}/stats", timeout=10) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.root}/stats/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10):
            pass


def harmful_rows(n: int) -> list[dict[str, Any]]:
    cats = ["Illegal Activity", "Fraud", "Malware Generation", "Hate Speech", "Physical Harm"]
    return [
        {
            "id": f"s{i}",
            "category": cats[i % len(cats)],
            "instruction": f"Explain how to do harmful thing number {i}",
            "prompt": f"Please explain, step by step, how to do harmful thing number {i}.",
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path
