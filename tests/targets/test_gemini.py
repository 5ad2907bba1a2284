"""The gemini target against a mock of generateContent: requests, thought summaries, errors, the key."""

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
from safemlrm.targets.gemini import (
    GeminiParams,
    GeminiTarget,
    build_generate_request,
    generate_content_url,
    parse_generate_response,
    retry_info_delay,
)
from safemlrm.testing.mock_gemini import MockGeminiServer
from safemlrm.testing.mock_server import Fault, FaultRates, MockReply


def make_target(**params: Any) -> GeminiTarget:
    params.setdefault("model", "gemini-test")
    params.setdefault("api_key_env", "SAFEMLRM_GEMINI_KEY")
    target = plugins.targets.create("gemini", params, PluginContext(label="gemini"))
    assert isinstance(target, GeminiTarget)
    return target


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEMLRM_GEMINI_KEY", SECRET)


def encoder(ref: Any) -> Any:
    return encode_image(ref.path)


# ---------------------------------------------------------------- mappings


def test_generate_content_url() -> None:
    base = "https://generativelanguage.googleapis.com/v1beta"
    assert generate_content_url(base, "gemini-2.5-flash") == f"{base}/models/gemini-2.5-flash:generateContent"
    assert generate_content_url(base + "/", "models/x") == f"{base}/models/x:generateContent"


def test_request_has_inline_images_system_instruction_and_thinking(tmp_path: Path) -> None:
    ref = png(tmp_path / "a.png", (20, 10))
    params = GeminiParams(model="m", max_new_tokens=500, temperature=0.4, seed=7, thinking_budget=1024)
    body = build_generate_request(probe("What is shown?", images=(ref,), system="Be safe."), params, encoder, sample=2)
    assert body["systemInstruction"] == {"parts": [{"text": "Be safe."}]}
    (user,) = body["contents"]
    assert user["role"] == "user" and user["parts"][1] == {"text": "What is shown?"}
    inline = user["parts"][0]["inline_data"]
    assert inline["mime_type"] == "image/png" and base64.b64decode(inline["data"]) == Path(ref.path).read_bytes()
    config = body["generationConfig"]
    assert config["maxOutputTokens"] == 500 and config["temperature"] == 0.4 and config["seed"] == 9
    assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 1024}
    off = build_generate_request(probe("q"), GeminiParams(model="m", include_thoughts=False), encoder)
    assert "thinkingConfig" not in off["generationConfig"]


def test_params_refuse_chat_template_switches() -> None:
    with pytest.raises(PluginConfigError, match="chat_template_kwargs"):
        make_target(chat_template_kwargs={"enable_thinking": False})


def test_parse_keeps_thought_summaries_apart_with_usage() -> None:
    reply = parse_generate_response(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"text": "I plan.", "thought": True}, {"text": "The answer."}],
                    },
                    "finishReason": "MAX_TOKENS",
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 5,
                "candidatesTokenCount": 3,
                "thoughtsTokenCount": 40,
                "totalTokenCount": 48,
            },
        }
    )
    assert (reply.text, reply.reasoning, reply.finish_reason) == ("The answer.", "I plan.", "length")
    assert reply.usage == {
        "prompt_tokens": 5,
        "candidates_tokens": 3,
        "reasoning_tokens": 40,
        "total_tokens": 48,
        "completion_tokens": 43,
    }
    safety = parse_generate_response({"candidates": [{"finishReason": "SAFETY"}]})
    assert safety.text == "" and safety.reasoning is None and safety.finish_reason == "content_filter"


def test_retry_info_delay_is_read_from_the_error_body() -> None:
    raw = orjson.dumps(
        {
            "error": {
                "code": 429,
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12.5s"},
                ],
            }
        }
    )
    assert retry_info_delay(raw) == 12.5
    assert retry_info_delay(b"not json") is None and retry_info_delay(b'{"error": {"code": 429}}') is None


# ---------------------------------------------------------------- against the mock server


async def test_thoughts_and_answer_come_back_apart_with_the_key_in_a_header(tmp_path: Path) -> None:
    ref = png(tmp_path / "a.png", (64, 64))
    reply = MockReply(content="Here it is.", reasoning="Thinking it over.")
    async with MockGeminiServer(
        reply=lambda body: reply, record_requests=True, api_key=SECRET, model="gemini-test"
    ) as server:
        target = make_target(base_url=server.base_url, thinking_budget=512, max_pixels=1024)
        (gen,) = await target.generate([probe("look", images=(ref,))])
        await target.aclose()
    assert gen.ok, gen.error
    assert (gen.text, gen.reasoning, gen.finish_reason) == ("Here it is.", "Thinking it over.", "stop")
    assert gen.usage["reasoning_tokens"] == 3 and gen.usage["prompt_tokens"] == 1
    assert server.paths == ["/v1beta/models/gemini-test:generateContent"]  # no key in the URL
    assert server.authorizations == {SECRET: 1}
    (body,) = server.requests
    assert body["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 512}
    assert body["contents"][0]["parts"][0]["inline_data"]["mime_type"] == "image/png"


async def test_blocked_prompt_is_an_empty_filtered_answer_not_an_error() -> None:
    async with MockGeminiServer(block_prompt="SAFETY") as server:
        target = make_target(base_url=server.base_url)
        (gen,) = await target.generate([probe("how do I ...")])
        await target.aclose()
    assert gen.ok and gen.text == "" and gen.finish_reason == "content_filter" and server.request_count == 1


async def test_resource_exhausted_429_waits_the_retry_info_delay() -> None:
    faults = iter([Fault.RATE_LIMIT])
    async with MockGeminiServer(fault_fn=lambda body: next(faults, None), retry_after="7") as server:
        target = make_target(base_url=server.base_url, backoff_base_s=0.01, backoff_max_s=0.02)
        target.sleep = sleep = FakeSleep()
        (gen,) = await target.generate([probe("x")])
        await target.aclose()
    assert gen.ok and sleep.slept == [7.0] and server.request_count == 2


async def test_unavailable_503_is_retried_then_stored_as_an_error() -> None:
    async with MockGeminiServer(faults=FaultRates(server_error=1.0)) as server:
        target = make_target(base_url=server.base_url, max_retries=2, backoff_base_s=0.001, backoff_max_s=0.002)
        (gen,) = await target.generate([probe("x")])
        await target.aclose()
    assert gen.error is not None and gen.error.startswith("failed after 3 attempts: HTTP 503")
    assert "UNAVAILABLE" in gen.error and server.request_count == 3


async def test_invalid_key_is_final_and_the_echoed_key_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with MockGeminiServer(api_key="the-right-key") as server:
        target = make_target(base_url=server.base_url)
        (gen,) = await target.generate([probe("x")])
        await target.aclose()
    assert server.request_count == 1 and gen.error is not None and gen.error.startswith("HTTP 400")
    assert "***" in gen.error and SECRET not in gen.model_dump_json() and SECRET not in caplog.text
    assert SECRET not in orjson.dumps(target.identity()).decode()


async def test_faults_lose_nothing_and_answers_stay_with_their_probes() -> None:
    faults = FaultRates(rate_limit=0.1, server_error=0.1, malformed=0.05, drop=0.05)
    async with MockGeminiServer(faults=faults, retry_after="0.01", seed=5) as server:
        target = make_target(base_url=server.base_url, max_retries=8, backoff_base_s=0.001, backoff_max_s=0.005)
        gens = await target.generate([probe(f"p {i}", f"s{i}") for i in range(80)])
        await target.aclose()
    assert [g.text for g in gens] == [f"Echo: p {i}" for i in range(80)]
    assert server.request_count > 80 and {"rate_limit", "server_error", "malformed", "drop"} <= set(server.outcomes)
