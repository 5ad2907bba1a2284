"""The model-client layer that every remote API target is built on.

One ``ModelClient`` holds what talking to a hosted model needs, whatever its protocol: one pooled
``aiohttp`` session per event loop, per-endpoint concurrency limits, load balancing over several base
URLs (least in flight or round robin), request timeouts, retries with exponential backoff and full
jitter that honour a server's requested wait (Retry-After, or a wait named in the error body), a
bounded cache of encoded images, token-usage totals, and the API key: read from the environment
variable the config names, at each request, and never kept, logged or stored (server replies that echo
it are redacted).

A provider (``openai``, ``anthropic``, ``gemini``) is a ``RemoteTarget`` subclass that only turns a
Probe into a request body, and a ``WireProtocol`` that names its auth headers, reads its replies into a
``Reply`` and classifies its errors. Retrying is one small module-level policy here (``retry_delay``)
rather than tenacity: tenacity is not a runtime dependency of the package (it is in test.lock only as
a transitive of a test tool).

A judge that names a run target by label gets the same client (``PluginContext.clients``), so the
run's generation and its judging share one concurrency limit per endpoint.
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
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import orjson
from pydantic import Field, field_validator

from safemlrm.core.context import PluginContext
from safemlrm.core.hashing import content_hash
from safemlrm.core.types import Generation, ImageRef, Probe
from safemlrm.targets._base import TargetParams

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 425, 429})  # plus every 5xx
RETRY_AFTER_STATUSES = frozenset({429, 503})
ERROR_BODY_CHARS = 300
IMAGE_CACHE_SIZE = 32  # encoded images kept per client (a probe's images are often shared by the next ones)
REDACTED = "***"


# ---------------------------------------------------------------- retries (pure)


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

    Exponential backoff with full jitter (uniform below min(max, base * 2^n)); a server's requested
    wait, when given, is honoured as a floor (capped at ``max_retry_after_s``).
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


# ---------------------------------------------------------------- images


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


@dataclass(frozen=True)
class EncodedImage:
    mime: str  # image/png, image/jpeg, image/gif or image/webp
    data: str  # base64

    @property
    def data_url(self) -> str:
        return f"data:{self.mime};base64,{self.data}"


def encode_image(path: str | os.PathLike[str], max_pixels: int | None = None) -> EncodedImage:
    """An image file as base64, downscaled to ``max_pixels`` when larger; formats APIs may not read
    (BMP, TIFF...) become PNG. Without a resize a PNG/JPEG/GIF/WebP file's bytes are sent unchanged."""
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
            elif not mime:
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                data, mime = buffer.getvalue(), "image/png"
    return EncodedImage(mime, base64.b64encode(data).decode("ascii"))


def image_data_url(path: str | os.PathLike[str], max_pixels: int | None = None) -> str:
    """A base64 data URL of an image file, downscaled to ``max_pixels`` when it is larger."""
    return encode_image(path, max_pixels).data_url


ImageKey = tuple[str, str, int | None]  # path, sha256, max_pixels


class ImageCache:
    """Encoded images, least recently used first out; at most ``size`` kept on every insertion path."""

    def __init__(self, size: int = IMAGE_CACHE_SIZE) -> None:
        self.size = size
        self.entries: OrderedDict[ImageKey, EncodedImage] = OrderedDict()

    def _put(self, key: ImageKey, image: EncodedImage) -> None:
        """The one way into the cache: every insertion trims it."""
        self.entries[key] = image
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)

    def get(self, ref: ImageRef, max_pixels: int | None) -> EncodedImage:
        key = (ref.path, ref.sha256, max_pixels)
        cached = self.entries.get(key)
        if cached is not None:
            self.entries.move_to_end(key)
            return cached
        image = encode_image(ref.path, max_pixels)
        self._put(key, image)
        return image

    async def prefetch(self, refs: Sequence[ImageRef], max_pixels: int | None) -> None:
        """Encode new images off the event loop; later probes with the same images hit the cache."""
        if all((r.path, r.sha256, max_pixels) in self.entries for r in refs):
            return
        for ref in refs:
            encoded = await asyncio.to_thread(encode_image, ref.path, max_pixels)
            self._put((ref.path, ref.sha256, max_pixels), encoded)


# ---------------------------------------------------------------- params


class RemoteParams(TargetParams):
    """Connection settings every remote API target has (its provider adds request fields)."""

    base_url: str | list[str] = Field(
        default="http://127.0.0.1:8000/v1",
        description="endpoint base URL; a list of URLs serving the same model is load-balanced",
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
    max_pixels: int | None = Field(
        default=None, ge=1, description="downscale images above this many pixels (aspect ratio kept)"
    )

    # validate_default: a config that leaves `model` out must fail too, not only one that sets "".
    model: str = Field(default="", validate_default=True, description="the model name the API serves")

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


def unsupported_settings(params: TargetParams, kind: str, thinking_field: str) -> None:
    """Refuse the chat-template and penalty settings a hosted API has no field for (rather than drop
    them silently: `thinking: on|off` fills chat_template_kwargs, which such an API would ignore)."""
    if params.chat_template_kwargs:
        raise ValueError(
            f"chat_template_kwargs (and `thinking: on|off`) do not apply to the {kind} API; "
            f"set params.{thinking_field} to turn its thinking on"
        )
    for name in ("presence_penalty", "repetition_penalty"):
        if getattr(params, name) is not None:
            raise ValueError(f"{name} is not a setting of the {kind} API")


# ---------------------------------------------------------------- replies and errors


class MalformedResponse(ValueError):
    """The server answered 200 with a body that is not a reply of its protocol."""


class RetryableError(Exception):
    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class FatalError(Exception):
    pass


@dataclass(frozen=True)
class Reply:
    """A provider's reply, protocol-free: the answer apart from the reasoning."""

    text: str
    reasoning: str | None
    finish_reason: str | None
    usage: dict[str, int]


def int_usage(raw: Any) -> dict[str, int]:
    """The integer counters of a usage object, nested ones flattened (``reasoning_tokens`` and the like)."""
    usage: dict[str, int] = {}
    if not isinstance(raw, dict):
        return usage
    for key, value in raw.items():
        if isinstance(value, int) and not isinstance(value, bool):
            usage[key] = value
        elif isinstance(value, dict):
            for sub_key, sub_value in value.items():
                if isinstance(sub_value, int) and not isinstance(sub_value, bool):
                    usage[sub_key] = sub_value
    return usage


class WireProtocol:
    """What differs between providers on the wire, past the request body: auth, replies, errors.

    The default error classification retries 408/409/425/429 and every 5xx (honouring Retry-After on
    429 and 503) and treats other statuses as final; providers extend it.
    """

    def headers(self, key: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def parse(self, data: Any) -> Reply:
        raise NotImplementedError

    def error(self, status: int, headers: Mapping[str, str], raw: bytes, now: float) -> Exception:
        """The exception for a non-200 reply: ``RetryableError`` (with a wait, if asked) or ``FatalError``."""
        message = f"HTTP {status}: {raw[:ERROR_BODY_CHARS].decode('utf-8', 'replace')}"
        if status >= 500 or status in RETRY_STATUSES:
            retry_after = None
            if status in RETRY_AFTER_STATUSES:
                retry_after = parse_retry_after(headers.get("Retry-After"), now)
            return RetryableError(message, retry_after)
        return FatalError(message)


# ---------------------------------------------------------------- the client


@dataclass
class Endpoint:
    url: str  # full request URL
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


@dataclass(frozen=True)
class ClientSettings:
    """What makes two clients the same connection (never the key itself: only its variable's name)."""

    urls: tuple[str, ...]  # full request URLs
    max_concurrency: int
    load_balance: str
    timeout_s: float
    max_retries: int
    backoff_base_s: float
    backoff_max_s: float
    max_retry_after_s: float
    api_key_env: str | None

    @classmethod
    def of(cls, params: RemoteParams, urls: Sequence[str]) -> ClientSettings:
        return cls(
            urls=tuple(urls),
            max_concurrency=params.max_concurrency,
            load_balance=params.load_balance,
            timeout_s=params.timeout_s,
            max_retries=params.max_retries,
            backoff_base_s=params.backoff_base_s,
            backoff_max_s=params.backoff_max_s,
            max_retry_after_s=params.max_retry_after_s,
            api_key_env=params.api_key_env,
        )


class ModelClient:
    """Concurrent, retried, load-balanced requests to one model behind one or more URLs."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.max_concurrency = settings.max_concurrency * len(settings.urls)
        self.images = ImageCache()
        self.usage: Counter[str] = Counter()  # token counters summed over successful replies
        self.holders = 0  # targets using this client; the session closes when the last one closes
        self._state: _LoopState | None = None
        # Injectable for tests (a fake clock); defaults are the real ones.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.clock: Callable[[], float] = time.time
        self.rng = random.Random()

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
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s)
            )
            endpoints = [Endpoint(url, self.settings.max_concurrency) for url in self.settings.urls]
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
        if self.settings.load_balance == "round_robin":
            return ordered[0]
        return min(ordered, key=lambda e: e.in_flight)  # rotated first, so ties spread evenly

    def api_key(self) -> str | None:
        """The key, read from its environment variable now (never cached on the client)."""
        name = self.settings.api_key_env
        if not name:
            return None
        key = os.environ.get(name)
        if not key:
            raise FatalError(f"environment variable {name} (api_key_env) is not set or empty")
        return key

    async def _attempt(
        self, state: _LoopState, endpoint: Endpoint, body: bytes, headers: dict[str, str], protocol: WireProtocol
    ) -> Reply:
        import aiohttp

        endpoint.requests += 1
        try:
            async with state.session.post(endpoint.url, data=body, headers=headers) as response:
                raw = await response.read()
                status = response.status
                reply_headers = response.headers.copy()  # case-insensitive: Retry-After or retry-after
        except TimeoutError:
            raise RetryableError(f"timed out after {self.settings.timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise RetryableError(f"connection error: {type(exc).__name__}: {exc}") from None
        if status != 200:
            raise protocol.error(status, reply_headers, raw, self.clock())
        try:
            return protocol.parse(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise RetryableError(f"malformed JSON in the response: {exc}") from None
        except MalformedResponse as exc:
            raise RetryableError(f"malformed response: {exc}") from None

    async def complete(
        self, protocol: WireProtocol, body: Any, *, probe_key: str, label: str, key: str | None
    ) -> Generation:
        """Send one request (retrying as configured) and return its Generation: a reply or an error."""
        state = self._loop_state()
        payload = orjson.dumps(body)
        headers = protocol.headers(key)
        attempts = self.settings.max_retries + 1
        last_error = ""
        for attempt in range(attempts):
            retry_after: float | None = None
            reply: Reply | None = None
            await state.slots.acquire()
            endpoint = self._pick(state)
            endpoint.in_flight += 1
            try:
                started = time.perf_counter()
                reply = await self._attempt(state, endpoint, payload, headers, protocol)
                latency = time.perf_counter() - started
            except FatalError as exc:
                endpoint.failures += 1
                error = redact_secret(str(exc), key)
                log.warning("%s: probe %s failed: %s", label, probe_key[:12], error)
                return Generation(probe_key=probe_key, target=label, error=error)
            except RetryableError as exc:
                endpoint.failures += 1
                last_error = redact_secret(str(exc), key)
                retry_after = exc.retry_after_s
            finally:
                endpoint.in_flight -= 1
                state.slots.release()  # never held while backing off
            if reply is not None:
                self.usage.update(reply.usage)
                return Generation(
                    probe_key=probe_key,
                    target=label,
                    text=reply.text,
                    reasoning=reply.reasoning,
                    finish_reason=reply.finish_reason,
                    usage=reply.usage,
                    latency_s=latency,
                )
            if attempt + 1 < attempts:
                delay = retry_delay(
                    attempt,
                    base_s=self.settings.backoff_base_s,
                    max_s=self.settings.backoff_max_s,
                    rng=self.rng,
                    retry_after_s=retry_after,
                    max_retry_after_s=self.settings.max_retry_after_s,
                )
                log.debug(
                    "%s: attempt %d/%d failed (%s); retrying in %.2f s",
                    label, attempt + 1, attempts, last_error[:200], delay,
                )
                await self.sleep(delay)
        error = f"failed after {attempts} attempt{'s' if attempts > 1 else ''}: {last_error}"
        log.warning("%s: probe %s %s", label, probe_key[:12], error[:300])
        return Generation(probe_key=probe_key, target=label, error=error)

    async def release(self) -> None:
        """One holder is done; the last one closes the session (a later request opens a new one)."""
        self.holders = max(0, self.holders - 1)
        if self.holders == 0:
            state, self._state = self._state, None
            if state is not None and not state.session.closed:
                await state.session.close()


def shared_client(ctx: PluginContext, kind: str, settings: ClientSettings) -> ModelClient:
    """The client of this connection for ``ctx.label``: one per run, shared by every plugin that builds
    the same target (a judge naming a run target by label gets the run target's client and limits)."""
    key = ("model-client", kind, ctx.label, content_hash(vars(settings)))
    client = ctx.clients.get(key, lambda: ModelClient(settings))
    assert isinstance(client, ModelClient)
    client.holders += 1
    return client


# ---------------------------------------------------------------- the target base


class RemoteTarget:
    """A target on a ``ModelClient``: a subclass builds the request body and names its protocol."""

    Params: ClassVar[type[RemoteParams]]
    protocol: WireProtocol

    def __init__(self, params: RemoteParams, ctx: PluginContext) -> None:
        self.params = params
        self.label = ctx.label or self.kind
        self.max_batch_size = 1
        self.client = shared_client(ctx, self.kind, ClientSettings.of(params, self.request_urls(params)))
        self.max_concurrency = self.client.max_concurrency
        self._closed = False

    kind: ClassVar[str] = "remote"
    # The settings that change what the model writes, common to every wire protocol (never URLs or
    # the key: replicas are equivalent, and secrets stay out of stores); a protocol adds its own.
    COMMON_IDENTITY_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"model", "system_prompt", "user_prefix", "max_new_tokens", "temperature", "top_p", "max_pixels", "extra_body"}
    )
    identity_fields: ClassVar[frozenset[str]] = frozenset()

    def identity(self) -> dict[str, Any]:
        """What determines the output: model, prompts, sampling, thinking. Never URLs or the key."""
        return {
            "kind": self.kind,
            **self.params.model_dump(include=set(self.COMMON_IDENTITY_FIELDS | self.identity_fields)),
        }

    def request_urls(self, params: RemoteParams) -> list[str]:
        """The full request URL for each base URL."""
        raise NotImplementedError

    def build_request(self, probe: Probe, sample: int) -> dict[str, Any]:
        raise NotImplementedError

    # Test hooks reach the client's clock, sleep and jitter source.
    @property
    def sleep(self) -> Callable[[float], Awaitable[None]]:
        return self.client.sleep

    @sleep.setter
    def sleep(self, value: Callable[[float], Awaitable[None]]) -> None:
        self.client.sleep = value

    @property
    def clock(self) -> Callable[[], float]:
        return self.client.clock

    @clock.setter
    def clock(self, value: Callable[[], float]) -> None:
        self.client.clock = value

    @property
    def rng(self) -> random.Random:
        return self.client.rng

    @rng.setter
    def rng(self, value: random.Random) -> None:
        self.client.rng = value

    @property
    def endpoints(self) -> list[Endpoint]:
        return self.client.endpoints

    def encoded(self, ref: ImageRef) -> EncodedImage:
        return self.client.images.get(ref, self.params.max_pixels)

    async def _request_body(self, probe: Probe, sample: int = 0) -> bytes:
        await self.client.images.prefetch(probe.images, self.params.max_pixels)
        return orjson.dumps(self.build_request(probe, sample))

    async def _generate_one(self, probe: Probe, sample: int = 0) -> Generation:
        probe_key = probe.key  # a content hash: compute it once
        try:
            key = self.client.api_key()
            await self.client.images.prefetch(probe.images, self.params.max_pixels)
            body = self.build_request(probe, sample)
        except FatalError as exc:
            return Generation(probe_key=probe_key, target=self.label, error=str(exc))
        except (OSError, ValueError) as exc:  # unreadable or corrupt image: no request can succeed
            return Generation(probe_key=probe_key, target=self.label, error=f"cannot build the request: {exc}")
        return await self.client.complete(self.protocol, body, probe_key=probe_key, label=self.label, key=key)

    async def generate(self, probes: Sequence[Probe], *, sample: int = 0) -> list[Generation]:
        """One generation per probe; ``sample`` > 0 draws another sample of each (seeded ``seed + sample``
        where the API takes a seed)."""
        if self._closed:  # used again after aclose: hold the client again, so the next aclose closes it
            self._closed = False
            self.client.holders += 1
        if len(probes) == 1:
            return [await self._generate_one(probes[0], sample)]
        return list(await asyncio.gather(*(self._generate_one(p, sample) for p in probes)))

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self.client.release()
