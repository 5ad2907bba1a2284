"""API keys come only from the environment and reach no store, export, report or log.

A full run through the CLI against a mock server that requires a key: one target with the right key,
one whose key is wrong (the server echoes the offered key in its 401 error, as real APIs do). Then
every file of the run directory, the exports and the captured logs are searched for both keys.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import harmful_rows, write_jsonl

from safemlrm.core import plugins

GOOD_KEY = "sk-test-GOOD-0123456789abcdefSECRET"
BAD_KEY = "sk-test-WRONG-9876543210fedcbaSECRET"

CONFIG = """\
name: secrets
datasets:
  - kind: jsonl
    params: {{path: data.jsonl}}
targets:
  - name: model
    kind: openai
    parser: think_tags
    reasoning: true
    params: {{base_url: "{url}", model: mock-model, api_key_env: SAFEMLRM_TEST_KEY, max_retries: 0}}
  - name: wrong-key
    kind: openai
    params: {{base_url: "{url}", model: mock-model, api_key_env: SAFEMLRM_TEST_WRONG_KEY, max_retries: 0}}
judges:
  - kind: rubric
    params:
      model:
        name: judge
        kind: openai
        params: {{base_url: "{url}", model: mock-judge, api_key_env: SAFEMLRM_TEST_KEY}}
  - kind: keyword
judge_cache: null
html_report: true
"""


@pytest.fixture
def keyed_server() -> Iterator[str]:
    code = (
        "import asyncio, sys\n"
        "from safemlrm.testing.mock_server import MockChatServer, bench_reply\n"
        "async def main():\n"
        f"    server = MockChatServer(reply=bench_reply, api_key={GOOD_KEY!r})\n"
        "    print(await server.start(), flush=True)\n"
        "    await asyncio.Event().wait()\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_keys_never_reach_stores_exports_reports_or_logs(tmp_path: Path, keyed_server: str) -> None:
    write_jsonl(tmp_path / "data.jsonl", harmful_rows(6))
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG.format(url=keyed_server), encoding="utf-8")
    env = {**os.environ, "SAFEMLRM_TEST_KEY": GOOD_KEY, "SAFEMLRM_TEST_WRONG_KEY": BAD_KEY, "PYTHONUNBUFFERED": "1"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "safemlrm", "-v", *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )

    run = cli("run", str(config), "--out", "r", "--no-progress")
    assert run.returncode == 0, run.stderr
    assert "judge calls 36 made" in run.stdout  # the good key works: 6 generations x 3 parts x 2 judges
    assert "(6 errors)" in run.stdout  # the wrong key's 401s are stored as errors
    outputs = [run.stdout, run.stderr]
    for fmt in ("jsonl", "parquet"):
        exported = cli("export", "r", "--format", fmt)
        assert exported.returncode == 0, exported.stderr
        outputs += [exported.stdout, exported.stderr]
    report = cli("report", "r")
    assert report.returncode == 0, report.stderr
    outputs += [report.stdout, report.stderr]

    files = [p for p in (tmp_path / "r").rglob("*") if p.is_file()]
    assert {"run.sqlite", "export.jsonl", "export.parquet", "report.html", "summary.json"} <= {p.name for p in files}
    store_text = (tmp_path / "r" / "run.sqlite").read_bytes()
    assert b"401" in store_text and b"Incorrect API key" in store_text  # the error is kept, the key is not
    for secret in (GOOD_KEY, BAD_KEY):
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"{secret[:12]}... found in {path}"
        for text in outputs:
            assert secret not in text
    assert "SAFEMLRM_TEST_KEY" in store_text.decode("utf-8", "replace")  # the variable's name is recorded


def test_api_keys_cannot_be_put_in_a_config() -> None:
    params = plugins.targets.get("openai").Params
    assert "api_key" not in params.model_fields and "api_key_env" in params.model_fields
    with pytest.raises(ValueError, match="api_key"):
        params.model_validate({"model": "m", "api_key": GOOD_KEY})


@pytest.mark.parametrize("kind", ["hf", "vllm"])
def test_trust_remote_code_is_off_unless_asked_for(kind: str) -> None:
    try:
        params = plugins.targets.get(kind).Params
    except LookupError:
        pytest.skip(f"no {kind} target registered")
    field = params.model_fields.get("trust_remote_code")
    assert field is not None and field.default is False
