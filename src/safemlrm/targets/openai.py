"""Any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, llama.cpp, Ollama, hosted APIs).

Built on one shared ``aiohttp.ClientSession`` with orjson rather than the ``openai`` SDK: the client's
own CPU per request is the throughput budget (the SDK costs about 2 ms a request, this path about
0.1 ms). The request and response mappings are pure functions (``build_chat_request``,
``parse_chat_response``, ``retry_delay``, ``parse_retry_after``) so they are tested without a server.

The API key is read from the environment variable named by ``api_key_env`` at request time; it is never
stored on the target, put in its identity, logged, or left in an error text (server replies that echo
it are redacted).
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import io
import itertools
import logging
import math
import os
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import Field, field_validator

from safemlrm.context import PluginContext
from safemlrm.plugins import targets
from safemlrm.targets._base import TargetParams, prompt_messages
from safemlrm.types import Generation, ImagePart, ImageRef, Message, Probe, TextPart

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 425, 429})  # plus every 5xx
RETRY_AFTER_STATUSES = frozenset({429, 503})
ERROR_BODY_CHARS = 300
IMAGE_CACHE_SIZE = 32  # encoded images kept per target (a probe's images are often shared by the next ones)
REDACTED = "***"


class OpenAIParams(TargetParams):
    base_url: str | list[str] = Field(
        default="http://127.0.0.1:8000/v1",
        description="endpoint base URL ending in /v1; a list of URLs serving the same model is load-balanced",
    )
    api_key_env: str | None = Field(
        default=None,
        description="NAME of the environment variable holding the API key (read per request, never stored)",
    )
    max_concurrency: int = Field(default=64, ge=1, description="requests in flight per endpoint")
    load_balance: Literal["least_in_flight", "round_robin"] = Field(
        default="least_in_flight", description="how requests are spread over several base URLs"
    )
    timeout_s: float = Field(default=300.0, gt=0, description="total time limit of one HTTP request")
    max_retries: int = Field(default=5, ge=0, description="retries after the first attempt")
    backoff_base_s: float = Field(default=0.5, ge=0, description="first backoff ceiling (doubles per retry)")
    backoff_max_s: float = Field(default=30.0, ge=0, description="largest backoff ceiling")
    max_retry_after_s: float = Field(
        default=300.0, ge=0, description="longest server-requested wait (Retry-After) that is honoured"
    )
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = Field(
        default="max_tokens", description="request field that carries max_new_tokens"
    )
    max_pixels: int | None = Field(
        default=None, ge=1, description="downscale images above this many pixels (aspect ratio kept)"
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

    # validate_default: a config that leaves `model` out must fail too, not only one that sets "".
    model: str = Field(default="", validate_default=True, description="the model name the server serves")

    @field_validator("model")
    @classmethod
    def _model_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("set the model name the server serves (e.g. the `vllm serve` model id)")
        return value

    @field_validator("base_url")
    @classmethod
    def _urls(cls, value: str | list[str]) -> str | list[str]:
        urls = [value] if isinstance(value, str) else value
        if not urls:
            raise ValueError("give at least one base URL")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return value

    @property
    def urls(self) -> list[str]:
        return [self.base_url] if isinstance(self.base_url, str) else list(self.base_url)


# ---------------------------------------------------------------- pure mappings


def chat_completions_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base if base.endswith("/chat/completions") else f"{base}/chat/completions"


def _sniff_mime(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return ""


def scaled_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """The largest size with the same aspect ratio and at most ``max_pixels`` pixels (never upscaled)."""
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    new_w, new_h = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    while new_w * new_h > max_pixels:  # floating-point rounding at the edge
        if new_w >= new_h:
            new_w -= 1
        else:
            new_h -= 1
    return new_w, new_h


def image_data_url(path: str | os.PathLike[str], max_pixels: int | None = None) -> str:
    """A base64 data URL of an image file, downscaled to ``max_pixels`` when it is larger."""
    data = Path(path).read_bytes()
    mime = _sniff_mime(data)
    if max_pixels is not None or not mime:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if max_pixels is not None and width * height > max_pixels:
                fmt = "JPEG" if image.format == "JPEG" else "PNG"
                resized = image.convert("RGB" if fmt == "JPEG" else image.mode)
                resized = resized.resize(scaled_size(width, height, max_pixels), Image.Resampling.LANCZOS)
                buffer = io.BytesIO()
                resized.save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
                data, mime = buffer.getvalue(), f"image/{fmt.lower()}"
            elif not mime:  # a format servers may not read (BMP, TIFF...): send PNG
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                data, mime = buffer.getvalue(), "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


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


class MalformedResponse(ValueError):
    """The server answered 200 with a body that is not a chat completion."""


@dataclass(frozen=True)
class ChatResult:
    text: str
    reasoning: str | None
    finish_reason: str | None
    usage: dict[str, int]


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers answer with content parts
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(t for t in texts if isinstance(t, str))
    raise MalformedResponse(f"message content has type {type(content).__name__}")


def _usage(raw: Any) -> dict[str, int]:
    usage: dict[str, int] = {}
    if not isinstance(raw, dict):
        return usage
    for key, value in raw.items():
        if isinstance(value, int) and not isinstance(value, bool):
            usage[key] = value
        elif isinstance(value, dict):  # completion_tokens_details.reasoning_tokens and the like
            for sub_key, sub_value in value.items():
                if isinstance(sub_value, int) and not isinstance(sub_value, bool):
                    usage[sub_key] = sub_value
    return usage


def parse_chat_response(data: Any) -> ChatResult:
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
    return ChatResult(
        text=_content_text(message.get("content")),
        reasoning=reasoning,
        finish_reason=finish if isinstance(finish, str) else None,
        usage=_usage(data.get("usage")),
    )


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date); None when absent/bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def retry_delay(
    retry_index: int,
    *,
    base_s: float,
    max_s: float,
    rng: random.Random,
    retry_after_s: float | None = None,
    max_retry_after_s: float = 300.0,
) -> float:
    """Seconds to wait before retry number ``retry_index`` (0-based).

    Exponential backoff with full jitter (uniform below min(max, base * 2^n)); a server's Retry-After,
    when given, is honoured as a floor (capped at ``max_retry_after_s``).
    """
    ceiling = min(max_s, base_s * (2.0**retry_index))
    delay = rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max_retry_after_s))
    return delay


def redact_secret(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        return text.replace(secret, REDACTED)
    return text


# ---------------------------------------------------------------- the target


class _RetryableError(Exception):
    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class _FatalError(Exception):
    pass


@dataclass
class Endpoint:
    url: str  # full chat-completions URL
    limit: int  # most requests in flight here
    in_flight: int = 0  # requests running here now
    requests: int = 0  # HTTP attempts made
    failures: int = 0  # attempts that failed


@dataclass
class _LoopState:
    loop: asyncio.AbstractEventLoop
    session: aiohttp.ClientSession
    endpoints: list[Endpoint]
    slots: asyncio.Semaphore  # the sum of the endpoints' limits: holding one means an endpoint is free
    rotation: itertools.count[int] = field(default_factory=itertools.count)


@targets.register("openai")
class OpenAITarget:
    """Any OpenAI-compatible chat-completions endpoint; concurrent, retried, load-balanced."""

    Params = OpenAIParams

    def __init__(self, params: OpenAIParams, ctx: PluginContext) -> None:
        self.params = params
        self.label = ctx.label or "openai"
        self.max_batch_size = 1
        self.max_concurrency = params.max_concurrency * len(params.urls)
        self._urls = [chat_completions_url(u) for u in params.urls]
        self._state: _LoopState | None = None
        self._image_cache: OrderedDict[tuple[str, str, int | None], str] = OrderedDict()
        # Injectable for tests (a fake clock); defaults are the real ones.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.clock: Callable[[], float] = time.time
        self.rng = random.Random()

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

    @property
    def endpoints(self) -> list[Endpoint]:
        return self._state.endpoints if self._state is not None else []

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            import aiohttp

            total = self.max_concurrency
            connector = aiohttp.TCPConnector(limit=total + 8, limit_per_host=0, ttl_dns_cache=300)
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.params.timeout_s),
            )
            endpoints = [Endpoint(url, self.params.max_concurrency) for url in self._urls]
            self._state = _LoopState(loop, session, endpoints, asyncio.Semaphore(total))
        return self._state

    def _pick(self, state: _LoopState) -> Endpoint:
        """An endpoint with a free slot (the caller holds one of ``state.slots``, so one exists).

        Picking only once a slot is free (not queueing on an endpoint up front) lets a faster replica
        take more of the work under least-in-flight.
        """
        endpoints = state.endpoints
        if len(endpoints) == 1:
            return endpoints[0]
        start = next(state.rotation) % len(endpoints)
        ordered = [e for e in endpoints[start:] + endpoints[:start] if e.in_flight < e.limit]
        if self.params.load_balance == "round_robin":
            return ordered[0]
        return min(ordered, key=lambda e: e.in_flight)  # rotated first, so ties spread evenly

    def _cache_image(self, key: tuple[str, str, int | None], url: str) -> None:
        """The one way into the image cache: every insertion trims it to ``IMAGE_CACHE_SIZE``."""
        self._image_cache[key] = url
        self._image_cache.move_to_end(key)
        while len(self._image_cache) > IMAGE_CACHE_SIZE:
            self._image_cache.popitem(last=False)

    def _encode_image(self, ref: ImageRef) -> str:
        key = (ref.path, ref.sha256, self.params.max_pixels)
        cached = self._image_cache.get(key)
        if cached is not None:
            self._image_cache.move_to_end(key)
            return cached
        url = image_data_url(ref.path, self.params.max_pixels)
        self._cache_image(key, url)
        return url

    async def _request_body(self, probe: Probe, sample: int = 0) -> bytes:
        if probe.images and any(
            (img.path, img.sha256, self.params.max_pixels) not in self._image_cache for img in probe.images
        ):
            # Encode new images off the event loop; later probes with the same images hit the cache.
            for image in probe.images:
                encoded = await asyncio.to_thread(image_data_url, image.path, self.params.max_pixels)
                self._cache_image((image.path, image.sha256, self.params.max_pixels), encoded)
        return orjson.dumps(build_chat_request(probe, self.params, self._encode_image, sample=sample))

    def _api_key(self) -> str | None:
        name = self.params.api_key_env
        if not name:
            return None
        key = os.environ.get(name)
        if not key:
            raise _FatalError(f"environment variable {name} (api_key_env) is not set or empty")
        return key

    async def _attempt(
        self, state: _LoopState, endpoint: Endpoint, body: bytes, key: str | None
    ) -> ChatResult:
        import aiohttp

        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        endpoint.requests += 1
        try:
            async with state.session.post(endpoint.url, data=body, headers=headers) as response:
                raw = await response.read()
                status = response.status
                retry_after_header = response.headers.get("Retry-After")
        except TimeoutError:
            raise _RetryableError(f"timed out after {self.params.timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise _RetryableError(f"connection error: {type(exc).__name__}: {exc}") from None
        if status != 200:
            excerpt = raw[:ERROR_BODY_CHARS].decode("utf-8", "replace")
            message = f"HTTP {status}: {excerpt}"
            if status >= 500 or status in RETRY_STATUSES:
                retry_after = None
                if status in RETRY_AFTER_STATUSES:
                    retry_after = parse_retry_after(retry_after_header, self.clock())
                raise _RetryableError(message, retry_after)
            raise _FatalError(message)
        try:
            return parse_chat_response(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise _RetryableError(f"malformed JSON in the response: {exc}") from None
        except MalformedResponse as exc:
            raise _RetryableError(f"malformed response: {exc}") from None

    async def _generate_one(self, probe: Probe, sample: int = 0) -> Generation:
        state = self._loop_state()
        probe_key = probe.key  # a content hash: compute it once
        key: str | None = None
        try:
            key = self._api_key()
            body = await self._request_body(probe, sample)
        except _FatalError as exc:
            return Generation(probe_key=probe_key, target=self.label, error=str(exc))
        except (OSError, ValueError) as exc:  # unreadable or corrupt image: no request can succeed
            error = f"cannot build the request: {exc}"
            return Generation(probe_key=probe_key, target=self.label, error=error)
        attempts = self.params.max_retries + 1
        last_error = ""
        for attempt in range(attempts):
            retry_after: float | None = None
            result: ChatResult | None = None
            await state.slots.acquire()
            endpoint = self._pick(state)
            endpoint.in_flight += 1
            try:
                started = time.perf_counter()
                result = await self._attempt(state, endpoint, body, key)
                latency = time.perf_counter() - started
            except _FatalError as exc:
                endpoint.failures += 1
                error = redact_secret(str(exc), key)
                log.warning("%s: probe %s failed: %s", self.label, probe_key[:12], error)
                return Generation(probe_key=probe_key, target=self.label, error=error)
            except _RetryableError as exc:
                endpoint.failures += 1
                last_error = redact_secret(str(exc), key)
                retry_after = exc.retry_after_s
            finally:
                endpoint.in_flight -= 1
                state.slots.release()  # never held while backing off
            if result is not None:
                return Generation(
                    probe_key=probe_key,
                    target=self.label,
                    text=result.text,
                    reasoning=result.reasoning,
                    finish_reason=result.finish_reason,
                    usage=result.usage,
                    latency_s=latency,
                )
            if attempt + 1 < attempts:
                delay = retry_delay(
                    attempt,
                    base_s=self.params.backoff_base_s,
                    max_s=self.params.backoff_max_s,
                    rng=self.rng,
                    retry_after_s=retry_after,
                    max_retry_after_s=self.params.max_retry_after_s,
                )
                log.debug(
                    "%s: attempt %d/%d failed (%s); retrying in %.2f s",
                    self.label, attempt + 1, attempts, last_error[:200], delay,
                )
                await self.sleep(delay)
        error = f"failed after {attempts} attempt{'s' if attempts > 1 else ''}: {last_error}"
        log.warning("%s: probe %s %s", self.label, probe_key[:12], error[:300])
        return Generation(probe_key=probe_key, target=self.label, error=error)

    async def generate(self, probes: Sequence[Probe], *, sample: int = 0) -> list[Generation]:
        """One generation per probe; ``sample`` > 0 draws another sample of each (seeded ``seed + sample``)."""
        if len(probes) == 1:
            return [await self._generate_one(probes[0], sample)]
        return list(await asyncio.gather(*(self._generate_one(p, sample) for p in probes)))

    async def aclose(self) -> None:
        state, self._state = self._state, None
        if state is not None and not state.session.closed:
            await state.session.close()
