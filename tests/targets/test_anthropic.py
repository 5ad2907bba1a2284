"""The anthropic target against a mock of the Messages API: requests, thinking, errors, the key."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.targets._api import SECRET, FakeSleep, png, probe

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.registry import PluginConfigError
from safemlrm.targets._client import encode_image
from safemlrm.targets.anthropic import (
    AnthropicParams,
    AnthropicTarget,
    build_messages_request,
    messages_url,
    parse_messages_response,
)
from safemlrm.testing.mock_anthropic import MockAnthropicServer
from safemlrm.testing.mock_server import Fault, FaultRates, MockReply


def make_target(**params: Any) -> AnthropicTarget:
    params.setdefault("model", "claude-test")
    params.setdefault("api_key_env", "SAFEMLRM_ANTHROPIC_KEY")
    target = plugins.targets.create("anthropic", params, PluginContext(label="claude"))
    assert isinstance(target, AnthropicTarget)
    return target


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEMLRM_ANTHROPIC_KEY", SECRET)


def message(*blocks: dict[str, Any], stop: str = "end_turn") -> dict[str, Any]:
    return {
        "type": "message",
        "content": list(blocks),
        "stop_reason": stop,
        "usage": {"input_tokens": 3, "output_tokens": 9},
    }


# ---------------------------------------------------------------- mappings


def test_messages_url() -> None:
    assert messages_url("https://api.anthropic.com") == "https://api.anthropic.com/v1/messages"
    assert messages_url("http://h:1/v1/") == "http://h:1/v1/messages"
    assert messages_url("http://h:1/v1/messages") == "http://h:1/v1/messages"


def test_request_puts_system_on_top_and_images_as_base64_blocks(tmp_path: Path) -> None:
    ref = png(tmp_path / "a.png", (20, 10))
    params = AnthropicParams(model="m", max_new_tokens=300, temperature=0.3, top_k=5)
    body = build_messages_request(
        probe("What is shown?", images=(ref,), system="Be safe."), params, encode_image_of(None)
    )
    assert body["system"] == "Be safe." and body["max_tokens"] == 300 and body["model"] == "m"
    assert body["temperature"] == 0.3 and body["top_k"] == 5 and "thinking" not in body
    (user,) = body["messages"]
    assert user["role"] == "user" and [b["type"] for b in user["content"]] == ["image", "text"]
    source = user["content"][0]["source"]
    assert source["type"] == "base64" and source["media_type"] == "image/png"
    assert base64.b64decode(source["data"]) == Path(ref.path).read_bytes()


def encode_image_of(max_pixels: int | None) -> Any:
    return lambda ref: encode_image(ref.path, max_pixels)


def test_thinking_request_sends_the_budget_and_no_temperature() -> None:
    params = AnthropicParams(model="m", max_new_tokens=4000, thinking_budget=2048, temperature=0.7)
    body = build_messages_request(probe("q"), params, encode_image_of(None))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert "temperature" not in body and body["max_tokens"] == 4000


def test_params_refuse_what_the_api_would_refuse() -> None:
    with pytest.raises(PluginConfigError, match="below max_new_tokens"):
        make_target(thinking_budget=2048, max_new_tokens=1024)
    with pytest.raises(PluginConfigError, match="thinking_budget"):
        make_target(thinking_budget=100, max_new_tokens=4000)  # the API's minimum is 1024
    with pytest.raises(PluginConfigError, match="chat_template_kwargs"):
        make_target(chat_template_kwargs={"enable_thinking": True})  # what `thinking: on` fills
    with pytest.raises(PluginConfigError, match="model"):
        plugins.targets.create("anthropic", {}, PluginContext())


def test_parse_keeps_thinking_apart_and_marks_redacted_thinking() -> None:
    reply = parse_messages_response(
        message(
            {"type": "thinking", "thinking": "First I weigh it.", "signature": "s"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "I can't help"},
            {"type": "text", "text": " with that."},
            stop="max_tokens",
        )
    )
    assert reply.text == "I can't help with that."
    assert reply.reasoning == "First I weigh it.\n\n[redacted thinking: 1 block encrypted by the API]"
    assert reply.finish_reason == "length"
    assert reply.usage == {
        "input_tokens": 3,
        "output_tokens": 9,
        "prompt_tokens": 3,
        "completion_tokens": 9,
        "redacted_thinking_blocks": 1,
    }
    only_redacted = parse_messages_response(
        message({"type": "redacted_thinking", "data": "x"}, {"type": "text", "text": "ok"})
    )
    assert only_redacted.reasoning is not None and "redacted thinking" in only_redacted.reasoning
    plain = parse_messages_response(message({"type": "text", "text": "No."}, stop="refusal"))
    assert plain.reasoning is None and plain.finish_reason == "content_filter"


# ---------------------------------------------------------------- against the mock server


async def test_reasoning_and_answer_come_back_apart_with_headers_and_images(tmp_path: Path) -> None:
    ref = png(tmp_path / "a.png", (64, 64))
    reply = MockReply(content="Here is the answer.", reasoning="Let me think.", finish_reason="stop")
    async with MockAnthropicServer(
        reply=lambda body: reply, record_requests=True, api_key=SECRET, redacted_thinking=2
    ) as server:
        target = make_target(base_url=server.base_url, thinking_budget=1024, max_new_tokens=2000, max_pixels=1024)
        (gen,) = await target.generate([probe("look", images=(ref,))])
        await target.aclose()
    assert gen.ok, gen.error
    assert gen.text == "Here is the answer." and gen.finish_reason == "stop"
    assert gen.reasoning == "Let me think.\n\n[redacted thinking: 2 blocks encrypted by the API]"
    assert gen.usage["redacted_thinking_blocks"] == 2 and gen.usage["prompt_tokens"] == 1
    assert server.versions == ["2023-06-01"] and server.authorizations == {SECRET: 1}
    (body,) = server.requests
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    image = body["messages"][0]["content"][0]["source"]
    assert image["media_type"] == "image/png" and len(base64.b64decode(image["data"])) > 0
    assert target.client.usage["output_tokens"] == gen.usage["output_tokens"]


async def test_without_thinking_no_reasoning_is_invented() -> None:
    async with MockAnthropicServer(reasoning="hidden") as server:
        target = make_target(base_url=server.base_url)
        (gen,) = await target.generate([probe("hello")])
        await target.aclose()
    assert gen.ok and gen.text == "Echo: hello" and gen.reasoning is None


async def test_rate_limit_429_honours_retry_after() -> None:
    faults = iter([Fault.RATE_LIMIT, Fault.RATE_LIMIT])
    async with MockAnthropicServer(fault_fn=lambda body: next(faults, None), retry_after="7") as server:
        target = make_target(base_url=server.base_url, backoff_base_s=0.01, backoff_max_s=0.02)
        target.sleep = sleep = FakeSleep()
        (gen,) = await target.generate([probe("x")])
        await target.aclose()
    assert gen.ok and sleep.slept == [7.0, 7.0] and server.request_count == 3


async def test_overloaded_529_is_retried_and_ends_as_an_error_after_the_last_retry() -> None:
    async with MockAnthropicServer(faults=FaultRates(server_error=1.0)) as server:
        target = make_target(base_url=server.base_url, max_retries=2, backoff_base_s=0.001, backoff_max_s=0.002)
        (gen,) = await target.generate([probe("x")])
        await target.aclose()
    assert gen.error is not None and gen.error.startswith("failed after 3 attempts: HTTP 529")
    assert "overloaded_error" in gen.error and server.request_count == 3


async def test_spend_limit_429_is_final() -> None:
    async with MockAnthropicServer(faults=FaultRates(rate_limit=1.0), spend_limit=True) as server:
        target = make_target(base_url=server.base_url, backoff_base_s=0.001)
        (gen,) = await target.generate([probe("x")])
        await target.aclose()
    assert gen.error is not None and gen.error.startswith("HTTP 429") and server.request_count == 1


async def test_bad_key_is_final_and_the_echoed_key_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with MockAnthropicServer(api_key="the-right-key") as server:  # 401 echoing the offered key
        target = make_target(base_url=server.base_url)
        (gen,) = await target.generate([probe("x")])
        await target.aclose()
    assert server.request_count == 1 and gen.error is not None and gen.error.startswith("HTTP 401")
    assert "***" in gen.error and SECRET not in gen.model_dump_json() and SECRET not in caplog.text
    assert SECRET not in orjson.dumps(target.identity()).decode() and SECRET not in repr(vars(target))


async def test_missing_key_variable_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFEMLRM_ANTHROPIC_KEY")
    async with MockAnthropicServer() as server:
        target = make_target(base_url=server.base_url)
        (gen,) = await target.generate([probe("x")])
        await target.aclose()
    assert gen.error is not None and "SAFEMLRM_ANTHROPIC_KEY" in gen.error and server.request_count == 0


async def test_faults_lose_nothing_and_answers_stay_with_their_probes() -> None:
    faults = FaultRates(rate_limit=0.1, server_error=0.1, malformed=0.05, drop=0.05)
    async with MockAnthropicServer(faults=faults, retry_after="0.01", seed=3) as server:
        target = make_target(base_url=server.base_url, max_retries=8, backoff_base_s=0.001, backoff_max_s=0.005)
        probes = [probe(f"p {i}", f"s{i}") for i in range(80)]
        gens = await target.generate(probes)
        await target.aclose()
    assert [g.text for g in gens] == [f"Echo: p {i}" for i in range(80)]
    assert server.request_count > 80 and {"rate_limit", "server_error", "malformed", "drop"} <= set(server.outcomes)
