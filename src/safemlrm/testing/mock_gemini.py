"""An in-process mock of the Gemini API's ``generateContent`` (``POST /v1beta/models/{model}:generateContent``).

Speaks the v1beta REST protocol: the ``x-goog-api-key`` header, ``contents`` of ``parts`` (text and
``inline_data``), candidates whose parts carry ``thought: true`` for thought summaries (sent only when
the request's ``thinkingConfig.includeThoughts`` is true), ``finishReason``, ``usageMetadata`` with
``thoughtsTokenCount``, and a prompt blocked by ``promptFeedback.blockReason`` on request. Errors have
Google's shape (``{"error": {"code", "message", "status", "details"}}``): 400 ``INVALID_ARGUMENT`` for a
bad key (echoing it, so clients must redact it), 429 ``RESOURCE_EXHAUSTED`` whose wait is a
``google.rpc.RetryInfo`` ``retryDelay`` in the body (no Retry-After header), 503 ``UNAVAILABLE`` (or 500
``INTERNAL``). Faults and latency as in ``MockChatServer``.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from safemlrm.testing.mock_server import MockChatServer, MockReply

FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS"}  # MockReply's OpenAI words -> Gemini's


def _error(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return web.Response(body=orjson.dumps({"error": error}), status=code, content_type="application/json")


def gemini_user_text(body: dict[str, Any]) -> str:
    """The text parts of the last user turn of a generateContent request."""
    for content in reversed(body.get("contents") or []):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            parts = content.get("parts") or []
            return "\n".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


class MockGeminiServer(MockChatServer):
    """``reasoning`` becomes a thought part (when the request asks for thoughts); ``unavailable`` picks
    503 (else 500) for server errors; ``block_prompt`` answers every request with a blocked prompt."""

    def __init__(self, *, unavailable: bool = True, block_prompt: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unavailable = unavailable
        self.block_prompt = block_prompt
        self.paths: list[str] = []  # request paths, when record_requests

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1beta"

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{call}", self._generate)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["call"].partition(":")
        if method != "generateContent":
            self.outcomes["bad_request"] += 1
            return _error(404, "NOT_FOUND", f"method {method!r} of model {model!r} is not served here")
        if self.record_requests:
            self.paths.append(request.path)
        return await self._chat(request)

    def _offered_key(self, request: web.Request) -> str:
        return request.headers.get("x-goog-api-key", "")

    def _expected_key(self, api_key: str) -> str:
        return api_key

    def _unauthorized(self, offered: str) -> web.Response:
        details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
        return _error(400, "INVALID_ARGUMENT", f"API key not valid ({offered}). Please pass a valid API key.", details)

    def _rate_limited(self) -> web.Response:
        details = []
        if self.retry_after is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{self.retry_after}s"})
        return _error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", details)

    def _server_error(self) -> web.Response:
        if self.unavailable:
            return _error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        return _error(500, "INTERNAL", "An internal error has occurred.")

    def _user_text(self, body: dict[str, Any]) -> str:
        return gemini_user_text(body)

    def _completion(self, body: dict[str, Any], reply: MockReply, index: int) -> bytes:
        if reply.raw is not None:
            return orjson.dumps(reply.raw)
        prompt_tokens = len(gemini_user_text(body).split())
        if self.block_prompt is not None:
            return orjson.dumps(
                {
                    "promptFeedback": {"blockReason": self.block_prompt},
                    "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
                }
            )
        config = body.get("generationConfig") or {}
        thinking = config.get("thinkingConfig") or {}
        parts: list[dict[str, Any]] = []
        thoughts_tokens = len((reply.reasoning or "").split())
        if reply.reasoning is not None and thinking.get("includeThoughts") is True:
            parts.append({"text": reply.reasoning, "thought": True})
        if reply.content is not None:
            parts.append({"text": reply.content})
        candidates_tokens = len((reply.content or "").split())
        usage = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": candidates_tokens,
            "totalTokenCount": prompt_tokens + candidates_tokens + thoughts_tokens,
        }
        if thoughts_tokens:
            usage["thoughtsTokenCount"] = thoughts_tokens
        return orjson.dumps(
            {
                "candidates": [
                    {
                        "content": {"parts": parts, "role": "model"},
                        "finishReason": FINISH_REASONS.get(reply.finish_reason, reply.finish_reason),
                        "index": 0,
                    }
                ],
                "usageMetadata": usage,
                "modelVersion": self.model,
                "responseId": f"mock-{index}",
            }
        )
