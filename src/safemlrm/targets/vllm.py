"""vLLM in-process: ``vllm.LLM.chat`` with multimodal messages, batched on the GPUs of this machine."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from safemlrm.core.batching import MicroBatcher
from safemlrm.core.context import PluginContext
from safemlrm.core.plugins import targets
from safemlrm.core.types import Generation, ImagePart, Probe, TextPart
from safemlrm.targets._base import TargetParams, prompt_messages
from safemlrm.targets._inprocess import ImageLoadError, image_data_url, require_modules, run_isolating

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'safemlrm[vllm]'"


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(f"the vllm target needs vLLM, which is not installed: {INSTALL_HINT}") from exc
    return vllm


@targets.register("vllm")
class VLLMTarget:
    """vLLM in-process (``vllm.LLM``): multimodal chat, batched; for GPUs."""

    class Params(TargetParams):
        model: str = Field(min_length=1, description="a hub id or a local folder")
        batch_size: int = Field(
            default=256, ge=1, description="requests per llm.chat call (vLLM schedules them continuously)"
        )
        max_wait_ms: float = Field(default=50.0, ge=0, description="how long a partial batch waits to fill")
        tokenizer: str | None = Field(default=None, description="tokenizer id or path, if not the model's")
        revision: str | None = None
        dtype: str = Field(default="auto", description="auto, bfloat16, float16 or float32")
        tensor_parallel_size: int = Field(default=1, ge=1)
        gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
        max_model_len: int | None = Field(default=None, ge=1)
        limit_mm_per_prompt: dict[str, int] | None = Field(
            default=None, description='most items per prompt per modality, e.g. {"image": 2}'
        )
        trust_remote_code: bool = Field(default=False, description="run code from the model repo (off unless asked)")
        enforce_eager: bool = Field(default=False, description="skip CUDA graphs (faster start, slower run)")
        thinking_budget: int | None = Field(
            default=None,
            ge=1,
            description=(
                "most reasoning tokens: vLLM's `thinking_token_budget` sampling parameter (needs a vLLM that has "
                "it and reasoning markers it knows: engine_kwargs.reasoning_config for other models)"
            ),
        )
        max_image_pixels: int | None = Field(default=None, ge=1, description="shrink larger images first")
        chat_template: str | None = Field(default=None, description="a Jinja chat template replacing the model's")
        engine_kwargs: dict[str, Any] = Field(
            default_factory=dict, description="more vllm.LLM arguments, e.g. quantization or load_format"
        )

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        require_modules("vllm", "vllm")
        self.params = params
        self.label = ctx.label or "vllm"
        self.max_batch_size = params.batch_size
        self.max_concurrency = params.batch_size * 2
        self._llm: Any = None
        self._load_error: str | None = None
        self._load_lock = threading.Lock()
        self._batcher: MicroBatcher[tuple[Probe, int], Generation] = MicroBatcher(
            self._run_batch, max_batch_size=params.batch_size, max_wait_s=params.max_wait_ms / 1000
        )

    # ------------------------------------------------------------------ requests (pure)

    def identity(self) -> dict[str, Any]:
        p = self.params
        return {
            "kind": "vllm",
            "model": p.model,
            "revision": p.revision,
            "tokenizer": p.tokenizer,
            "dtype": p.dtype,
            "max_model_len": p.max_model_len,
            "system_prompt": p.system_prompt,
            "user_prefix": p.user_prefix,
            "chat_template": p.chat_template,
            "chat_template_kwargs": p.chat_template_kwargs,
            "max_image_pixels": p.max_image_pixels,
            "sampling": self.sampling_kwargs(),
            "quantization": p.engine_kwargs.get("quantization"),
        }

    def chat_messages(self, probe: Probe) -> list[dict[str, Any]]:
        """The probe as OpenAI-style chat messages with images as data URLs (raises ImageLoadError)."""
        messages: list[dict[str, Any]] = []
        for message in prompt_messages(probe, self.params):
            parts: list[dict[str, Any]] = []
            for part in message.content:
                if isinstance(part, TextPart):
                    parts.append({"type": "text", "text": part.text})
                elif isinstance(part, ImagePart):
                    url = image_data_url(part.image, self.params.max_image_pixels)
                    parts.append({"type": "image_url", "image_url": {"url": url}})
            if message.role != "user" and all(p["type"] == "text" for p in parts):
                messages.append({"role": message.role, "content": message.text})
            else:
                messages.append({"role": message.role, "content": parts})
        return messages

    def sampling_kwargs(self, sample: int = 0) -> dict[str, Any]:
        """Arguments of ``vllm.SamplingParams``; temperature 0 is greedy decoding.

        Sample ``i`` of a probe is seeded ``seed + i`` (sample 0 as a run without samples).
        """
        p = self.params
        kwargs: dict[str, Any] = {"max_tokens": p.max_new_tokens, "temperature": p.temperature}
        if p.temperature > 0:
            if p.top_p is not None:
                kwargs["top_p"] = p.top_p
            if p.top_k is not None:
                kwargs["top_k"] = p.top_k
        if p.repetition_penalty is not None:
            kwargs["repetition_penalty"] = p.repetition_penalty
        if p.presence_penalty is not None:
            kwargs["presence_penalty"] = p.presence_penalty
        if p.thinking_budget is not None:
            kwargs["thinking_token_budget"] = p.thinking_budget
        if p.seed is not None:
            kwargs["seed"] = p.seed + sample
        return kwargs

    def engine_kwargs(self) -> dict[str, Any]:
        """Arguments of ``vllm.LLM``."""
        p = self.params
        kwargs: dict[str, Any] = {
            "model": p.model,
            "trust_remote_code": p.trust_remote_code,
            "tensor_parallel_size": p.tensor_parallel_size,
            "dtype": p.dtype,
            "gpu_memory_utilization": p.gpu_memory_utilization,
            "enforce_eager": p.enforce_eager,
        }
        optional = {
            "tokenizer": p.tokenizer,
            "revision": p.revision,
            "max_model_len": p.max_model_len,
            "limit_mm_per_prompt": p.limit_mm_per_prompt,
            "seed": p.seed,
        }
        kwargs.update({key: value for key, value in optional.items() if value is not None})
        kwargs.update(p.engine_kwargs)
        return kwargs

    # ------------------------------------------------------------------ engine

    def _engine(self) -> Any:
        with self._load_lock:
            if self._load_error is not None:
                raise RuntimeError(self._load_error)
            if self._llm is None:
                vllm = import_vllm()
                try:
                    self._llm = vllm.LLM(**self.engine_kwargs())
                except Exception as exc:
                    self._load_error = f"cannot start vLLM for {self.params.model!r}: {type(exc).__name__}: {exc}"
                    raise RuntimeError(self._load_error) from exc
            return self._llm

    def _chat(self, requests: list[tuple[list[dict[str, Any]], int]]) -> list[Any]:
        """``llm.chat`` over (conversation, sample index) pairs: one SamplingParams for all, or one each."""
        vllm = import_vllm()
        llm = self._engine()
        extra: dict[str, Any] = {}
        if self.params.chat_template is not None:
            extra["chat_template"] = self.params.chat_template
        if self.params.chat_template_kwargs:
            extra["chat_template_kwargs"] = self.params.chat_template_kwargs
        conversations = [conversation for conversation, _ in requests]
        samples = {sample for _, sample in requests}
        sampling: Any
        if samples == {0}:
            sampling = vllm.SamplingParams(**self.sampling_kwargs())
        else:
            sampling = [vllm.SamplingParams(**self.sampling_kwargs(sample)) for _, sample in requests]
        outputs = list(llm.chat(conversations, sampling, use_tqdm=False, **extra))
        if len(outputs) != len(conversations):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(conversations)} requests")
        return outputs

    def _to_generation(self, probe: Probe, output: Any, latency_s: float) -> Generation:
        completion = output.outputs[0]
        prompt_ids = getattr(output, "prompt_token_ids", None) or []
        return Generation(
            probe_key=probe.key,
            target=self.label,
            text=completion.text,
            finish_reason=completion.finish_reason,
            usage={"prompt_tokens": len(prompt_ids), "completion_tokens": len(completion.token_ids)},
            latency_s=latency_s,
        )

    def _generate_sync(self, items: list[tuple[Probe, int]]) -> list[Generation]:
        probes = [probe for probe, _ in items]
        results: dict[int, Generation] = {}
        ready: list[tuple[int, tuple[list[dict[str, Any]], int]]] = []
        for index, (probe, sample) in enumerate(items):
            try:
                ready.append((index, (self.chat_messages(probe), sample)))
            except ImageLoadError as exc:
                results[index] = Generation(probe_key=probe.key, target=self.label, error=str(exc))
        try:
            self._engine()
        except (ImportError, RuntimeError) as exc:
            for index, _ in ready:
                results[index] = Generation(probe_key=probes[index].key, target=self.label, error=str(exc))
            ready = []
        start = time.perf_counter()
        outputs = run_isolating([conversation for _, conversation in ready], self._chat)
        latency = time.perf_counter() - start
        for (index, _), output in zip(ready, outputs, strict=True):
            probe = probes[index]
            if isinstance(output, str):
                results[index] = Generation(probe_key=probe.key, target=self.label, error=output)
            else:
                results[index] = self._to_generation(probe, output, latency)
        return [results[index] for index in range(len(probes))]

    async def _run_batch(self, items: list[tuple[Probe, int]]) -> list[Generation]:
        return await asyncio.to_thread(self._generate_sync, items)

    async def generate(self, probes: Sequence[Probe], *, sample: int = 0) -> list[Generation]:
        """One generation per probe; ``sample`` > 0 draws another sample of each (seeded ``seed + sample``)."""
        return await self._batcher.submit([(probe, sample) for probe in probes])

    async def aclose(self) -> None:
        await self._batcher.aclose()
        self._llm = None
