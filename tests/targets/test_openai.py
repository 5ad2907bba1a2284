"""The `openai` target: request/response mapping, retries, load balancing, faults and secrecy."""

from __future__ import annotations

import base64
import email.utils
import io
import logging
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from PIL import Image

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.hashing import file_sha256
from safemlrm.core.registry import PluginConfigError
from safemlrm.core.types import ImagePart, ImageRef, Message, Probe, TextPart
from safemlrm.targets.openai import (
    IMAGE_CACHE_SIZE,
    MalformedResponse,
    OpenAIParams,
    OpenAITarget,
    build_chat_request,
    chat_completions_url,
    image_data_url,
    parse_chat_response,
    parse_retry_after,
    redact_secret,
    retry_delay,
    scaled_size,
)
from safemlrm.testing.mock_server import Fault, FaultRates, MockChatServer, MockReply

SECRET = "sk-test-7f3a9c1e5b2d4680aaaa"


def probe(text: str, sample_id: str = "s1", images: tuple[ImageRef, ...] = ()) -> Probe:
    content: tuple[TextPart | ImagePart, ...] = (
        *(ImagePart(image=img) for img in images),
        TextPart(text=text),
    )
    return Probe(
        sample_key=f"key-{sample_id}",
        sample_id=sample_id,
        attack="vanilla",
        messages=(Message(role="user", content=content),),
    )


def make_target(**params: Any) -> OpenAITarget:
    params.setdefault("model", "test-model")
    target = plugins.targets.create("openai", params, PluginContext(label="api"))
    assert isinstance(target, OpenAITarget)
    return target


def png(path: Path, size: tuple[int, int], color: tuple[int, int, int] = (200, 30, 30)) -> ImageRef:
    Image.new("RGB", size, color).save(path, format="PNG")
    return ImageRef(path=str(path), sha256=file_sha256(str(path)))


def decode_data_url(url: str) -> tuple[str, Image.Image]:
    header, _, payload = url.partition(",")
    assert header.startswith("data:") and header.endswith(";base64")
    return header[5:-7], Image.open(io.BytesIO(base64.b64decode(payload)))


# ---------------------------------------------------------------- params and identity


def test_params_require_a_model_and_http_urls() -> None:
    with pytest.raises(PluginConfigError, match="model"):
        plugins.targets.create("openai", {"model": ""}, PluginContext())
    with pytest.raises(PluginConfigError, match="model"):  # left out: the default "" is checked too
        plugins.targets.create("openai", {}, PluginContext())
    with pytest.raises(PluginConfigError, match="base_url"):
        plugins.targets.create("openai", {"model": "m", "base_url": "localhost:8000"}, PluginContext())
    with pytest.raises(PluginConfigError, match="unknown_field"):
        plugins.targets.create("openai", {"model": "m", "unknown_field": 1}, PluginContext())


def test_identity_leaves_out_urls_and_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", SECRET)
    one = make_target(base_url="http://a:1/v1", api_key_env="MY_KEY", temperature=0.7, seed=3)
    two = make_target(base_url=["http://b:2/v1", "http://c:3/v1"], api_key_env="MY_KEY", temperature=0.7, seed=3)
    assert one.identity() == two.identity()
    assert one.identity()["model"] == "test-model" and one.identity()["seed"] == 3
    assert make_target(temperature=0.1).identity() != make_target(temperature=0.2).identity()
    dumped = orjson.dumps(one.identity()).decode()
    assert SECRET not in dumped and "MY_KEY" not in dumped and "http://a" not in dumped
    assert SECRET not in repr(one.params) and SECRET not in repr(vars(one))


def test_concurrency_is_per_endpoint() -> None:
    target = make_target(base_url=["http://a:1/v1", "http://b:2/v1"], max_concurrency=8)
    assert target.max_concurrency == 16 and target.max_batch_size == 1


def test_chat_completions_url() -> None:
    assert chat_completions_url("http://h:8000/v1") == "http://h:8000/v1/chat/completions"
    assert chat_completions_url("http://h:8000/v1/") == "http://h:8000/v1/chat/completions"
    assert chat_completions_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"


# ---------------------------------------------------------------- request building


def test_text_request_with_system_prompt_prefix_and_sampling() -> None:
    params = OpenAIParams(
        model="m",
        system_prompt="Think step by step.",
        user_prefix="[eval]",
        max_new_tokens=77,
        temperature=0.6,
        top_p=0.95,
        seed=11,
        extra_body={"chat_template_kwargs": {"enable_thinking": True}, "top_k": 20},
    )
    body = build_chat_request(probe("How do I bake bread?"), params)
    assert body["model"] == "m"
    assert body["messages"] == [
        {"role": "system", "content": "Think step by step."},
        {"role": "user", "content": "[eval]\nHow do I bake bread?"},
    ]
    assert body["max_tokens"] == 77 and body["temperature"] == 0.6 and body["top_p"] == 0.95
    assert body["seed"] == 11 and body["stream"] is False
    assert body["chat_template_kwargs"] == {"enable_thinking": True} and body["top_k"] == 20


def test_unset_sampling_fields_are_not_sent_and_token_field_is_configurable() -> None:
    body = build_chat_request(probe("hi"), OpenAIParams(model="m", max_tokens_field="max_completion_tokens"))
    assert "seed" not in body and "top_p" not in body and "max_tokens" not in body
    assert body["max_completion_tokens"] == 1024
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_images_become_data_url_parts_in_order(tmp_path: Path) -> None:
    ref = png(tmp_path / "a.png", (40, 30))
    body = build_chat_request(probe("What is shown?", images=(ref,)), OpenAIParams(model="m"))
    (message,) = body["messages"]
    assert [p["type"] for p in message["content"]] == ["image_url", "text"]
    assert message["content"][1] == {"type": "text", "text": "What is shown?"}
    mime, image = decode_data_url(message["content"][0]["image_url"]["url"])
    assert mime == "image/png" and image.size == (40, 30)
    # Without a resize the file's bytes are sent unchanged.
    url = message["content"][0]["image_url"]["url"]
    assert base64.b64decode(url.partition(",")[2]) == Path(ref.path).read_bytes()


async def test_image_cache_stays_bounded_on_every_path(tmp_path: Path) -> None:
    target = make_target()
    for i in range(100):
        ref = png(tmp_path / f"{i}.png", (8, 8), (i, 0, 0))
        await target._request_body(probe("What is shown?", images=(ref,)))
    assert len(target._image_cache) == IMAGE_CACHE_SIZE == 32
    # The newest images are the ones kept.
    assert str(tmp_path / "99.png") in {path for path, _sha, _px in target._image_cache}


def test_max_pixels_downscales_keeping_aspect(tmp_path: Path) -> None:
    ref = png(tmp_path / "big.png", (400, 200))
    mime, image = decode_data_url(image_data_url(ref.path, max_pixels=5000))
    assert mime == "image/png" and image.size == (100, 50)
    _, small = decode_data_url(image_data_url(png(tmp_path / "small.png", (20, 10)).path, max_pixels=5000))
    assert small.size == (20, 10)  # never upscaled
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (300, 300), (10, 120, 10)).save(jpeg, format="JPEG")
    mime, image = decode_data_url(image_data_url(jpeg, max_pixels=900))
    assert mime == "image/jpeg" and image.size == (30, 30)


@pytest.mark.parametrize(("w", "h", "limit"), [(400, 200, 5000), (1920, 1080, 640 * 480), (7, 3, 20), (1, 999, 10)])
def test_scaled_size_respects_limit_and_aspect(w: int, h: int, limit: int) -> None:
    new_w, new_h = scaled_size(w, h, limit)
    assert new_w * new_h <= limit and new_w >= 1 and new_h >= 1
    if min(new_w, new_h) > 10:
        assert abs(new_w / new_h - w / h) < 0.05 * (w / h)


def test_unusual_image_formats_are_sent_as_png(tmp_path: Path) -> None:
    bmp = tmp_path / "x.bmp"
    Image.new("RGB", (8, 8)).save(bmp, format="BMP")
    mime, image = decode_data_url(image_data_url(bmp))
    assert mime == "image/png" and image.size == (8, 8)


# ---------------------------------------------------------------- response parsing


def completion(message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], **extra}


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_native_reasoning_is_kept_apart(field: str) -> None:
    result = parse_chat_response(completion({"role": "assistant", "content": "No.", field: "They ask for X."}))
    assert result.text == "No." and result.reasoning == "They ask for X." and result.finish_reason == "stop"


def test_response_without_reasoning_and_with_null_content() -> None:
    result = parse_chat_response(completion({"role": "assistant", "content": None, "reasoning_content": None}))
    assert result.text == "" and result.reasoning is None


def test_content_parts_are_joined() -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    result = parse_chat_response(completion({"content": parts}))
    assert result.text == "ab"


def test_usage_is_flattened_to_integers() -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 30,
        "total_tokens": 40,
        "completion_tokens_details": {"reasoning_tokens": 25, "audio_tokens": None},
        "cost": 0.01,
    }
    result = parse_chat_response(completion({"content": "x"}, usage=usage))
    assert result.usage == {"prompt_tokens": 10, "completion_tokens": 30, "total_tokens": 40, "reasoning_tokens": 25}


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"choices": []},
        {"choices": [1]},
        {"choices": [{"message": "x"}]},
        {"choices": [{"message": {"content": 5}}]},
    ],
)
def test_malformed_responses_raise(data: Any) -> None:
    with pytest.raises(MalformedResponse):
        parse_chat_response(data)


# ---------------------------------------------------------------- retry arithmetic


def test_parse_retry_after_seconds_and_dates() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 0.25 ", now) == 0.25
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now) == 0.0
    assert parse_retry_after("-3", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("nan", now) is None


def test_retry_delay_full_jitter_and_retry_after_floor() -> None:
    rng = random.Random(0)
    for index in range(8):
        ceiling = min(10.0, 0.5 * 2**index)
        delays = [retry_delay(index, base_s=0.5, max_s=10.0, rng=rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.5 * ceiling  # jitter spans the range
    assert retry_delay(0, base_s=0.5, max_s=10, rng=rng, retry_after_s=7.0) == 7.0
    assert retry_delay(0, base_s=0.5, max_s=10, rng=rng, retry_after_s=900.0, max_retry_after_s=60) == 60.0
    assert retry_delay(3, base_s=0.0, max_s=0.0, rng=rng) == 0.0


def test_redact_secret() -> None:
    assert redact_secret(f"bad key {SECRET}!", SECRET) == "bad key ***!"
    assert redact_secret("nothing here", None) == "nothing here"


# ---------------------------------------------------------------- against the mock server


async def test_generation_carries_text_reasoning_usage_and_latency() -> None:
    async with MockChatServer(reasoning="They want X; I should refuse.", latency_s=0.02) as server:
        target = make_target(base_url=server.base_url)
        try:
            (gen,) = await target.generate([probe("hello there")])
        finally:
            await target.aclose()
    assert gen.ok and gen.text == "Echo: hello there" and gen.target == "api"
    assert gen.reasoning == "They want X; I should refuse."
    assert gen.finish_reason == "stop" and gen.usage["prompt_tokens"] == 2 and gen.latency_s >= 0.02


async def test_reasoning_field_named_reasoning_from_a_server() -> None:
    reply = MockReply(content="Sure.", reasoning="steps", finish_reason="length")
    async with MockChatServer(reply=lambda body: reply, reasoning_field="reasoning") as server:
        target = make_target(base_url=server.base_url)
        (gen,) = await target.generate([probe("q")])
        await target.aclose()
    assert (gen.text, gen.reasoning, gen.finish_reason) == ("Sure.", "steps", "length")


async def test_requests_reach_the_server_as_built(tmp_path: Path) -> None:
    ref = png(tmp_path / "a.png", (64, 64))
    async with MockChatServer(record_requests=True) as server:
        target = make_target(base_url=server.base_url, seed=5, system_prompt="Be safe.", max_pixels=1024)
        gens = await target.generate([probe("look", "a", (ref,)), probe("again", "b", (ref,))])
        await target.aclose()
    assert [g.text for g in gens] == ["Echo: look", "Echo: again"]  # order kept
    bodies = sorted(server.requests, key=lambda b: str(b["messages"][1]["content"][1]["text"]))
    assert bodies[0]["seed"] == 5 and bodies[0]["messages"][0] == {"role": "system", "content": "Be safe."}
    _, image = decode_data_url(bodies[0]["messages"][1]["content"][0]["image_url"]["url"])
    assert image.size == (32, 32)


async def test_retry_after_is_honoured_on_429(monkeypatch: pytest.MonkeyPatch) -> None:
    failures = iter([Fault.RATE_LIMIT, Fault.RATE_LIMIT])
    async with MockChatServer(fault_fn=lambda body: next(failures, None), retry_after="7") as server:
        target = make_target(base_url=server.base_url, backoff_base_s=0.01, backoff_max_s=0.02)
        slept: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            slept.append(seconds)

        target.sleep = fake_sleep
        (gen,) = await target.generate([probe("x")])
        await target.aclose()
    assert gen.ok and slept == [7.0, 7.0] and server.request_count == 3


async def test_retry_after_http_date_is_honoured_on_503() -> None:
    now = 1_800_000_000.0
    statuses = iter([503])

    async def reply_503_once(request: web.Request) -> web.Response:
        if next(statuses, None) == 503:
            return web.Response(status=503, headers={"Retry-After": email.utils.formatdate(now + 42, usegmt=True)})
        return web.json_response(completion({"content": "ok"}))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", reply_503_once)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        target = make_target(base_url=f"http://127.0.0.1:{port}/v1")
        slept: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            slept.append(seconds)

        target.sleep = fake_sleep
        target.clock = lambda: now
        (gen,) = await target.generate([probe("x")])
        await target.aclose()
    finally:
        await runner.cleanup()
    assert gen.ok and gen.text == "ok" and slept == [pytest.approx(42.0)]


async def test_persistent_5xx_ends_as_a_stored_error_after_the_last_retry() -> None:
    async with MockChatServer(faults=FaultRates(server_error=1.0)) as server:
        target = make_target(base_url=server.base_url, max_retries=3, backoff_base_s=0.001, backoff_max_s=0.002)
        (gen,) = await target.generate([probe("x")])
        await target.aclose()
    assert not gen.ok and gen.error is not None
    assert gen.error.startswith("failed after 4 attempts: HTTP 500") and server.request_count == 4


async def test_timeouts_are_retried() -> None:
    hangs = iter([Fault.HANG])
    async with MockChatServer(fault_fn=lambda body: next(hangs, None), hang_s=10) as server:
        target = make_target(base_url=server.base_url, timeout_s=0.2, backoff_base_s=0.001)
        (gen,) = await target.generate([probe("x")])
        await target.aclose()
    assert gen.ok and server.request_count == 2


async def test_client_errors_are_not_retried_and_echoed_keys_are_redacted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SAFEMLRM_TEST_KEY", SECRET)
    async with MockChatServer(api_key="the-right-key") as server:  # answers 401 echoing the offered key
        target = make_target(base_url=server.base_url, api_key_env="SAFEMLRM_TEST_KEY")
        (gen,) = await target.generate([probe("x")])
        await target.aclose()
    assert server.request_count == 1  # 401 is final
    assert gen.error is not None and gen.error.startswith("HTTP 401") and "***" in gen.error
    assert SECRET not in gen.model_dump_json() and SECRET not in caplog.text


async def test_missing_api_key_variable_is_a_stored_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFEMLRM_UNSET_KEY", raising=False)
    async with MockChatServer() as server:
        target = make_target(base_url=server.base_url, api_key_env="SAFEMLRM_UNSET_KEY")
        (gen,) = await target.generate([probe("x")])
        await target.aclose()
    assert gen.error is not None and "SAFEMLRM_UNSET_KEY" in gen.error and server.request_count == 0


async def test_unreadable_image_is_a_stored_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    missing = ImageRef(path=str(tmp_path / "gone.png"), sha256="0" * 64)
    async with MockChatServer() as server:
        target = make_target(base_url=server.base_url, max_pixels=100)
        gens = await target.generate(
            [probe("a", "a", (ImageRef(path=str(broken), sha256="1" * 64),)), probe("b", "b", (missing,))]
        )
        await target.aclose()
    assert all(g.error and g.error.startswith("cannot build the request") for g in gens)
    assert server.request_count == 0


async def test_per_endpoint_concurrency_limit_holds() -> None:
    async with MockChatServer(latency_s=0.03) as server:
        target = make_target(base_url=server.base_url, max_concurrency=4)
        gens = await target.generate([probe(f"p{i}", f"s{i}") for i in range(24)])
        await target.aclose()
    assert all(g.ok for g in gens) and server.max_in_flight == 4


@pytest.mark.parametrize("policy", ["least_in_flight", "round_robin"])
async def test_load_balancing_across_two_servers(policy: str) -> None:
    async with MockChatServer(latency_s=0.01) as first, MockChatServer(latency_s=0.01) as second:
        target = make_target(base_url=[first.base_url, second.base_url], load_balance=policy, max_concurrency=8)
        gens = await target.generate([probe(f"p{i}", f"s{i}") for i in range(120)])
        await target.aclose()
    assert [g.text for g in gens] == [f"Echo: p{i}" for i in range(120)]
    assert first.request_count + second.request_count == 120
    if policy == "round_robin":
        assert abs(first.request_count - second.request_count) <= 12
    else:
        assert min(first.request_count, second.request_count) >= 40


async def test_least_in_flight_prefers_the_faster_replica() -> None:
    async with MockChatServer(latency_s=0.002) as fast, MockChatServer(latency_s=0.05) as slow:
        target = make_target(base_url=[fast.base_url, slow.base_url], max_concurrency=4)
        await target.generate([probe(f"p{i}", f"s{i}") for i in range(100)])
        await target.aclose()
    assert fast.request_count > 2 * slow.request_count


# ---------------------------------------------------------------- faults at scale


FAULTS = FaultRates(rate_limit=0.08, server_error=0.08, hang=0.04, malformed=0.05, drop=0.05)


@pytest.mark.parametrize("max_retries", [6, 0])
async def test_faults_lose_and_duplicate_nothing_and_never_leak_the_key(
    max_retries: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SAFEMLRM_FAULT_KEY", SECRET)
    n = 300
    probes = [probe(f"probe {i}", f"s{i}") for i in range(n)]
    async with MockChatServer(faults=FAULTS, retry_after="0.01", hang_s=10, record_requests=True, seed=7) as server:
        target = make_target(
            base_url=server.base_url,
            api_key_env="SAFEMLRM_FAULT_KEY",
            max_concurrency=32,
            # Generous next to the mock's latency, far below its 10 s hang: on a loaded CI machine a
            # 0.3 s budget expired before some requests even reached the server.
            timeout_s=1.0,
            max_retries=max_retries,
            backoff_base_s=0.002,
            backoff_max_s=0.01,
        )
        gens = await target.generate(probes)
        failed = [p for p, g in zip(probes, gens, strict=True) if not g.ok]
        first_pass_requests = server.request_count
        # A second pass over only the failed probes, as a resumed run would do.
        regens = await target.generate(failed)
        await target.aclose()

    assert len(gens) == n and [g.probe_key for g in gens] == [p.key for p in probes]
    for i, gen in enumerate(gens):
        if gen.ok:
            assert gen.text == f"Echo: probe {i}"  # each answer belongs to its own probe
        else:
            assert gen.error and gen.text == ""
    assert all(count > 0 for fault, count in server.outcomes.items() if fault != "ok")
    assert set(server.outcomes) >= {f.value for f in Fault} | {"ok"}
    assert server.authorizations == {f"Bearer {SECRET}": server.request_count}  # the key was sent...
    everything = orjson.dumps([g.model_dump() for g in [*gens, *regens]]).decode()
    assert SECRET not in everything and SECRET not in caplog.text  # ...and never written anywhere
    assert SECRET not in orjson.dumps(target.identity()).decode()
    if max_retries == 6:
        assert len(failed) <= 3  # 0.3^7 per probe
        assert first_pass_requests > n
    else:
        # One attempt each: never a second request (a request that timed out while still queued
        # on the client never reaches the server, so the server may count fewer).
        assert first_pass_requests <= n
        assert 0.15 * n < len(failed) < 0.45 * n
        assert {(g.error or "").split(":")[0] for g in gens if not g.ok} == {"failed after 1 attempt"}
        assert [g.probe_key for g in regens] == [p.key for p in failed]
        assert sum(not g.ok for g in regens) < len(failed)
