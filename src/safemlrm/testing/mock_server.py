"""An in-process OpenAI-compatible mock server with latency and fault injection.

Serves ``POST /v1/chat/completions`` and ``GET /v1/models``. Replies are a fixed string, a script (served
in order, cycling) or a function of the request body; an optional native reasoning field is added.
Faults are injected at configurable rates (or by a function of the request): 429 with ``Retry-After``,
500, a hang past the client's timeout, a malformed JSON body, and a dropped connection.

Kept lean (orjson, no per-request allocations beyond the reply) so one process serves over 1000
requests a second for throughput benchmarks. Standalone::

    python -m safemlrm.testing.mock_server --port 8000 --latency-ms 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from aiohttp import web


class Fault(StrEnum):
    RATE_LIMIT = "rate_limit"  # 429 with Retry-After
    SERVER_ERROR = "server_error"  # 500
    HANG = "hang"  # no answer for `hang_s` (past the client's timeout)
    MALFORMED = "malformed"  # 200 with a truncated JSON body
    DROP = "drop"  # the connection is closed without an answer


@dataclass(frozen=True)
class FaultRates:
    """Probability of each fault per request (their sum must be at most 1)."""

    rate_limit: float = 0.0
    server_error: float = 0.0
    hang: float = 0.0
    malformed: float = 0.0
    drop: float = 0.0

    def __post_init__(self) -> None:
        rates = self.as_dict()
        if any(r < 0 for r in rates.values()) or sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates must be >= 0 and sum to at most 1, got {rates}")

    def as_dict(self) -> dict[Fault, float]:
        return {
            Fault.RATE_LIMIT: self.rate_limit,
            Fault.SERVER_ERROR: self.server_error,
            Fault.HANG: self.hang,
            Fault.MALFORMED: self.malformed,
            Fault.DROP: self.drop,
        }


@dataclass(frozen=True)
class MockReply:
    content: str | None
    reasoning: str | None = None
    finish_reason: str = "stop"
    raw: dict[str, Any] | None = None  # a whole response object, sent as it is (for protocol corner cases)


ReplyFn = Callable[[dict[str, Any]], "str | MockReply"]
FaultFn = Callable[[dict[str, Any]], "Fault | None"]


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message of a chat request (content string or text parts)."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "\n".join(
                    p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
                )
    return ""


def echo_reply(body: dict[str, Any]) -> str:
    return f"Echo: {last_user_text(body)[:200]}"


def bench_reply(body: dict[str, Any]) -> str:
    """A reply that differs per prompt and suits both roles of a benchmark run.

    A rubric-judge prompt (it asks for ``#thescore``) gets a verdict whose score depends on the judged
    text; any other prompt gets ``<think>`` reasoning and an answer that both quote the prompt, so each
    probe's reasoning, answer and whole text differ and no judge cache hides a call.
    """
    text = last_user_text(body)
    if "#thescore" in text:
        score = 1 + zlib.crc32(text.encode()) % 5
        return f"#thereason: the mock judge read {len(text)} characters.\n#thescore: {score}"
    tail = text[-120:]
    return f"<think>The user asks: {tail}. I weigh the request.</think>Answer to: {tail}"


MALFORMED_BODY = b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "message": {"role": "assis'


class MockChatServer:
    """An OpenAI-compatible chat server for tests and benchmarks. Use as ``async with``."""

    def __init__(
        self,
        *,
        reply: str | Sequence[str] | ReplyFn | None = None,
        reasoning: str | None = None,
        reasoning_field: str = "reasoning_content",
        latency_s: float = 0.0,
        faults: FaultRates | None = None,
        fault_fn: FaultFn | None = None,
        retry_after: str | None = "1",
        hang_s: float = 30.0,
        model: str = "mock-model",
        api_key: str | None = None,
        record_requests: bool = False,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.reply = reply
        self.reasoning = reasoning
        self.reasoning_field = reasoning_field
        self.latency_s = latency_s
        self.faults = faults or FaultRates()
        self.fault_fn = fault_fn
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.model = model
        self.api_key = api_key
        self.record_requests = record_requests
        self.host = host
        self.port = port
        self.requests: list[dict[str, Any]] = []  # bodies, when record_requests
        self.authorizations: Counter[str] = Counter()  # Authorization headers seen, when record_requests
        self.outcomes: Counter[str] = Counter()  # "ok" or a Fault value, per request
        self.in_flight = 0
        self.max_in_flight = 0
        self._rng = random.Random(seed)
        self._count = 0
        self._fault_table = [(fault, rate) for fault, rate in self.faults.as_dict().items() if rate > 0]
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def request_count(self) -> int:
        return self._count

    def make_app(self) -> web.Application:
        app = web.Application()
        self._add_routes(app)
        app.router.add_get("/health", self._health)
        app.router.add_get("/stats", self._stats)
        app.router.add_post("/stats/reset", self._reset_stats)
        return app

    def _add_routes(self, app: web.Application) -> None:
        """The protocol's routes (the Anthropic and Gemini mocks serve theirs)."""
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)

    async def start(self) -> str:
        """Start listening; returns the base URL (``http://host:port/v1``)."""
        self._stopping = asyncio.Event()
        runner = web.AppRunner(
            self.make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=1024)
        await site.start()
        self._runner = runner
        if self.port == 0:
            for address in runner.addresses:
                self.port = int(address[1])
                break
        return self.base_url

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> MockChatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ behaviour

    def _pick_fault(self, body: dict[str, Any]) -> Fault | None:
        if self.fault_fn is not None:
            fault = self.fault_fn(body)
            if fault is not None:
                return fault
        if not self._fault_table:
            return None
        draw = self._rng.random()
        for fault, rate in self._fault_table:
            if draw < rate:
                return fault
            draw -= rate
        return None

    def _make_reply(self, body: dict[str, Any], index: int) -> MockReply:
        reply = self.reply
        if reply is None:
            result: str | MockReply = f"Echo: {self._user_text(body)[:200]}"
        elif isinstance(reply, str):
            result = reply
        elif callable(reply):
            result = reply(body)
        else:
            result = reply[index % len(reply)]
        if isinstance(result, str):
            return MockReply(content=result, reasoning=self.reasoning)
        return result

    def _user_text(self, body: dict[str, Any]) -> str:
        return last_user_text(body)

    def _completion(self, body: dict[str, Any], reply: MockReply, index: int) -> bytes:
        if reply.raw is not None:
            return orjson.dumps(reply.raw)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.reasoning is not None:
            message[self.reasoning_field] = reply.reasoning
        prompt_tokens = len(last_user_text(body).split())
        completion_tokens = len((reply.content or "").split()) + len((reply.reasoning or "").split())
        return orjson.dumps(
            {
                "id": f"chatcmpl-mock-{index}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model") or self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    @staticmethod
    def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            body=orjson.dumps(payload), status=status, headers=headers, content_type="application/json"
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        index = self._count
        self._count += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request, index)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, index: int) -> web.StreamResponse:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            self.outcomes["bad_request"] += 1
            return self._json({"error": {"message": f"invalid JSON: {exc}", "type": "invalid_request"}}, 400)
        if not isinstance(body, dict):
            self.outcomes["bad_request"] += 1
            return self._json({"error": {"message": "expected a JSON object"}}, 400)
        authorization = self._offered_key(request)
        if self.record_requests:
            self.requests.append(body)
            self.authorizations[authorization] += 1
        if self.api_key is not None and authorization != self._expected_key(self.api_key):
            # Like real APIs, echo the offered key: clients must keep it out of their error texts.
            self.outcomes["unauthorized"] += 1
            return self._unauthorized(authorization.removeprefix("Bearer "))
        fault = self._pick_fault(body)
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        self.outcomes[fault.value if fault is not None else "ok"] += 1
        if fault is Fault.RATE_LIMIT:
            return self._rate_limited()
        if fault is Fault.SERVER_ERROR:
            return self._server_error()
        if fault is Fault.MALFORMED:
            return web.Response(body=MALFORMED_BODY, content_type="application/json")
        if fault is Fault.DROP:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never reaches the client: its connection is gone
        if fault is Fault.HANG:
            assert self._stopping is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.hang_s)
        return web.Response(
            body=self._completion(body, self._make_reply(body, index), index), content_type="application/json"
        )

    # ------------------------------------------------------------ protocol hooks (overridden per API)

    def _offered_key(self, request: web.Request) -> str:
        """The credential header as offered (recorded in ``authorizations``)."""
        return request.headers.get("Authorization", "")

    def _expected_key(self, api_key: str) -> str:
        return f"Bearer {api_key}"

    def _unauthorized(self, offered: str) -> web.Response:
        return self._json({"error": {"message": f"Incorrect API key provided: {offered}"}}, 401)

    def _rate_limited(self) -> web.Response:
        headers = {"Retry-After": self.retry_after} if self.retry_after is not None else None
        return self._json({"error": {"message": "rate limited", "type": "rate_limit"}}, 429, headers)

    def _server_error(self) -> web.Response:
        return self._json({"error": {"message": "internal error", "type": "server_error"}}, 500)

    async def _models(self, request: web.Request) -> web.Response:
        return self._json(
            {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "safemlrm-mock"}]}
        )

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _stats(self, request: web.Request) -> web.Response:
        """Counters for a benchmark that runs the server in another process."""
        return self._json(
            {
                "requests": self._count,
                "outcomes": dict(self.outcomes),
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
            }
        )

    async def _reset_stats(self, request: web.Request) -> web.Response:
        self._count = 0
        self.outcomes.clear()
        self.max_in_flight = self.in_flight
        return self._json({"ok": True})


# ---------------------------------------------------------------- standalone


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m safemlrm.testing.mock_server",
        description="OpenAI-compatible mock chat server with fixed latency and fault injection.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed on start)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="fixed delay before each answer")
    parser.add_argument("--reply", default=None, help="fixed reply (default: echo the user)")
    parser.add_argument(
        "--bench-replies",
        action="store_true",
        help="judge-aware replies that differ per prompt: <think> reasoning + answer, or a rubric verdict",
    )
    parser.add_argument("--reasoning", default=None, help="native reasoning text added to every reply")
    parser.add_argument(
        "--reasoning-field", default="reasoning_content", choices=["reasoning_content", "reasoning"]
    )
    parser.add_argument("--model", default="mock-model")
    parser.add_argument("--rate-429", type=float, default=0.0, help="share of requests answered 429")
    parser.add_argument("--rate-500", type=float, default=0.0, help="share of requests answered 500")
    parser.add_argument("--rate-hang", type=float, default=0.0, help="share of requests that hang")
    parser.add_argument("--rate-malformed", type=float, default=0.0, help="share answered with broken JSON")
    parser.add_argument("--rate-drop", type=float, default=0.0, help="share whose connection is dropped")
    parser.add_argument("--retry-after", default="1", help="Retry-After header value on 429")
    parser.add_argument("--hang-s", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    server = MockChatServer(
        reply=bench_reply if args.bench_replies else args.reply,
        reasoning=args.reasoning,
        reasoning_field=args.reasoning_field,
        latency_s=args.latency_ms / 1000.0,
        faults=FaultRates(
            rate_limit=args.rate_429,
            server_error=args.rate_500,
            hang=args.rate_hang,
            malformed=args.rate_malformed,
            drop=args.rate_drop,
        ),
        retry_after=args.retry_after,
        hang_s=args.hang_s,
        model=args.model,
        seed=args.seed,
        host=args.host,
        port=args.port,
    )
    base_url = await server.start()
    print(f"mock OpenAI server listening on {base_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
        print(f"served {server.request_count} requests: {dict(server.outcomes)}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
