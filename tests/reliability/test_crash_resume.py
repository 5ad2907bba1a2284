"""`kill -9` of a run against an OpenAI-compatible server, several times at random points, then a resume:
the final store holds the same keys and contents as an uninterrupted run (latencies aside)."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import harmful_rows, store_contents, stored_generations, write_jsonl

CONFIG = """\
name: crash
datasets:
  - kind: jsonl
    params: {{path: data.jsonl}}
targets:
  - name: model
    kind: openai
    parser: think_tags
    reasoning: true
    params: {{base_url: "{url}", model: mock-model, max_concurrency: 2, max_retries: 0}}
judges:
  - kind: rubric
    params:
      model: {{name: judge, kind: openai, params: {{base_url: "{url}", model: mock-judge, max_concurrency: 6}}}}
judge_cache: null
concurrency: 8
html_report: false
"""
N_PROBES = 60


@pytest.fixture
def server_url() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "safemlrm.testing.mock_server", "--port", "0", "--latency-ms", "100", "--bench-replies"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        match = re.search(r"(http://\S+/v1)", proc.stdout.readline())
        assert match, "mock server did not start"
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def command(work: Path) -> list[str]:
    return [sys.executable, "-m", "safemlrm", "run", str(work / "run.yaml"), "--out", "r", "--no-progress"]


def setup(work: Path, url: str) -> None:
    work.mkdir()
    write_jsonl(work / "data.jsonl", harmful_rows(N_PROBES))
    (work / "run.yaml").write_text(CONFIG.format(url=url), encoding="utf-8")


@pytest.mark.slow
def test_kill_9_mid_flight_then_resume_equals_an_uninterrupted_run(tmp_path: Path, server_url: str) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    reference = tmp_path / "reference"
    setup(reference, server_url)
    done = subprocess.run(command(reference), cwd=reference, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    expected = store_contents(reference / "r")
    assert len(expected["generations"]) == N_PROBES and len(expected["scores"]) == 3 * N_PROBES

    work = tmp_path / "killed"
    setup(work, server_url)
    rng = random.Random(99)
    kills = 0
    partial_generations: list[int] = []
    # Kill when the store holds a random number of generations (a point mid-flight whatever the
    # machine's speed), or once the process has run for a random while, whichever comes first.
    for low, high in ((5, 20), (22, 38), (40, 55)):
        wanted = rng.randint(low, high)
        proc = subprocess.Popen(command(work), cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and stored_generations(work / "r") < wanted:
            time.sleep(rng.uniform(0.02, 0.08))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        partial_generations.append(stored_generations(work / "r"))
    assert kills == 3, "the run finished before it could be killed"
    assert all(0 < n < N_PROBES for n in partial_generations), partial_generations  # killed mid-flight
    final = subprocess.run(command(work), cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert store_contents(work / "r") == expected
