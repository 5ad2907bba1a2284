"""The OpenAI-compatible mock server: replies, reasoning, fault injection, and the standalone command."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import aiohttp
import orjson
import pytest

from safemlrm.testing.mock_server import Fault, FaultRates, MockChatServer, MockReply, last_user_text


def chat_body(text: str) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


async def post(session: aiohttp.ClientSession, server: MockChatServer, text: str) -> tuple[int, bytes, Any]:
    async with session.post(f"{server.base_url}/chat/completions", data=orjson.dumps(chat_body(text))) as resp:
        return resp.status, await resp.read(), resp.headers


async def test_models_and_echo_reply_with_reasoning_and_usage() -> None:
    async with MockChatServer(model="served-model", reasoning="because") as server, aiohttp.ClientSession() as s:
        async with s.get(f"{server.base_url}/models") as resp:
            models = await resp.json()
        status, raw, _ = await post(s, server, "hello world")
    assert models["data"][0]["id"] == "served-model"
    data = orjson.loads(raw)
    assert status == 200 and data["object"] == "chat.completion"
    message = data["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "Echo: hello world", "reasoning_content": "because"}
    assert data["usage"] == {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}


async def test_scripted_replies_cycle_and_functions_see_the_request() -> None:
    async with MockChatServer(reply=["one", "two"]) as server, aiohttp.ClientSession() as s:
        texts = [orjson.loads((await post(s, server, "x"))[1])["choices"][0]["message"]["content"] for _ in range(3)]
    assert texts == ["one", "two", "one"]

    def reply(body: dict[str, Any]) -> MockReply:
        return MockReply(content=last_user_text(body).upper(), reasoning="r", finish_reason="length")

    async with MockChatServer(reply=reply, reasoning_field="reasoning") as server, aiohttp.ClientSession() as s:
        choice = orjson.loads((await post(s, server, "abc"))[1])["choices"][0]
    assert choice["message"]["content"] == "ABC" and choice["message"]["reasoning"] == "r"
    assert choice["finish_reason"] == "length"


def test_last_user_text_reads_content_parts() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "data:"}}, {"type": "text", "text": "hi"}],
            },
        ]
    }
    assert last_user_text(body) == "hi"
    assert last_user_text({}) == ""


async def test_each_fault_kind_behaves_like_a_failing_server() -> None:
    script = iter([Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.MALFORMED, Fault.DROP, Fault.HANG, None])
    async with (
        MockChatServer(fault_fn=lambda body: next(script), retry_after="3", hang_s=5) as server,
        aiohttp.ClientSession() as s,
    ):
        status, _, headers = await post(s, server, "a")
        assert status == 429 and headers["Retry-After"] == "3"
        assert (await post(s, server, "b"))[0] == 500
        status, raw, _ = await post(s, server, "c")
        assert status == 200
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await post(s, server, "d")
        with pytest.raises(asyncio.TimeoutError):
            async with asyncio.timeout(0.2):
                await post(s, server, "e")
        assert (await post(s, server, "f"))[0] == 200
    assert server.outcomes == {"rate_limit": 1, "server_error": 1, "malformed": 1, "drop": 1, "hang": 1, "ok": 1}


async def test_fault_rates_are_respected() -> None:
    rates = FaultRates(rate_limit=0.2, server_error=0.1, malformed=0.1)
    async with MockChatServer(faults=rates, seed=3) as server, aiohttp.ClientSession() as s:
        statuses = [(await post(s, server, str(i)))[0] for i in range(600)]
    assert 0.14 < statuses.count(429) / 600 < 0.26
    assert 0.05 < statuses.count(500) / 600 < 0.15
    assert 0.05 < server.outcomes["malformed"] / 600 < 0.15
    assert server.request_count == 600


def test_fault_rates_must_sum_to_at_most_one() -> None:
    with pytest.raises(ValueError, match="sum to at most 1"):
        FaultRates(rate_limit=0.7, drop=0.5)
    with pytest.raises(ValueError):
        FaultRates(hang=-0.1)


async def test_api_key_is_checked_and_echoed_like_real_apis() -> None:
    async with MockChatServer(api_key="good", record_requests=True) as server, aiohttp.ClientSession() as s:
        bad = f"{server.base_url}/chat/completions"
        async with s.post(bad, data=orjson.dumps(chat_body("x")), headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401 and "wrong" in (await r.text())
        async with s.post(bad, data=orjson.dumps(chat_body("x")), headers={"Authorization": "Bearer good"}) as r:
            assert r.status == 200
        async with s.post(bad, data=b"{not json") as r:
            assert r.status == 400
    assert server.authorizations == {"Bearer wrong": 1, "Bearer good": 1}
    assert len(server.requests) == 2


async def test_latency_and_in_flight_tracking() -> None:
    async with MockChatServer(latency_s=0.1) as server, aiohttp.ClientSession() as s:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(post(s, server, str(i)) for i in range(20)))
        elapsed = loop.time() - started
    assert 0.1 <= elapsed < 0.6  # concurrent, not serial
    assert server.max_in_flight == 20 and server.in_flight == 0


def test_standalone_command_serves_requests() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "safemlrm.testing.mock_server", "--port", "0", "--latency-ms", "5", "--reply", "hi"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        base_url = line.strip().rsplit(" ", 1)[-1]

        async def ask() -> str:
            async with aiohttp.ClientSession() as s, s.post(
                f"{base_url}/chat/completions", data=orjson.dumps(chat_body("x"))
            ) as resp:
                data = await resp.json()
                return str(data["choices"][0]["message"]["content"])

        assert asyncio.run(ask()) == "hi"
    finally:
        process.terminate()
        process.wait(timeout=10)
