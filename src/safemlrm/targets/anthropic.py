"""The Anthropic Messages API (``POST /v1/messages``, API version 2023-06-01), on the model-client layer.

This file only turns a Probe into a Messages request and a reply into a Generation; retries, limits,
load balancing, timeouts, the image cache and the key are the layer's (``targets/_client.py``).
Extended thinking (``thinking_budget``) sends ``thinking: {type: enabled, budget_tokens}``: the reply's
``thinking`` blocks become the generation's reasoning, its ``text`` blocks the answer, and
``redacted_thinking`` blocks (reasoning the API encrypted) are recorded, never dropped: a marker line
in the reasoning and a ``redacted_thinking_blocks`` count in the usage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from pydantic import Field, model_validator

from safemlrm.core.context import PluginContext
from safemlrm.core.plugins import targets
from safemlrm.core.types import ImagePart, ImageRef, Probe, TextPart
from safemlrm.targets._base import prompt_messages
from safemlrm.targets._client import (
    EncodedImage,
    FatalError,
    MalformedResponse,
    RemoteParams,
    RemoteTarget,
    Reply,
    RetryableError,
    WireProtocol,
    int_usage,
    parse_retry_after,
    unsupported_settings,
)

API_VERSION = "2023-06-01"
# The API's stop reasons in the words the rest of safemlrm uses (OpenAI's: parsers read "length").
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "refusal": "content_filter",
    "tool_use": "tool_calls",
}
MIN_THINKING_BUDGET = 1024  # the API refuses smaller budgets


def redacted_marker(count: int) -> str:
    return f"[redacted thinking: {count} block{'s' if count != 1 else ''} encrypted by the API]"


class AnthropicParams(RemoteParams):
    base_url: str | list[str] = Field(
        default="https://api.anthropic.com",
        description="API base URL (requests go to {base_url}/v1/messages); a list is load-balanced",
    )
    api_key_env: str | None = Field(
        default="ANTHROPIC_API_KEY",
        description="NAME of the environment variable holding the API key (sent as x-api-key)",
    )
    max_concurrency: int = Field(default=8, ge=1, description="requests in flight per endpoint")
    anthropic_version: str = Field(default=API_VERSION, description="the anthropic-version header")
    thinking_budget: int | None = Field(
        default=None,
        ge=MIN_THINKING_BUDGET,
        description="extended thinking: budget_tokens (at least 1024, below max_new_tokens); unset = off",
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="extra request fields (e.g. stop_sequences, metadata)"
    )
    model: str = Field(default="", validate_default=True, description="the model id, e.g. claude-sonnet-4-5")

    @model_validator(mode="after")
    def _budget_below_max_tokens(self) -> AnthropicParams:
        unsupported_settings(self, "anthropic", "thinking_budget")
        if self.thinking_budget is not None:
            if self.thinking_budget >= self.max_new_tokens:
                raise ValueError(
                    f"thinking_budget ({self.thinking_budget}) must be below max_new_tokens "
                    f"({self.max_new_tokens}): the API counts the thinking inside max_tokens"
                )
            if self.top_k is not None:
                raise ValueError("top_k cannot be set with extended thinking (the API refuses it)")
        return self


def messages_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.endswith("/v1/messages"):
        return base
    return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"


def build_messages_request(
    probe: Probe, params: AnthropicParams, encode: Callable[[ImageRef], EncodedImage], *, sample: int = 0
) -> dict[str, Any]:
    """The JSON body of a Messages request. ``encode(ref)`` gives an ``EncodedImage``.

    System messages go to the top-level ``system`` field. The API takes no seed, so samples differ
    only by sampling (``sample`` is accepted for the pipeline and does not change the body).
    """
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for message in prompt_messages(probe, params):
        if message.role == "system":
            system.append(message.text)
            continue
        blocks: list[dict[str, Any]] = []
        for part in message.content:
            if isinstance(part, TextPart):
                blocks.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                image = encode(part.image)
                blocks.append(
                    {"type": "image", "source": {"type": "base64", "media_type": image.mime, "data": image.data}}
                )
        messages.append({"role": message.role, "content": blocks})
    body: dict[str, Any] = {"model": params.model, "max_tokens": params.max_new_tokens, "messages": messages}
    if system:
        body["system"] = "\n\n".join(system)
    if params.thinking_budget is not None:
        # The API refuses temperature and top_k with thinking on, and top_p below 0.95.
        body["thinking"] = {"type": "enabled", "budget_tokens": params.thinking_budget}
        if params.top_p is not None:
            body["top_p"] = params.top_p
    else:
        body["temperature"] = params.temperature
        if params.top_p is not None:
            body["top_p"] = params.top_p
        if params.top_k is not None:
            body["top_k"] = params.top_k
    body.update(params.extra_body)
    return body


def parse_messages_response(data: Any) -> Reply:
    """Text blocks are the answer; thinking blocks the reasoning; redacted thinking is counted and marked."""
    if not isinstance(data, dict) or data.get("type") != "message":
        raise MalformedResponse("not a Messages API message")
    content = data.get("content")
    if not isinstance(content, list):
        raise MalformedResponse("the message has no content list")
    texts: list[str] = []
    thoughts: list[str] = []
    redacted = 0
    for block in content:
        if not isinstance(block, dict):
            raise MalformedResponse("a content block is not an object")
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            thoughts.append(block["thinking"])
        elif kind == "redacted_thinking":
            redacted += 1
    if redacted:
        thoughts.append(redacted_marker(redacted))
    usage = int_usage(data.get("usage"))
    if "input_tokens" in usage:
        usage["prompt_tokens"] = usage["input_tokens"]
    if "output_tokens" in usage:
        usage["completion_tokens"] = usage["output_tokens"]
    if redacted:
        usage["redacted_thinking_blocks"] = redacted
    stop = data.get("stop_reason")
    return Reply(
        text="".join(texts),
        reasoning="\n\n".join(thoughts) if thoughts else None,
        finish_reason=STOP_REASONS.get(stop, stop) if isinstance(stop, str) else None,
        usage=usage,
    )


class AnthropicProtocol(WireProtocol):
    def __init__(self, version: str = API_VERSION) -> None:
        self.version = version

    def headers(self, key: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "anthropic-version": self.version}
        if key is not None:
            headers["x-api-key"] = key
        return headers

    def parse(self, data: Any) -> Reply:
        return parse_messages_response(data)

    def error(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Exception:
        """429 (rate limit), 529 (overloaded) and 5xx are retried, honouring retry-after when sent; a
        429 for a reached spend limit is final (no wait would help)."""
        failure = super().error(status, headers, raw, now)
        if not isinstance(failure, RetryableError):
            return failure
        if status == 429 and _error_code(raw) == "enforced_spend_limit_reached":
            return FatalError(str(failure))
        failure.retry_after_s = parse_retry_after(headers.get("retry-after"), now)
        return failure


def _error_code(raw: bytes) -> str | None:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    code = details.get("error_code") if isinstance(details, dict) else None
    return code if isinstance(code, str) else None


@targets.register("anthropic")
class AnthropicTarget(RemoteTarget):
    """Anthropic Messages API (Claude): images, extended thinking as reasoning, redacted thinking marked."""

    Params = AnthropicParams
    kind = "anthropic"
    params: AnthropicParams
    identity_fields = frozenset({"top_k", "thinking_budget", "anthropic_version"})

    def __init__(self, params: AnthropicParams, ctx: PluginContext) -> None:
        self.protocol = AnthropicProtocol(params.anthropic_version)
        super().__init__(params, ctx)

    def request_urls(self, params: RemoteParams) -> list[str]:
        return [messages_url(u) for u in params.urls]

    def build_request(self, probe: Probe, sample: int) -> dict[str, Any]:
        return build_messages_request(probe, self.params, self.encoded, sample=sample)
