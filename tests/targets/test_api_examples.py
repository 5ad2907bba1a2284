"""The example configs of the hosted-API targets run end to end against a mock server of their API."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.attacks._helpers import needs_freemono
from tests.targets._api import SECRET

from safemlrm.core.store import load_run
from safemlrm.testing.mock_anthropic import MockAnthropicServer
from safemlrm.testing.mock_gemini import MockGeminiServer
from safemlrm.testing.mock_server import MockChatServer, MockReply
from safemlrm.verbs import api

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REPLY = MockReply(content="I will not help with that.", reasoning="The user asks for harm; I refuse.")


@contextmanager
def serving(server: MockChatServer) -> Iterator[str]:
    """The server on its own event loop in a thread (the run has its own loop)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@needs_freemono
@pytest.mark.parametrize(
    ("example", "server_cls", "env", "labels"),
    [
        ("anthropic_claude.yaml", MockAnthropicServer, "ANTHROPIC_API_KEY", ["claude-thinking", "claude"]),
        ("gemini.yaml", MockGeminiServer, "GEMINI_API_KEY", ["gemini-flash"]),
    ],
)
def test_example_runs_against_its_mock_api(
    example: str,
    server_cls: type[MockChatServer],
    env: str,
    labels: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(env, SECRET)
    server = server_cls(reply=lambda body: REPLY, api_key=SECRET, record_requests=True)
    with serving(server) as base_url:
        overrides = [f"targets.{label}.params.base_url={base_url}" for label in labels] + ["judge_cache=null"]
        result = api.run(EXAMPLES / example, tmp_path / "run", overrides=overrides)
    records = load_run(tmp_path / "run").records
    assert result.counters.target_calls == server.request_count > 0
    assert server.outcomes == {"ok": server.request_count}  # every request carried the key
    assert any(_has_image(body) for body in server.requests)  # figstep probes sent images
    assert {r.generation.target for r in records} == set(labels)
    assert all(r.generation.text == REPLY.content for r in records)
    # Thinking on: the thinking blocks / thought summaries were stored as the reasoning, apart.
    thinking = [r for r in records if r.generation.target == labels[0]]
    assert thinking and all(r.generation.reasoning == REPLY.reasoning for r in thinking)
    assert all(r.parsed.answer == REPLY.content for r in thinking)
    for path in (tmp_path / "run").rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path


def _has_image(body: dict[str, object]) -> bool:
    raw = repr(body)
    return "'image'" in raw or "inline_data" in raw
