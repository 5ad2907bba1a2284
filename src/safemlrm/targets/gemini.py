"""The Gemini API's ``generateContent`` (REST v1beta), on the model-client layer.

This file only turns a Probe into a ``POST {base}/models/{model}:generateContent`` body and a reply
into a Generation; retries, limits, load balancing, timeouts, the image cache and the key (sent in the
``x-goog-api-key`` header, never in the URL) are the layer's (``targets/_client.py``). Thinking:
``thinking_budget`` and ``include_thoughts`` fill ``generationConfig.thinkingConfig``; parts marked
``thought: true`` (thought summaries) become the generation's reasoning, the other text parts its answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from pydantic import Field, model_validator

from safemlrm.core.plugins import targets
from safemlrm.core.types import ImagePart, ImageRef, Probe, TextPart
from safemlrm.targets._base import prompt_messages
from safemlrm.targets._client import (
    EncodedImage,
    MalformedResponse,
    RemoteParams,
    RemoteTarget,
    Reply,
    RetryableError,
    WireProtocol,
    parse_retry_after,
    unsupported_settings,
)

# finishReason in the words the rest of safemlrm uses (OpenAI's: parsers read "length"); the API's
# safety stops are all "content_filter".
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
USAGE_FIELDS = {  # usageMetadata -> the usage names the exports read
    "promptTokenCount": "prompt_tokens",
    "candidatesTokenCount": "candidates_tokens",
    "thoughtsTokenCount": "reasoning_tokens",
    "totalTokenCount": "total_tokens",
    "cachedContentTokenCount": "cached_tokens",
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


class GeminiParams(RemoteParams):
    base_url: str | list[str] = Field(
        default="https://generativelanguage.googleapis.com/v1beta",
        description="API base URL ending in /v1beta (requests go to {base_url}/models/{model}:generateContent)",
    )
    api_key_env: str | None = Field(
        default="GEMINI_API_KEY",
        description="NAME of the environment variable holding the API key (sent as x-goog-api-key)",
    )
    max_concurrency: int = Field(default=8, ge=1, description="requests in flight per endpoint")
    thinking_budget: int | None = Field(
        default=None, ge=-1, description="thinkingConfig.thinkingBudget: 0 = off (where allowed), -1 = dynamic"
    )
    include_thoughts: bool = Field(
        default=True, description="ask for thought summaries (thinkingConfig.includeThoughts): kept as reasoning"
    )
    generation_config: dict[str, Any] = Field(
        default_factory=dict, description="extra generationConfig fields (e.g. stopSequences)"
    )
    extra_body: dict[str, Any] = Field(default_factory=dict, description="extra request fields (e.g. safetySettings)")
    model: str = Field(default="", validate_default=True, description="the model id, e.g. gemini-2.5-flash")

    @model_validator(mode="after")
    def _supported(self) -> GeminiParams:
        unsupported_settings(self, "gemini", "thinking_budget")
        return self


def generate_content_url(base_url: str, model: str) -> str:
    name = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
    return f"{base_url.rstrip('/')}/{name}:generateContent"


def build_generate_request(
    probe: Probe, params: GeminiParams, encode: Callable[[ImageRef], EncodedImage], *, sample: int = 0
) -> dict[str, Any]:
    """The JSON body of a generateContent request (sample ``i`` is seeded ``seed + i``)."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    for message in prompt_messages(probe, params):
        if message.role == "system":
            system.append(message.text)
            continue
        parts: list[dict[str, Any]] = []
        for part in message.content:
            if isinstance(part, TextPart):
                parts.append({"text": part.text})
            elif isinstance(part, ImagePart):
                image = encode(part.image)
                parts.append({"inline_data": {"mime_type": image.mime, "data": image.data}})
        contents.append({"role": "model" if message.role == "assistant" else "user", "parts": parts})
    config: dict[str, Any] = {"maxOutputTokens": params.max_new_tokens, "temperature": params.temperature}
    if params.top_p is not None:
        config["topP"] = params.top_p
    if params.top_k is not None:
        config["topK"] = params.top_k
    if params.seed is not None:
        config["seed"] = params.seed + sample
    thinking: dict[str, Any] = {}
    if params.include_thoughts:
        thinking["includeThoughts"] = True
    if params.thinking_budget is not None:
        thinking["thinkingBudget"] = params.thinking_budget
    if thinking:
        config["thinkingConfig"] = thinking
    config.update(params.generation_config)
    body: dict[str, Any] = {"contents": contents, "generationConfig": config}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    body.update(params.extra_body)
    return body


def parse_generate_response(data: Any) -> Reply:
    """Thought parts are the reasoning, the other text parts the answer; a blocked prompt is an empty
    answer stopped by ``content_filter`` (the API's refusal), not an error."""
    if not isinstance(data, dict):
        raise MalformedResponse(f"expected a JSON object, got {type(data).__name__}")
    usage: dict[str, int] = {}
    metadata = data.get("usageMetadata")
    if isinstance(metadata, dict):
        for field, name in USAGE_FIELDS.items():
            value = metadata.get(field)
            if isinstance(value, int) and not isinstance(value, bool):
                usage[name] = value
        # completion_tokens as the exports read it: everything generated, thoughts included.
        usage["completion_tokens"] = usage.get("candidates_tokens", 0) + usage.get("reasoning_tokens", 0)
    candidates = data.get("candidates")
    if not candidates:
        feedback = data.get("promptFeedback")
        if isinstance(feedback, dict) and isinstance(feedback.get("blockReason"), str):
            return Reply(text="", reasoning=None, finish_reason="content_filter", usage=usage)
        raise MalformedResponse("no candidates and no promptFeedback.blockReason")
    if not isinstance(candidates, list) or not isinstance(candidates[0], dict):
        raise MalformedResponse("candidates is not a list of objects")
    candidate = candidates[0]
    content = candidate.get("content") or {}
    parts = content.get("parts") or [] if isinstance(content, dict) else None
    if not isinstance(parts, list):
        raise MalformedResponse("the candidate's content has no parts list")
    texts: list[str] = []
    thoughts: list[str] = []
    for part in parts:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            (thoughts if part.get("thought") is True else texts).append(part["text"])
    finish = candidate.get("finishReason")
    return Reply(
        text="".join(texts),
        reasoning="".join(thoughts) if thoughts else None,
        finish_reason=FINISH_REASONS.get(finish, finish.lower()) if isinstance(finish, str) else None,
        usage=usage,
    )


def retry_info_delay(raw: bytes) -> float | None:
    """The wait a Google error names in a ``google.rpc.RetryInfo`` detail (``"retryDelay": "7s"``)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


class GeminiProtocol(WireProtocol):
    def headers(self, key: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["x-goog-api-key"] = key
        return headers

    def parse(self, data: Any) -> Reply:
        return parse_generate_response(data)

    def error(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Exception:
        """429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE and other 5xx are retried, waiting what the body's
        RetryInfo (or a Retry-After header) asks; 400 (bad key, bad request) and 403/404 are final."""
        failure = super().error(status, headers, raw, now)
        if isinstance(failure, RetryableError):
            wait = retry_info_delay(raw)
            if wait is None:
                wait = parse_retry_after(headers.get("Retry-After"), now)
            failure.retry_after_s = wait
        return failure


@targets.register("gemini")
class GeminiTarget(RemoteTarget):
    """Gemini API generateContent: images, thought summaries as reasoning, safety stops recorded."""

    Params = GeminiParams
    kind = "gemini"
    protocol = GeminiProtocol()
    params: GeminiParams
    identity_fields = frozenset({"top_k", "seed", "thinking_budget", "include_thoughts", "generation_config"})

    def request_urls(self, params: RemoteParams) -> list[str]:
        return [generate_content_url(u, params.model) for u in params.urls]

    def build_request(self, probe: Probe, sample: int) -> dict[str, Any]:
        return build_generate_request(probe, self.params, self.encoded, sample=sample)
