"""Any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, llama.cpp, Ollama, hosted APIs).

A provider on the model-client layer (``targets/_client.py``: retries, Retry-After, per-URL limits,
load balancing, timeouts, the image cache, usage totals, the API key): this file only turns a Probe into
a chat-completions request and a reply into a Generation. The layer uses one shared
``aiohttp.ClientSession`` with orjson rather than the ``openai`` SDK: the client's own CPU per request is
the throughput budget (the SDK costs about 2 ms a request, this path about 0.1 ms). The request and
response mappings are pure functions (``build_chat_request``, ``parse_chat_response``) so they are tested
without a server.

The API key is read from the environment variable named by ``api_key_env`` at request time; it is never
stored on the target, put in its identity, logged, or left in an error text (server replies that echo
it are redacted).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from safemlrm.core.context import PluginContext
from safemlrm.core.plugins import targets
from safemlrm.core.types import ImagePart, ImageRef, Message, Probe, TextPart
from safemlrm.targets._base import prompt_messages
from safemlrm.targets._client import (
    ERROR_BODY_CHARS,
    IMAGE_CACHE_SIZE,
    REDACTED,
    RETRY_AFTER_STATUSES,
    RETRY_STATUSES,
    EncodedImage,
    ImageKey,
    MalformedResponse,
    RemoteParams,
    RemoteTarget,
    Reply,
    WireProtocol,
    image_data_url,
    int_usage,
    parse_retry_after,
    redact_secret,
    retry_delay,
    scaled_size,
)

__all__ = [  # the names earlier versions defined here, kept importable from this module
    "ERROR_BODY_CHARS", "IMAGE_CACHE_SIZE", "REDACTED", "RETRY_AFTER_STATUSES", "RETRY_STATUSES",
    "ChatResult", "MalformedResponse", "OpenAIParams", "OpenAITarget", "build_chat_request",
    "chat_completions_url", "image_data_url", "message_to_openai", "parse_chat_response",
    "parse_retry_after", "redact_secret", "retry_delay", "scaled_size",
]

ChatResult = Reply  # the name of the parsed reply before the client layer


class OpenAIParams(RemoteParams):
    base_url: str | list[str] = Field(
        default="http://127.0.0.1:8000/v1",
        description="endpoint base URL ending in /v1; a list of URLs serving the same model is load-balanced",
    )
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = Field(
        default="max_tokens", description="request field that carries max_new_tokens"
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description="extra request fields for the server (e.g. stop, min_p)",
    )
    thinking_budget: int | None = Field(
        default=None,
        ge=1,
        description=(
            "most reasoning tokens, sent as vLLM's `thinking_token_budget` request field (the server needs "
            "--reasoning-parser, and --reasoning-config for models it cannot infer the markers of); servers "
            "without it ignore it or refuse the request: cap the reasoning with max_new_tokens there"
        ),
    )


# ---------------------------------------------------------------- pure mappings


def chat_completions_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base if base.endswith("/chat/completions") else f"{base}/chat/completions"


ImageEncoder = Callable[[ImageRef], str]


def message_to_openai(message: Message, encode_image: ImageEncoder) -> dict[str, Any]:
    """One chat message in OpenAI format: plain string content when text-only, content parts otherwise."""
    if not any(isinstance(part, ImagePart) for part in message.content):
        return {"role": message.role, "content": message.text}
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        else:
            parts.append({"type": "image_url", "image_url": {"url": encode_image(part.image)}})
    return {"role": message.role, "content": parts}


def build_chat_request(
    probe: Probe, params: OpenAIParams, encode_image: ImageEncoder | None = None, *, sample: int = 0
) -> dict[str, Any]:
    """The JSON body of a chat-completions request for one probe (sample ``sample`` of it).

    Sample ``i`` of a probe is seeded with ``seed + i``, so the samples differ and each is reproducible;
    sample 0 sends exactly the request of a run without samples.
    """

    def default_encoder(ref: ImageRef) -> str:
        return image_data_url(ref.path, params.max_pixels)

    encoder = encode_image or default_encoder
    body: dict[str, Any] = {
        "model": params.model,
        "messages": [message_to_openai(m, encoder) for m in prompt_messages(probe, params)],
        params.max_tokens_field: params.max_new_tokens,
        "temperature": params.temperature,
        "stream": False,
    }
    if params.top_p is not None:
        body["top_p"] = params.top_p
    if params.seed is not None:
        body["seed"] = params.seed + sample
    for name in ("top_k", "presence_penalty", "repetition_penalty"):
        value = getattr(params, name)
        if value is not None:
            body[name] = value
    body.update(params.extra_body)
    if params.chat_template_kwargs:
        given = body.get("chat_template_kwargs")
        body["chat_template_kwargs"] = {**(given if isinstance(given, dict) else {}), **params.chat_template_kwargs}
    if params.thinking_budget is not None:
        body["thinking_token_budget"] = params.thinking_budget
    return body



def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers answer with content parts
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(t for t in texts if isinstance(t, str))
    raise MalformedResponse(f"message content has type {type(content).__name__}")


def parse_chat_response(data: Any) -> Reply:
    """Text, native reasoning (``reasoning_content`` or ``reasoning``), finish reason and usage."""
    if not isinstance(data, dict):
        raise MalformedResponse(f"expected a JSON object, got {type(data).__name__}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse("no choices in the response")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise MalformedResponse("the first choice has no message")
    reasoning: str | None = None
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            reasoning = value
            break
    finish = choice.get("finish_reason")
    return Reply(
        text=_content_text(message.get("content")),
        reasoning=reasoning,
        finish_reason=finish if isinstance(finish, str) else None,
        usage=int_usage(data.get("usage")),
    )



class OpenAIProtocol(WireProtocol):
    """Bearer auth, chat-completion replies, the layer's default error classification."""

    def parse(self, data: Any) -> Reply:
        return parse_chat_response(data)


@targets.register("openai")
class OpenAITarget(RemoteTarget):
    """Any OpenAI-compatible chat-completions endpoint; concurrent, retried, load-balanced."""

    Params = OpenAIParams
    kind = "openai"
    protocol = OpenAIProtocol()
    params: OpenAIParams

    def __init__(self, params: OpenAIParams, ctx: PluginContext) -> None:
        super().__init__(params, ctx)

    def request_urls(self, params: RemoteParams) -> list[str]:
        return [chat_completions_url(u) for u in params.urls]

    def build_request(self, probe: Probe, sample: int) -> dict[str, Any]:
        return build_chat_request(probe, self.params, self._encode_image, sample=sample)

    def _encode_image(self, ref: ImageRef) -> str:
        return self.encoded(ref).data_url

    @property
    def _image_cache(self) -> OrderedDict[ImageKey, EncodedImage]:
        return self.client.images.entries

    def identity(self) -> dict[str, Any]:
        """What determines the output. Not the URLs (replicas are equivalent) and never a secret.

        Settings added later enter only when set, so the identity (and the store keys) of a run that
        does not use them stay what they were.
        """
        optional = {
            name: value
            for name in (
                "chat_template_kwargs", "top_k", "presence_penalty", "repetition_penalty", "thinking_budget"
            )
            if (value := getattr(self.params, name)) not in (None, {})
        }
        return {
            "kind": "openai",
            **self.params.model_dump(
                include={
                    "model", "system_prompt", "user_prefix", "max_new_tokens", "temperature", "top_p",
                    "seed", "max_pixels", "max_tokens_field", "extra_body",
                }
            ),
            **optional,
        }
