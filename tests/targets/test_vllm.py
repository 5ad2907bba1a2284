"""The vllm target without vLLM: request building, the missing-extra error, and the generate path
against a stand-in ``vllm`` module that records what it was asked."""

from __future__ import annotations

import asyncio
import base64
import io
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.hashing import content_hash
from safemlrm.core.types import ImagePart, ImageRef, Message, Probe, TextPart
from safemlrm.targets.vllm import VLLMTarget


def make_probe(text: str, images: tuple[ImageRef, ...] = (), sample_id: str = "s") -> Probe:
    content = (*(ImagePart(image=ref) for ref in images), TextPart(text=text))
    return Probe(
        sample_key=content_hash(sample_id),
        sample_id=sample_id,
        attack="vanilla",
        messages=(Message(role="user", content=content),),
    )


@pytest.fixture
def image(tmp_path: Path) -> ImageRef:
    path = tmp_path / "red.png"
    Image.new("RGB", (64, 32), (255, 0, 0)).save(path)
    return ImageRef(path=str(path), sha256="0" * 64)


@dataclass
class FakeCompletion:
    text: str
    finish_reason: str
    token_ids: list[int]


@dataclass
class FakeOutput:
    prompt_token_ids: list[int]
    outputs: list[FakeCompletion]


@dataclass
class FakeVLLM:
    """Stands in for the vllm module: records engine arguments and chat calls."""

    engines: list[dict[str, Any]] = field(default_factory=list)
    chats: list[tuple[list[Any], Any, dict[str, Any]]] = field(default_factory=list)
    fail_when: str | None = None

    def module(self) -> types.ModuleType:
        fake = self

        class SamplingParams:
            def __init__(self, **kwargs: Any) -> None:
                self.kwargs = kwargs

        class LLM:
            def __init__(self, **kwargs: Any) -> None:
                fake.engines.append(kwargs)

            def chat(
                self, conversations: list[Any], sampling: SamplingParams | list[SamplingParams], **kwargs: Any
            ) -> list[FakeOutput]:
                recorded = [s.kwargs for s in sampling] if isinstance(sampling, list) else sampling.kwargs
                fake.chats.append((conversations, recorded, kwargs))
                outputs = []
                for conversation in conversations:
                    text = conversation[-1]["content"][-1]["text"]
                    if fake.fail_when is not None and fake.fail_when in text:
                        raise ValueError(f"prompt too long: {text}")
                    outputs.append(FakeOutput([1, 2, 3], [FakeCompletion(f"echo {text}", "stop", [7, 8])]))
                return outputs

        module = types.ModuleType("vllm")
        module.LLM = LLM  # type: ignore[attr-defined]
        module.SamplingParams = SamplingParams  # type: ignore[attr-defined]
        return module


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> FakeVLLM:
    fake = FakeVLLM()
    monkeypatch.setitem(sys.modules, "vllm", fake.module())
    return fake


def make_target(**params: Any) -> VLLMTarget:
    target = plugins.targets.create("vllm", {"model": "org/model", **params}, PluginContext(label="v"))
    assert isinstance(target, VLLMTarget)
    return target


def test_missing_vllm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail
    with pytest.raises(ImportError, match=r"pip install 'safemlrm\[vllm\]'"):
        make_target()


def test_import_error_at_use_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from safemlrm.targets.vllm import import_vllm

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError, match=r"safemlrm\[vllm\]"):
        import_vllm()


def test_a_model_is_required(fake_vllm: FakeVLLM) -> None:
    from safemlrm.core.registry import PluginConfigError

    with pytest.raises(PluginConfigError, match="model"):
        plugins.targets.create("vllm", {}, PluginContext())


def test_chat_messages_carry_system_prompt_prefix_and_images(fake_vllm: FakeVLLM, image: ImageRef) -> None:
    target = make_target(system_prompt="Think first.", user_prefix="Q:")
    messages = target.chat_messages(make_probe("What is this?", (image,)))
    assert messages[0] == {"role": "system", "content": "Think first."}
    user = messages[1]
    assert user["role"] == "user"
    image_part, text_part = user["content"]
    assert text_part == {"type": "text", "text": "Q:\nWhat is this?"}
    url = image_part["image_url"]["url"]
    assert image_part["type"] == "image_url" and url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == (64, 32) and decoded.getpixel((0, 0)) == (255, 0, 0)


def test_large_images_are_shrunk(fake_vllm: FakeVLLM, image: ImageRef) -> None:
    target = make_target(max_image_pixels=512)
    url = target.chat_messages(make_probe("x", (image,)))[0]["content"][0]["image_url"]["url"]
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.width * decoded.height <= 512 and decoded.width == 2 * decoded.height


def test_greedy_by_default_and_sampling_when_asked(fake_vllm: FakeVLLM) -> None:
    assert make_target(max_new_tokens=64).sampling_kwargs() == {"max_tokens": 64, "temperature": 0.0}
    sampled = make_target(temperature=0.7, top_p=0.9, top_k=20, seed=3).sampling_kwargs()
    assert sampled == {"max_tokens": 1024, "temperature": 0.7, "top_p": 0.9, "top_k": 20, "seed": 3}


def test_engine_arguments(fake_vllm: FakeVLLM) -> None:
    target = make_target(
        max_model_len=4096,
        limit_mm_per_prompt={"image": 2},
        tensor_parallel_size=2,
        gpu_memory_utilization=0.8,
        engine_kwargs={"load_format": "dummy"},
    )
    kwargs = target.engine_kwargs()
    assert kwargs["model"] == "org/model"
    assert kwargs["max_model_len"] == 4096
    assert kwargs["limit_mm_per_prompt"] == {"image": 2}
    assert kwargs["tensor_parallel_size"] == 2
    assert kwargs["gpu_memory_utilization"] == 0.8
    assert kwargs["trust_remote_code"] is False
    assert kwargs["load_format"] == "dummy"
    assert "revision" not in kwargs


def test_identity_changes_with_what_changes_outputs(fake_vllm: FakeVLLM) -> None:
    base = make_target().identity()
    assert base == make_target(batch_size=8, gpu_memory_utilization=0.5).identity()
    assert base != make_target(system_prompt="x").identity()
    assert base != make_target(temperature=0.5).identity()


async def test_concurrent_calls_are_batched_into_one_chat(fake_vllm: FakeVLLM, image: ImageRef) -> None:
    target = make_target(batch_size=8, max_wait_ms=50, chat_template_kwargs={"enable_thinking": True})
    probes = [make_probe(f"prompt {i}", (image,) if i % 2 else (), sample_id=str(i)) for i in range(5)]
    results = await asyncio.gather(*(target.generate([probe]) for probe in probes))
    assert [r[0].text for r in results] == [f"echo prompt {i}" for i in range(5)]
    assert [r[0].probe_key for r in results] == [p.key for p in probes]
    assert len(fake_vllm.engines) == 1
    assert len(fake_vllm.chats) == 1
    conversations, sampling, extra = fake_vllm.chats[0]
    assert len(conversations) == 5
    assert sampling["temperature"] == 0.0
    assert extra == {"use_tqdm": False, "chat_template_kwargs": {"enable_thinking": True}}
    generation = results[0][0]
    assert generation.usage == {"prompt_tokens": 3, "completion_tokens": 2}
    assert generation.finish_reason == "stop" and generation.ok
    await target.aclose()


async def test_a_failing_request_fails_alone(fake_vllm: FakeVLLM) -> None:
    fake_vllm.fail_when = "bad"
    target = make_target(batch_size=4, max_wait_ms=0)
    probes = [make_probe(text, sample_id=text) for text in ("good 1", "bad", "good 2")]
    generations = await target.generate(probes)
    assert [g.ok for g in generations] == [True, False, True]
    assert "prompt too long" in (generations[1].error or "")
    assert generations[2].text == "echo good 2"
    await target.aclose()


async def test_an_unreadable_image_is_a_stored_error(fake_vllm: FakeVLLM, tmp_path: Path) -> None:
    missing = ImageRef(path=str(tmp_path / "nope.png"), sha256="0" * 64)
    target = make_target(max_wait_ms=0)
    generations = await target.generate([make_probe("a", (missing,)), make_probe("b", sample_id="b")])
    assert generations[0].error is not None and "nope.png" in generations[0].error
    assert generations[1].text == "echo b"
    await target.aclose()


async def test_an_engine_that_cannot_start_fails_every_probe_with_the_reason(
    fake_vllm: FakeVLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(sys.modules["vllm"], "LLM", broken)
    target = make_target(max_wait_ms=0)
    generations = await target.generate([make_probe("a"), make_probe("b", sample_id="b")])
    assert all(g.error and "CUDA out of memory" in g.error for g in generations)
    await target.aclose()


async def test_samples_get_their_own_seeds_in_one_chat(fake_vllm: FakeVLLM) -> None:
    """Sample i of a probe is seeded seed + i; a batch mixing samples sends one SamplingParams per request."""
    target = make_target(batch_size=8, max_wait_ms=50, temperature=0.6, seed=5, thinking_budget=256)
    probe = make_probe("p")
    results = await asyncio.gather(*(target.generate([probe], sample=i) for i in range(3)))
    assert all(r[0].ok for r in results)
    ((conversations, sampling, _),) = fake_vllm.chats
    assert len(conversations) == 3
    assert sorted(k["seed"] for k in sampling) == [5, 6, 7]
    assert all(k["thinking_token_budget"] == 256 for k in sampling)
    await target.aclose()


def test_presence_penalty_and_budget_enter_the_identity_only_when_set(fake_vllm: FakeVLLM) -> None:
    assert "presence_penalty" not in make_target().sampling_kwargs()
    assert make_target(presence_penalty=1.5).sampling_kwargs()["presence_penalty"] == 1.5
    assert make_target().identity() != make_target(thinking_budget=64).identity()
