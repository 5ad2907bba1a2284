"""A whole run of the `openai` target against a faulty server: nothing lost, duplicated or leaked.

The mock server runs as its own process (as a real server would) injecting 429 with Retry-After,
500, hangs past the timeout, malformed JSON and dropped connections. The run must complete with one
stored generation (a result or an error) per probe, and running it again must retry only the failed
ones.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from safemlrm.core.config import RunConfig
from safemlrm.verbs import api

SECRET = "sk-run-fault-test-91b2c3d4e5f60718"


@pytest.fixture
def faulty_server() -> Iterator[str]:
    command = [
        sys.executable, "-m", "safemlrm.testing.mock_server", "--port", "0", "--latency-ms", "2",
        "--rate-429", "0.08", "--rate-500", "0.08", "--rate-hang", "0.04", "--rate-malformed", "0.05",
        "--rate-drop", "0.05", "--retry-after", "0.01", "--hang-s", "10", "--seed", "5",
        "--reasoning", "native reasoning",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on" in line, process.stderr.read() if process.stderr else line
        yield line.strip().rsplit(" ", 1)[-1]
    finally:
        process.terminate()
        process.wait(timeout=10)


def config(data: Path, base_url: str, max_retries: int) -> RunConfig:
    return RunConfig.model_validate(
        {
            "name": "faults",
            "datasets": [{"kind": "jsonl", "params": {"path": str(data)}}],
            "targets": [
                {
                    "name": "api",
                    "kind": "openai",
                    "parser": "think_tags",
                    "params": {
                        "model": "mock-model",
                        "base_url": base_url,
                        "api_key_env": "SAFEMLRM_RUN_FAULT_KEY",
                        "max_concurrency": 32,
                        "timeout_s": 0.3,
                        "max_retries": max_retries,
                        "backoff_base_s": 0.002,
                        "backoff_max_s": 0.01,
                    },
                }
            ],
            "judges": [{"kind": "keyword"}],
            "judge_cache": None,
            "html_report": False,
        }
    )


@pytest.mark.slow
def test_faulty_server_run_stores_every_probe_once_and_resumes_only_failures(
    tmp_path: Path, faulty_server: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SAFEMLRM_RUN_FAULT_KEY", SECRET)
    n = 250
    data = tmp_path / "prompts.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "category": "test", "instruction": f"request {i}", "prompt": f"request {i}"})
            + "\n"
            for i in range(n)
        ),
        encoding="utf-8",
    )
    run_dir = tmp_path / "run"

    # One attempt per request, so about 30% of the probes fail and are stored as errors.
    first = api.run(config(data, faulty_server, max_retries=0), run_dir)
    assert first.counters.target_calls == n
    failed_first = first.counters.target_errors
    assert 0.15 * n < failed_first < 0.45 * n

    records = api.load(run_dir).records
    assert len(records) == n
    assert len({r.probe.key for r in records}) == n and {r.sample.id for r in records} == {f"p{i}" for i in range(n)}
    for record in records:
        generation = record.generation
        if generation.ok:
            assert generation.text == f"Echo: request {record.sample.id[1:]}"
            assert generation.reasoning == "native reasoning"
        else:
            assert generation.error and generation.text == ""

    # A resumed run (now with retries) calls the target for the failed probes only.
    second = api.run(config(data, faulty_server, max_retries=6), run_dir)
    assert second.counters.target_calls == failed_first
    assert second.counters.target_cached == n - failed_first
    assert second.counters.target_errors <= 2
    records = api.load(run_dir).records
    assert len(records) == n and len({r.probe.key for r in records}) == n

    # The key went to the server but nowhere else: store, reports, logs.
    assert SECRET not in caplog.text
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
