"""An in-process mock of the Anthropic Messages API (``POST /v1/messages``), for tests.

Speaks the protocol of API version ``2023-06-01``: ``x-api-key`` and ``anthropic-version`` headers,
content blocks (``thinking`` with a signature, ``redacted_thinking``, ``text``), ``stop_reason`` and
``usage``; thinking blocks are sent only when the request enables extended thinking. Errors have the
API's shape (``{"type": "error", "error": {"type": ..., "message": ...}}``): 401
``authentication_error`` (echoing the offered key, so clients must redact it), 400 without the version
header, 429 ``rate_limit_error`` with ``retry-after``, 529 ``overloaded_error`` (or 500 ``api_error``)
and, on request, the 429 of a reached spend limit, which is final. Faults and latency as in
``MockChatServer``.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from safemlrm.testing.mock_server import MockChatServer, MockReply, last_user_text

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}  # MockReply's OpenAI words -> Anthropic's


def _error(kind: str, message: str, status: int, headers: dict[str, str] | None = None) -> web.Response:
    body = orjson.dumps({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_mock"})
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


class MockAnthropicServer(MockChatServer):
    """``reasoning`` becomes a thinking block (when the request enables thinking); ``redacted_thinking``
    blocks of opaque data are added after it; ``overloaded`` picks 529 (else 500) for server errors."""

    def __init__(
        self, *, redacted_thinking: int = 0, overloaded: bool = True, spend_limit: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.redacted_thinking = redacted_thinking
        self.overloaded = overloaded
        self.spend_limit = spend_limit  # every rate limit is the final spend-limit 429
        self.versions: list[str] = []  # anthropic-version headers seen, when record_requests

    @property
    def base_url(self) -> str:
        return self.url

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        if "anthropic-version" not in request.headers:
            self.outcomes["bad_request"] += 1
            return _error("invalid_request_error", "anthropic-version: header is required", 400)
        if self.record_requests:
            self.versions.append(request.headers["anthropic-version"])
        return await self._chat(request)

    def _offered_key(self, request: web.Request) -> str:
        return request.headers.get("x-api-key", "")

    def _expected_key(self, api_key: str) -> str:
        return api_key

    def _unauthorized(self, offered: str) -> web.Response:
        return _error("authentication_error", f"invalid x-api-key: {offered}", 401)

    def _rate_limited(self) -> web.Response:
        if self.spend_limit:
            body = {
                "type": "error",
                "error": {
                    "type": "rate_limit_error",
                    "message": "You have reached your specified API usage limits.",
                    "details": {"error_code": "enforced_spend_limit_reached"},
                },
            }
            return web.Response(body=orjson.dumps(body), status=429, content_type="application/json")
        headers = {"retry-after": self.retry_after} if self.retry_after is not None else None
        return _error("rate_limit_error", "Number of requests has exceeded your rate limit", 429, headers)

    def _server_error(self) -> web.Response:
        if self.overloaded:
            return _error("overloaded_error", "Overloaded", 529)
        return _error("api_error", "Internal server error", 500)

    def _user_text(self, body: dict[str, Any]) -> str:
        return last_user_text(body)

    def _completion(self, body: dict[str, Any], reply: MockReply, index: int) -> bytes:
        if reply.raw is not None:
            return orjson.dumps(reply.raw)
        blocks: list[dict[str, Any]] = []
        thinking = body.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") == "enabled":
            if reply.reasoning is not None:
                blocks.append({"type": "thinking", "thinking": reply.reasoning, "signature": f"sig-{index}"})
            blocks.extend(
                {"type": "redacted_thinking", "data": f"EmwKAhgBEgy-opaque-{index}-{i}"}
                for i in range(self.redacted_thinking)
            )
        if reply.content is not None:
            blocks.append({"type": "text", "text": reply.content})
        input_tokens = len(last_user_text(body).split())
        output_tokens = len((reply.content or "").split()) + len((reply.reasoning or "").split())
        return orjson.dumps(
            {
                "id": f"msg_mock_{index}",
                "type": "message",
                "role": "assistant",
                "model": body.get("model") or self.model,
                "content": blocks,
                "stop_reason": STOP_REASONS.get(reply.finish_reason, reply.finish_reason),
                "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            }
        )
